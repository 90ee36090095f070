// The map of every page: Leaflet (kept under static/vendor/leaflet, loaded as a classic script,
// so it is the global L). Base-map tiles only from the operator's EMON_MAP_TILE_URL; without one a
// plain grid. Drawing helpers take GeoJSON (lon/lat) and metres.
import { t } from "./i18n.js";

const L = window.L;

const GridLayer = L.GridLayer.extend({
  createTile(coords) {
    const tile = document.createElement("canvas");
    const size = this.getTileSize();
    tile.width = size.x;
    tile.height = size.y;
    const g = tile.getContext("2d");
    g.strokeStyle = "#2a3440";
    g.lineWidth = 1;
    g.strokeRect(0.5, 0.5, size.x, size.y);
    return tile;
  },
});

let configPromise = null;
/** The pages' configuration (tile URL, attribution, ack deadlines), fetched once. */
export function pagesConfig() {
  if (!configPromise) {
    configPromise = fetch("api/v1/pages/config", { cache: "no-store" }).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  }
  return configPromise;
}

/** A Leaflet map in ``element``, with the configured base map or the plain grid. */
export async function createMap(element) {
  const config = await pagesConfig();
  const map = L.map(element, { zoomSnap: 0.25, attributionControl: true, preferCanvas: false }).setView([52.1, 5.1], 8);
  map.attributionControl.setPrefix(false);
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { attribution: config.tile_attribution || "", maxZoom: 19, crossOrigin: false }).addTo(map);
    element.classList.add("has-tiles");
  } else {
    new GridLayer({ maxZoom: 22 }).addTo(map);
    map.attributionControl.addAttribution(t("map_grid"));
  }
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  return map;
}

export const STYLES = {
  exclusion: { color: "#ff5c5c", weight: 2, fillColor: "#ff5c5c", fillOpacity: 0.18 },
  inclusion: { color: "#48c774", weight: 2, dashArray: "8 5", fillOpacity: 0.05 },
  guideline: { color: "#ffb347", weight: 2, dashArray: "6 6", fill: false },
  suggested: { color: "#4aa3ff", weight: 2, dashArray: "3 5", fillColor: "#4aa3ff", fillOpacity: 0.12 },
  ban: { color: "#c792ea", weight: 1.5, dashArray: "4 4", fill: false },
  accOff: { color: "#4aa3ff", weight: 1, fillColor: "#4aa3ff", fillOpacity: 0.18 },
  accVic: { color: "#c792ea", weight: 1, fillColor: "#c792ea", fillOpacity: 0.18 },
  track: { color: "#4aa3ff", weight: 2, opacity: 0.7 },
};

/** A GeoJSON layer with a fixed style and a permanent label from ``properties.name``. */
export function geojson(data, style, label = true) {
  return L.geoJSON(data, {
    style: () => style,
    pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 6, color: "#fff", weight: 2, fillColor: style.color, fillOpacity: 1 }),
    onEachFeature: (f, layer) => {
      if (label && f.properties && f.properties.name) {
        layer.bindTooltip(String(f.properties.name), { permanent: true, direction: "top", className: "map-label" });
      }
    },
  });
}

/** A person's fix: accuracy circle (metres), dot and a label with the fix's age. */
export function person(fix, { accStyle, dotColor, label, stale, direction = "right" }) {
  const at = [fix.lat, fix.lon];
  const group = L.featureGroup([
    L.circle(at, { radius: Math.max(0, Number(fix.acc_m) || 0), ...accStyle }),
    L.circleMarker(at, { radius: 6, color: "#fff", weight: 2, fillColor: stale ? "#8b98a5" : dotColor, fillOpacity: 1 }),
  ]);
  group.bindTooltip(label, { permanent: true, direction, offset: [direction === "left" ? -8 : 8, 0], className: "map-label" });
  return group;
}

export const circle = (lat, lon, radiusM, style) => L.circle([lat, lon], { radius: radiusM, ...style });
export const line = (latlngs, style) => L.polyline(latlngs, style);
export const point = (lat, lon, color, label) => {
  const m = L.circleMarker([lat, lon], { radius: 6, color: "#fff", weight: 2, fillColor: color, fillOpacity: 1 });
  if (label) m.bindTooltip(label, { permanent: true, direction: "right", className: "map-label" });
  return m;
};
export const group = () => L.featureGroup();
export { L };

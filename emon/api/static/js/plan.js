// The order editor shared by the enforceability page and the case page: a plan of the residence,
// places and zones, edited by clicking on the map, by typed coordinates (RD or WGS84) or as JSON.
// Positions stay as entered ({lat, lon} or {rd: {x, y}}); the server converts and judges them.
import { t } from "./i18n.js";
import { $, el, fmtM } from "./util.js";
import { L, STYLES, group, point } from "./map.js";

/** RD New (EPSG:28992) to WGS84, the published polynomial approximation (≈1 m): for drawing only. */
export function rdToWgs84(x, y) {
  const dx = (x - 155000) * 1e-5;
  const dy = (y - 463000) * 1e-5;
  const lat = 52.15517440 + (3235.65389 * dy - 32.58297 * dx ** 2 - 0.2475 * dy ** 2 - 0.84978 * dx ** 2 * dy
    - 0.0655 * dy ** 3 - 0.01709 * dx ** 2 * dy ** 2 - 0.00738 * dx + 0.0053 * dx ** 4 - 0.00039 * dx ** 2 * dy ** 3
    + 0.00033 * dx ** 4 * dy - 0.00012 * dx * dy) / 3600;
  const lon = 5.38720621 + (5260.52916 * dx + 105.94684 * dx * dy + 2.45656 * dx * dy ** 2 - 0.81885 * dx ** 3
    + 0.05594 * dx * dy ** 3 - 0.05607 * dx ** 3 * dy + 0.01199 * dy - 0.00256 * dx ** 3 * dy ** 2
    + 0.00128 * dx * dy ** 4 + 0.00022 * dy ** 2 - 0.00022 * dx ** 2 + 0.00026 * dx ** 5) / 3600;
  return { lat, lon };
}
/** {lat, lon} of a position as entered (WGS84 or RD). */
export function latlon(p) {
  if (!p) return null;
  if (p.rd) return rdToWgs84(Number(p.rd.x), Number(p.rd.y));
  return { lat: Number(p.lat), lon: Number(p.lon) };
}
/** "x y" (RD, metres) or "lat lon" (WGS84, degrees), separated by space, comma or semicolon. */
export function parseCoords(text) {
  const parts = String(text).trim().split(/[\s,;]+/).map(Number);
  if (parts.length !== 2 || parts.some((v) => !Number.isFinite(v))) return null;
  const [a, b] = parts;
  if (a > 1000 && b > 1000) return { rd: { x: a, y: b } };
  if (Math.abs(a) <= 90 && Math.abs(b) <= 180) return { lat: a, lon: b };
  return null;
}

const TOOLS = ["none", "residence", "protected", "mandatory", "circle", "polygon"];

export class Plan {
  /** ``places``: whether protected and mandatory places belong to this plan (the OM check). */
  constructor(map, { places, onChange }) {
    this.map = map;
    this.places = places;
    this.onChange = onChange || (() => {});
    this.residence = null;
    this.protected = [];
    this.mandatory = [];
    this.exclusion = [];
    this.inclusion = [];
    this.tool = "none";
    this.vertices = [];
    this.layer = group().addTo(map);
    map.on("click", (ev) => this.click(ev.latlng));
  }

  zones() { return [...this.exclusion, ...this.inclusion]; }
  uniqueName(base) {
    const taken = new Set([...this.zones(), ...this.protected, ...this.mandatory].map((z) => z.name));
    for (let i = 1; ; i += 1) if (!taken.has(`${base} ${i}`)) return `${base} ${i}`;
  }
  setTool(tool) {
    this.tool = TOOLS.includes(tool) ? tool : "none";
    this.vertices = [];
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === this.tool);
    this.draw();
  }
  zoneKind() { return $("zone-kind") ? $("zone-kind").value : "exclusion"; }
  /** Place the current tool's item at ``position`` ({lat, lon} or {rd}). */
  place(position) {
    const round = (p) => (p.rd ? p : { lat: +p.lat.toFixed(6), lon: +p.lon.toFixed(6) });
    const pos = round(position);
    if (this.tool === "residence") this.residence = pos;
    else if (this.tool === "protected") this.protected.push({ name: this.uniqueName(t("tool_protected")), position: pos });
    else if (this.tool === "mandatory") this.mandatory.push({ name: this.uniqueName(t("tool_mandatory")), position: pos });
    else if (this.tool === "circle") {
      const radius = Number($("zone-radius").value) || 500;
      const circle = pos.rd ? { rd: pos.rd, radius_m: radius } : { lat: pos.lat, lon: pos.lon, radius_m: radius };
      (this.zoneKind() === "inclusion" ? this.inclusion : this.exclusion).push({ name: this.uniqueName(t("tool_circle")), circle });
    } else if (this.tool === "polygon" && !pos.rd) this.vertices.push([pos.lon, pos.lat]);
    else return;
    this.changed();
  }
  click(latlng) { if (this.tool !== "none") this.place({ lat: latlng.lat, lon: latlng.lng }); }
  finishPolygon() {
    if (this.vertices.length >= 3) {
      const ring = [...this.vertices, this.vertices[0]];
      const zone = { name: this.uniqueName(t("tool_polygon")), geometry: { type: "Polygon", coordinates: [ring] } };
      (this.zoneKind() === "inclusion" ? this.inclusion : this.exclusion).push(zone);
    }
    this.vertices = [];
    this.changed();
  }
  remove(list, item) {
    if (list === "residence") this.residence = null;
    else this[list] = this[list].filter((x) => x !== item);
    this.changed();
  }
  changed() { this.draw(); this.renderList(); this.onChange(); }

  /** Load an order document (and, for the OM check, residence and places). */
  load({ residence, order, protected_places: prot, mandatory_places: mand }) {
    this.residence = residence || null;
    this.exclusion = [...((order && order.exclusion_zones) || [])];
    this.inclusion = [...((order && order.inclusion_zones) || [])];
    this.protected = [...(prot || [])];
    this.mandatory = [...(mand || [])];
    this.changed();
    this.fit();
  }
  fit() {
    const b = this.layer.getBounds();
    if (b.isValid()) this.map.fitBounds(b, { padding: [30, 30], maxZoom: 16 });
  }

  draw() {
    this.layer.clearLayers();
    const add = (layer) => this.layer.addLayer(layer);
    for (const [list, style] of [[this.exclusion, STYLES.exclusion], [this.inclusion, STYLES.inclusion]]) {
      for (const z of list) {
        if (z.circle) {
          const c = latlon(z.circle);
          add(L.circle([c.lat, c.lon], { radius: Number(z.circle.radius_m), ...style }).bindTooltip(z.name, { permanent: true, className: "map-label" }));
        } else if (z.geometry) {
          add(L.geoJSON(z.geometry, { style: () => style }).bindTooltip(z.name, { permanent: true, className: "map-label" }));
        }
      }
    }
    if (this.vertices.length) add(L.polyline(this.vertices.map(([x, y]) => [y, x]), { color: "#ff5c5c", dashArray: "4 4" }));
    for (const p of this.protected) { const c = latlon(p.position); add(point(c.lat, c.lon, "#c792ea", p.name)); }
    for (const p of this.mandatory) { const c = latlon(p.position); add(point(c.lat, c.lon, "#48c774", p.name)); }
    if (this.residence) { const c = latlon(this.residence); add(point(c.lat, c.lon, "#e6edf3", t("tool_residence"))); }
  }

  renderList() {
    const box = $("plan-items");
    if (!box) return;
    const fmtPos = (p) => (p.rd ? `RD ${p.rd.x} ${p.rd.y}` : `${p.lat}, ${p.lon}`);
    const rows = [];
    const removeBtn = (list, item) => el("button", { type: "button", class: "ghost small", onclick: () => this.remove(list, item) }, t("f_remove"));
    const nameInput = (item) => el("input", { value: item.name, class: "name", "aria-label": t("f_name"),
      onchange: (ev) => { item.name = ev.target.value.trim() || item.name; this.changed(); } });
    if (this.residence) rows.push(el("li", {}, el("b", {}, t("tool_residence")), ` ${fmtPos(this.residence)} `, removeBtn("residence")));
    for (const [list, label] of [["protected", "tool_protected"], ["mandatory", "tool_mandatory"]]) {
      for (const p of this[list]) rows.push(el("li", {}, el("b", {}, t(label)), " ", nameInput(p), ` ${fmtPos(p.position)} `, removeBtn(list, p)));
    }
    for (const [list, label] of [["exclusion", "f_exclusion"], ["inclusion", "f_inclusion"]]) {
      for (const z of this[list]) {
        const radius = z.circle ? el("input", { type: "number", min: "1", step: "10", value: z.circle.radius_m, class: "radius",
          "aria-label": t("f_radius"), onchange: (ev) => { z.circle.radius_m = Number(ev.target.value) || z.circle.radius_m; this.changed(); } }) : null;
        rows.push(el("li", {}, el("b", {}, `${t(label)}`), " ", nameInput(z), z.circle ? ` ${fmtPos(z.circle)} r ` : " ▱ ",
          radius, z.circle ? ` (${fmtM(z.circle.radius_m)}) ` : " ", removeBtn(list, z)));
      }
    }
    box.replaceChildren(...rows);
  }
}

/** Wire the toolbar (buttons with data-tool, "finish polygon", typed coordinates) to ``plan``. */
export function wireTools(plan, showError) {
  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => plan.setTool(b.dataset.tool));
  $("finish-polygon").addEventListener("click", () => plan.finishPolygon());
  $("coords-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const pos = parseCoords($("coords").value);
    if (!pos || plan.tool === "none" || (plan.tool === "polygon" && pos.rd)) { showError(t("bad_coords")); return; }
    showError("");
    plan.place(pos);
    $("coords").value = "";
    plan.fit();
  });
}

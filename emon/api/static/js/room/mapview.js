// The room's map of one case: zones, the guideline ring around the residence, the contact-ban ring
// around the victim, the offender's fixes of the incident, and both people with accuracy circles
// and ages. The victim is drawn only when the server sent it (the privacy rule is the server's).
import { t } from "../i18n.js";
import { createMap, geojson, person, circle, line, point, group, pagesConfig, STYLES, L } from "../map.js";
import { fmtAge } from "../util.js";

const STALE_S = 300; // a fix older than this is drawn grey

export class CaseMap {
  constructor(element) {
    this.element = element;
    this.ready = createMap(element).then((map) => {
      this.map = map;
      this.wide = group().addTo(map); // inclusion zones (a whole town): drawn, but not fitted to
      this.layer = group().addTo(map);
      return map;
    });
    this.fittedCase = null;
  }

  /** Redraw from ``view`` ({case, zones, offender, victim, open_alerts}) and ``track`` (fixes). */
  async draw(view, track) {
    await this.ready;
    const config = await pagesConfig();
    this.layer.clearLayers();
    this.wide.clearLayers();
    this.element.dataset.drawn = view ? view.case.case_id : "";
    if (!view) return;
    const c = view.case;
    const ban = (c.order && c.order.contact_ban_m) || 0;
    for (const f of view.zones.features) {
      if (f.properties.kind === "inclusion") this.wide.addLayer(geojson(f, STYLES.inclusion));
      else this.layer.addLayer(geojson(f, STYLES.exclusion));
    }
    if (c.residence) {
      this.layer.addLayer(point(c.residence.lat, c.residence.lon, "#e6edf3", t("home")));
      if (config.guideline_m) this.layer.addLayer(circle(c.residence.lat, c.residence.lon, config.guideline_m, STYLES.guideline));
    }
    if (track && track.length >= 2) {
      this.layer.addLayer(line(track.map((f) => [f.lat, f.lon]), STYLES.track));
      for (const f of track) this.layer.addLayer(L.circleMarker([f.lat, f.lon], { radius: 2.5, color: "#4aa3ff", weight: 1, fillOpacity: 0.8 }));
    }
    const now = Date.now();
    const stale = (fix) => (now - Date.parse(fix.ts)) / 1000 > STALE_S;
    if (view.offender) {
      this.layer.addLayer(person(view.offender, {
        accStyle: STYLES.accOff, dotColor: "#4aa3ff", stale: stale(view.offender), direction: "left",
        label: `${t("offender")} · ±${Math.round(view.offender.acc_m)} m · ${fmtAge(view.offender.ts)}`,
      }));
    }
    if (view.victim) {
      if (ban) this.layer.addLayer(circle(view.victim.lat, view.victim.lon, ban, STYLES.ban));
      this.layer.addLayer(person(view.victim, {
        accStyle: STYLES.accVic, dotColor: "#c792ea", stale: stale(view.victim),
        label: `${t("victim")} · ±${Math.round(view.victim.acc_m)} m · ${fmtAge(view.victim.ts)}`,
      }));
    }
    if (view.offender && view.victim) {
      this.layer.addLayer(line([[view.offender.lat, view.offender.lon], [view.victim.lat, view.victim.lon]], { color: "#ffb347", weight: 1.5, dashArray: "2 4" }));
    }
    if (this.fittedCase !== c.case_id) this.fit();
    this.fittedCase = c.case_id;
  }

  fit() {
    if (!this.map) return;
    let b = this.layer.getBounds();
    if (!b.isValid()) b = this.wide.getBounds();
    if (b.isValid()) this.map.fitBounds(b, { padding: [24, 24], maxZoom: 17 });
  }

  invalidate() { if (this.map) this.map.invalidateSize(); }
}

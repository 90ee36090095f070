// The OM enforceability page: build a proposed order on the map (or load one), send it to
// POST /api/v1/feasibility and show the verdict, each finding, the guideline ring and the suggested
// zones; print or download the report in Dutch or English.
import { applyLabels, lang, setLang, t } from "./i18n.js";
import { $, api, el, fmtNumber, fmtTime, wireLogin } from "./util.js";
import { createMap, geojson, STYLES } from "./map.js";
import { Plan, wireTools } from "./plan.js";

const st = { report: null, request: null };
const map = await createMap($("map"));
const resultLayer = geojson({ type: "FeatureCollection", features: [] }, STYLES.exclusion).addTo(map);
const plan = new Plan(map, { places: true, onChange: () => { $("json").value = JSON.stringify(requestDoc(), null, 2); } });

function showError(message) { $("error").textContent = message; $("error").hidden = !message; }

function requestDoc() {
  const order = { exclusion_zones: plan.exclusion, inclusion_zones: plan.inclusion };
  const ban = Number($("contact-ban").value);
  if (ban > 0) order.contact_ban_m = ban;
  for (const [key, id] of [["valid_from", "valid-from"], ["valid_until", "valid-until"]]) {
    if ($(id).value) order[key] = new Date(`${$(id).value}T00:00:00`).toISOString();
  }
  return {
    residence: plan.residence, order, protected_places: plan.protected, mandatory_places: plan.mandatory,
    victim_device: $("victim-device").checked,
  };
}
function loadDoc(doc) {
  plan.load(doc);
  const order = doc.order || {};
  $("contact-ban").value = order.contact_ban_m ?? "";
  $("valid-from").value = order.valid_from ? String(order.valid_from).slice(0, 10) : "";
  $("valid-until").value = order.valid_until ? String(order.valid_until).slice(0, 10) : "";
  $("victim-device").checked = !!doc.victim_device;
}

/** One figure as a person reads it: never a negative radius. */
function figureText(name, value) {
  if (name.endsWith("radius_m") && value <= 0) return t("no_circle");
  const unit = name.endsWith("_m2") ? " m²" : name.endsWith("_m") ? " m" : "";
  return `${fmtNumber(value, Math.abs(value) < 10 ? 1 : 0)}${unit}`;
}
function figures(obj) {
  const parts = Object.entries(obj || {}).map(([k, v]) => `${t(`fig_${k}`) === `fig_${k}` ? k : t(`fig_${k}`)}: ${figureText(k, v)}`);
  return parts.length ? el("p", { class: "figures" }, parts.join(" · ")) : null;
}

function renderReport() {
  const box = $("report");
  const r = st.report;
  if (!r) { box.replaceChildren(); return; }
  const L = lang();
  const verdict = el("p", { id: "verdict", class: `verdict ${r.enforceable ? "ok" : "no"}` }, `${t("verdict")}: ${r.enforceable ? t("yes") : t("no")}`);
  const findings = r.findings.length
    ? el("ol", { id: "findings" }, ...r.findings.map((f) => el("li", { class: `sev-${f.severity}` },
      el("b", {}, `[${t(`sev_${f.severity}`)}] ${f.code}`), f.zone ? ` — ${f.zone}` : "", f.place ? ` — ${f.place}` : "",
      el("p", {}, f.message[L]), figures(f.figures))))
    : el("p", {}, t("none"));
  const suggestions = r.suggestions.map((s) => el("li", {},
    el("b", {}, `${t(`k_${s.kind}`) === `k_${s.kind}` ? s.kind : t(`k_${s.kind}`)} — ${s.zone} (${s.workable ? t("workable") : t("not_workable")})`),
    el("p", {}, s.message[L]), figures(s.figures)));
  box.replaceChildren(
    el("h2", {}, t("report_for")), el("p", { class: "muted small" }, `${t("report_made")}: ${fmtTime(new Date().toISOString())}`),
    verdict, el("h3", {}, t("findings")), findings,
    suggestions.length ? el("h3", {}, t("suggestions")) : null, suggestions.length ? el("ol", { id: "suggestions" }, ...suggestions) : null);
}
function drawResult() {
  resultLayer.clearLayers();
  if (!st.report) return;
  const styleOf = { exclusion_zone: STYLES.exclusion, inclusion_zone: STYLES.inclusion, guideline: STYLES.guideline, suggested_zone: STYLES.suggested };
  for (const f of st.report.geojson.features) {
    const role = f.properties.role;
    if (!styleOf[role]) continue; // the plan draws the residence and places
    const name = role === "guideline" ? t("guideline") : f.properties.name;
    resultLayer.addLayer(geojson({ ...f, properties: { ...f.properties, name } }, styleOf[role], role !== "exclusion_zone" && role !== "inclusion_zone"));
  }
  const roles = st.report.geojson.features.map((f) => f.properties.role);
  $("map").dataset.guideline = roles.includes("guideline") ? "1" : "";
  $("map").dataset.suggested = String(roles.filter((r) => r === "suggested_zone").length);
}

async function check() {
  showError("");
  if (!plan.residence) { showError(t("need_residence")); return; }
  st.request = requestDoc();
  try {
    st.report = await api("feasibility", { method: "POST", body: JSON.stringify(st.request) });
  } catch (e) {
    showError(`${t("failed")}: ${e.message}`);
    return;
  }
  renderReport();
  drawResult();
  const b = resultLayer.getBounds();
  if (b.isValid()) map.fitBounds(b, { padding: [30, 30] });
}

/** The report as a standalone HTML file (no scripts), for the case file. */
function download() {
  if (!st.report) return;
  const css = "body{font:14px/1.45 system-ui,sans-serif;max-width:800px;margin:2em auto;color:#111}"
    + ".verdict{font-size:20px;font-weight:700}.no{color:#b00}.ok{color:#070}.figures{color:#555;font-size:12px}";
  const html = `<!doctype html><html lang="${lang()}"><meta charset="utf-8"><title>${t("report_for")}</title>`
    + `<style>${css}</style><body>${$("report").innerHTML}<h3>${t("f_json")}</h3><pre>${escapeHtml(JSON.stringify(st.request, null, 2))}</pre></body></html>`;
  const a = el("a", { href: URL.createObjectURL(new Blob([html], { type: "text/html" })), download: `emon-feasibility-${lang()}.html` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
function escapeHtml(s) { return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]); }

function renderAll() { applyLabels(); plan.renderList(); renderReport(); drawResult(); }
wireTools(plan, showError);
$("check").addEventListener("click", check);
$("print").addEventListener("click", () => window.print());
$("download").addEventListener("click", download);
$("apply-json").addEventListener("click", () => {
  try { loadDoc(JSON.parse($("json").value)); showError(""); } catch (e) { showError(`${t("failed")}: ${e.message}`); }
});
$("upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  try { loadDoc(JSON.parse(await file.text())); showError(""); } catch (e) { showError(`${t("failed")}: ${e.message}`); }
  ev.target.value = "";
});
$("lang").addEventListener("click", () => { setLang(lang() === "nl" ? "en" : "nl"); renderAll(); });
renderAll();
wireLogin({ ready: (who) => { $("who").textContent = `${who.name} (${who.role})`; }, lost: () => { $("who").textContent = ""; } });

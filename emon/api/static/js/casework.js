// The probation case page: list cases, create or edit a case and its order with the map tools of
// the enforceability page, see its period (expiry) and its history of changes.
import { applyLabels, lang, setLang, t } from "./i18n.js";
import { $, api, el, fmtTime, wireLogin } from "./util.js";
import { createMap } from "./map.js";
import { Plan, wireTools } from "./plan.js";
import { expiringList, orderStatus } from "./orderview.js";

const st = { cases: [], current: null, history: [], expiring: null, order: null };
const map = await createMap($("map"));
const plan = new Plan(map, { places: false });
const DAY_MS = 86400000;

function showError(message) { $("error").textContent = message; $("error").hidden = !message; }
function showInfo(message) { $("info").textContent = message; $("info").hidden = !message; }

function caseDoc() {
  const base = st.current || {};
  const order = { ...(base.order || {}), exclusion_zones: plan.exclusion, inclusion_zones: plan.inclusion };
  const ban = Number($("contact-ban").value);
  if (ban > 0) order.contact_ban_m = ban; else delete order.contact_ban_m;
  for (const [key, id] of [["valid_from", "valid-from"], ["valid_until", "valid-until"]]) {
    if ($(id).value) order[key] = new Date($(id).value).toISOString(); else delete order[key];
  }
  const doc = {
    case_id: $("case-id").value.trim(), risk: $("risk").value, offender_device: $("offender-device").value.trim(),
    residence: plan.residence, order,
  };
  if ($("victim-device").value.trim()) doc.victim_device = $("victim-device").value.trim();
  if (base.status) doc.status = base.status;
  return doc;
}
const localInput = (iso) => {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
function fill(doc) {
  st.current = doc;
  $("case-id").value = doc ? doc.case_id : "";
  $("case-id").readOnly = !!doc;
  $("risk").value = doc ? doc.risk : "medium";
  $("offender-device").value = doc ? doc.offender_device : "";
  $("victim-device").value = doc && doc.victim_device ? doc.victim_device : "";
  const order = (doc && doc.order) || {};
  $("contact-ban").value = order.contact_ban_m ?? "";
  $("valid-from").value = localInput(order.valid_from);
  $("valid-until").value = localInput(order.valid_until);
  plan.load({ residence: doc ? doc.residence : null, order });
  $("close-case").hidden = !doc || doc.status === "closed";
  renderExpiry();
  renderOrder();
}
function renderExpiry() {
  const box = $("expiry");
  const doc = st.current;
  const until = doc && doc.order && doc.order.valid_until;
  if (!doc) { box.replaceChildren(); return; }
  const status = `${t("cw_status")}: ${t(doc.status === "closed" ? "cw_closed" : "cw_open")}`;
  let text = t("cw_open_ended");
  let cls = "expiry";
  if (until) {
    const days = Math.floor((Date.parse(until) - Date.now()) / DAY_MS);
    text = days < 0 ? `${t("cw_expired")} (${fmtTime(until)})` : `${fmtTime(until)} — ${t("cw_expires_in", { n: days })}`;
    cls += days < 0 ? " over" : days <= 14 ? " soon" : "";
  }
  box.replaceChildren(el("p", {}, status), el("p", { id: "expiry-text", class: cls }, `${t("cw_expiry")}: ${text}`));
}
function renderList() {
  $("case-list").replaceChildren(...st.cases.map((c) => el("li", {},
    el("button", { type: "button", class: st.current && st.current.case_id === c.case_id ? "selected" : "", onclick: () => select(c.case_id) },
      `${c.case_id} · ${t(`r_${c.risk}`)} · ${t(c.status === "closed" ? "cw_closed" : "cw_open")}`))));
}
function renderHistory() {
  // Order versions (GET /cases/{id}/versions): number, when, what, who, and the reason given.
  $("history").replaceChildren(...st.history.slice().reverse().map((h) => el("li", { class: "version" },
    el("b", {}, `${t("cw_version", { n: h.version })} · ${fmtTime(h.changed_at)} — ${t(`a_${h.action}`) === `a_${h.action}` ? h.action : t(`a_${h.action}`)}`),
    ` ${t("by")} ${h.changed_by}`, el("br"),
    el("span", { class: "reason" }, `${t("cw_reason")}: ${h.reason || t("cw_no_reason")}`), el("br"),
    el("span", { class: "muted" }, summary(h.document)))));
}
function summary(doc) {
  const o = doc.order || {};
  const zones = [...(o.exclusion_zones || []), ...(o.inclusion_zones || [])].map((z) => z.name + (z.circle ? ` (r ${z.circle.radius_m} m)` : ""));
  return [zones.join(", "), o.contact_ban_m ? `${t("lg_ban")} ${o.contact_ban_m} m` : "", o.valid_until ? `→ ${fmtTime(o.valid_until)}` : ""].filter(Boolean).join(" · ");
}

function renderExpiring() {
  $("expiring").replaceChildren(...(st.expiring ? expiringList(st.expiring, Date.now()) : []));
}
function renderOrder() {
  const doc = st.current;
  const show = doc && st.order && st.order.case_id === doc.case_id;
  $("order-status").replaceChildren(...(show ? orderStatus(st.order, doc.order) : []));
  // A decision about the end of an order with a term, while the case is open (POST .../order/decisions).
  $("decision-form").hidden = !(show && doc.status !== "closed" && st.order.valid_until);
  $("decision-until-label").hidden = $("decision-kind").value !== "extended";
}
async function decide(event) {
  event.preventDefault();
  showError(""); showInfo("");
  const doc = st.current;
  if (!doc) return;
  const kind = $("decision-kind").value;
  const body = { decision: kind, reason: $("decision-reason").value.trim() };
  if (kind === "extended") {
    if (!$("decision-until").value) { showError(t("cw_need_until")); return; }
    body.valid_until = new Date($("decision-until").value).toISOString();
  }
  if (kind === "replaced") body.order = caseDoc().order;
  try {
    await api(`cases/${encodeURIComponent(doc.case_id)}/order/decisions`, { method: "POST", body: JSON.stringify(body) });
    $("decision-reason").value = "";
    $("decision-until").value = "";
    await loadCases();
    await select(doc.case_id);
    showInfo(t("cw_decided"));
  } catch (e) { showError(`${t("failed")}: ${e.message}`); }
}
async function loadExpiring() {
  st.expiring = await api("orders/expiring?within=14d").catch(() => null);
  renderExpiring();
}
async function loadCases() {
  st.cases = await api("cases");
  renderList();
  await loadExpiring();
}
async function select(caseId) {
  showError(""); showInfo("");
  const doc = await api(`cases/${encodeURIComponent(caseId)}`);
  st.order = null;
  fill(doc);
  st.order = await api(`cases/${encodeURIComponent(caseId)}/order`).catch(() => null);
  renderOrder();
  st.history = await api(`cases/${encodeURIComponent(caseId)}/versions`).catch(() => []);
  renderHistory();
  renderList();
}
async function save() {
  showError(""); showInfo("");
  if (!plan.residence) { showError(t("need_residence")); return; }
  const doc = caseDoc();
  const reason = $("change-reason").value.trim();
  const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
  try {
    const saved = st.current
      ? await api(`cases/${encodeURIComponent(doc.case_id)}${query}`, { method: "PUT", body: JSON.stringify(doc) })
      : await api(`cases${query}`, { method: "POST", body: JSON.stringify(doc) });
    $("change-reason").value = "";
    showInfo(t("cw_saved"));
    await loadCases();
    await select(saved.case_id);
    showInfo(t("cw_saved"));
  } catch (e) { showError(`${t("failed")}: ${e.message}`); }
}
async function closeCase() {
  if (!st.current) return;
  try {
    const reason = $("change-reason").value.trim();
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
    await api(`cases/${encodeURIComponent(st.current.case_id)}/close${query}`, { method: "POST", body: "{}" });
    $("change-reason").value = "";
    await loadCases();
    await select(st.current.case_id);
  } catch (e) { showError(`${t("failed")}: ${e.message}`); }
}

function renderAll() { applyLabels(); plan.renderList(); renderList(); renderExpiry(); renderOrder(); renderExpiring(); renderHistory(); }
// A link in the expiring list is "#case=<id>": open that case.
function openFromHash() {
  const m = /^#case=(.+)$/.exec(window.location.hash);
  if (m) select(decodeURIComponent(m[1])).catch((e) => showError(e.message));
}
window.addEventListener("hashchange", openFromHash);
$("expiring").addEventListener("click", (e) => {
  const link = e.target.closest("a");
  if (link && link.getAttribute("href") === window.location.hash) openFromHash(); // same link again: no hashchange
});
wireTools(plan, showError);
$("new-case").addEventListener("click", () => { fill(null); st.history = []; renderHistory(); renderList(); });
$("save").addEventListener("click", save);
$("close-case").addEventListener("click", closeCase);
$("decision-form").addEventListener("submit", decide);
$("decision-kind").addEventListener("change", renderOrder);
$("lang").addEventListener("click", () => { setLang(lang() === "nl" ? "en" : "nl"); renderAll(); });
fill(null);
renderAll();
wireLogin({
  ready: (who) => { $("who").textContent = `${who.name} (${who.role})`; loadCases().then(openFromHash).catch((e) => showError(e.message)); },
  lost: () => { $("who").textContent = ""; st.cases = []; st.expiring = null; renderList(); renderExpiring(); },
});

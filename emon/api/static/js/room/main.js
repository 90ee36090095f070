// The monitoring room: wiring of queue, detail, map, live stream, sign-in, sound and keyboard.
import { applyLabels, lang, setLang, t, typeLabel, prioLabel, recipientLabel, outcomeLabel, OUTCOMES } from "../i18n.js";
import { $, api as plainApi, el, fmtAge, fmtM, fmtTime, signedOut, wireLogin } from "../util.js";
import { pagesConfig } from "../map.js";
import { explain, deviceName } from "./explain.js";
import { ordered, row, countdownText, deviceOf, UNRESOLVED } from "./queue.js";
import { openStream } from "./stream.js";
import { CaseMap } from "./mapview.js";
import { openTasks, taskCountdown, taskRow } from "./tasks.js";
import { applyOrderEvent, orderLapsed } from "./order.js";

const NOTE_REQUIRED = new Set(["tamper", "strap_open"]); // the service refuses these without a note
const SOUND_KEY = "emon.room.sound";

const st = {
  alerts: new Map(), // alert_id -> alert (unresolved, plus resolved ones seen in this session)
  resolved: [],
  tab: "open",
  selected: null,
  caseId: null,
  view: null, // map data of the selected case
  track: [],
  cases: new Map(), // case_id -> case document (for device roles and the contact ban)
  roles: new Map(), // device_id -> "offender" | "victim"
  fresh: new Set(),
  deadlines: {},
  stream: null,
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  showRaw: false,
  // Why this person looks (docs/access.md): chosen by them, never pre-filled or remembered; without it
  // the victim's position is left out of the map, the stream and the alerts.
  purpose: null,
  tasks: new Map(), // task_id -> open room task
};
/** The REST client with the chosen purpose (X-Purpose); every read is recorded with it. */
const api = (path, options = {}) => plainApi(path, st.purpose
  ? { ...options, headers: { ...(options.headers || {}), "X-Purpose": st.purpose } } : options);
const withPurpose = (path) => (st.purpose ? `${path}${path.includes("?") ? "&" : "?"}purpose=${encodeURIComponent(st.purpose)}` : path);
const caseMap = new CaseMap($("map"));

// ---------- data ----------
const asList = (body) => (Array.isArray(body) ? body : (body && (body.alerts || body.items)) || []);
async function loadCases() {
  const list = asList(await api("cases"));
  st.cases = new Map(list.map((c) => [c.case_id, c]));
  st.roles = new Map();
  for (const c of list) {
    st.roles.set(c.offender_device, "offender");
    if (c.victim_device) st.roles.set(c.victim_device, "victim");
  }
}
async function reloadAlerts() {
  const [open, acked] = await Promise.all([api("alerts?state=open"), api("alerts?state=acknowledged")]);
  for (const [id, a] of st.alerts) if (UNRESOLVED.has(a.state)) st.alerts.delete(id);
  for (const a of [...asList(open), ...asList(acked)]) st.alerts.set(a.alert_id, a);
  if (st.tab === "resolved") st.resolved = asList(await api("alerts?state=resolved"));
  if ([...st.alerts.values()].some((a) => !st.cases.has(a.case_id))) await loadCases();
  renderQueue();
  renderDetail();
}
async function loadMap(caseId) {
  st.caseId = caseId;
  try {
    const view = await api(withPurpose(`cases/${encodeURIComponent(caseId)}/map`));
    if (st.caseId !== caseId) return;
    st.view = view;
    const a = selected();
    st.track = [];
    if (a && a.case_id === caseId && view.case.offender_device) {
      const from = new Date(Date.parse(a.episode) - 15 * 60 * 1000).toISOString();
      const dev = encodeURIComponent(view.case.offender_device);
      st.track = asList(await api(`devices/${dev}/track?from=${encodeURIComponent(from)}`).catch(() => []));
    }
  } catch (e) {
    if (st.caseId === caseId) st.view = null;
    $("case-info").textContent = `${t("failed")}: ${e.message}`;
  }
  renderMap();
}
async function reloadAll() {
  await reloadAlerts();
  if (st.caseId) await loadMap(st.caseId);
}

// ---------- queue ----------
function renderQueue() {
  const ul = $("queue");
  let groups;
  if (st.tab === "resolved") groups = st.resolved.map((a) => [a]);
  else groups = ordered([...st.alerts.values()].filter((a) => UNRESOLVED.has(a.state)), st.deadlines, Date.now());
  const rows = [];
  for (const g of groups) {
    g.forEach((a, i) => rows.push(row(a, {
      selected: a.alert_id === st.selected, fresh: st.fresh.has(a.alert_id), nested: i > 0,
      roles: st.roles, deadlines: st.deadlines, onSelect: selectAlert,
    })));
    if (g.length > 1) rows[rows.length - g.length].firstChild.title = `${g.length} ${t("group_more")}`;
  }
  ul.replaceChildren(...rows);
  $("queue-empty").hidden = rows.length > 0;
  const n = [...st.alerts.values()].filter((a) => a.state === "open").length;
  document.title = `${n ? `(${n}) ` : ""}emon — ${t("title")}`;
}
function queueOrder() {
  return [...document.querySelectorAll("#queue [data-alert]")].map((b) => b.dataset.alert);
}
function selectAlert(a) {
  st.selected = a.alert_id;
  st.fresh.delete(a.alert_id);
  renderQueue();
  renderDetail();
  if (a.case_id !== st.caseId || !st.view) { st.view = null; st.track = []; renderMap(); }
  loadMap(a.case_id);
}
function selected() {
  return st.alerts.get(st.selected) || st.resolved.find((r) => r.alert_id === st.selected) || null;
}

// ---------- detail ----------
function renderDetail() {
  const box = $("detail");
  const a = selected();
  if (!a) { box.replaceChildren(el("p", { class: "muted" }, t("detail_none"))); return; }
  const device = deviceOf(a);
  const rows = [
    ["priority", prioLabel(a.priority)], ["state", t(`st_${a.state}`)], ["case", a.case_id],
    ["device", device ? deviceName(device, st.roles) : null], ["risk", t(`r_${a.risk}`)],
    ["opened", `${fmtTime(a.opened_at)} (${fmtAge(a.opened_at)} ${t("ago")})`],
    ["deadline", a.state === "open" ? countdownText(a, st.deadlines, Date.now()) : null],
    ["resolved_at", a.resolved_at ? `${fmtTime(a.resolved_at)} ${t("by")} ${a.resolved_by ?? "?"} — ${outcomeLabel(a.outcome)}` : null],
    ["distance", a.distance_m != null ? fmtM(a.distance_m) : null],
    ["recipients", Array.isArray(a.recipients) && a.recipients.length ? a.recipients.map(recipientLabel).join(", ") : null],
  ].filter(([, v]) => v != null && v !== "");
  const actions = el("div", { class: "actions" });
  if (a.state === "open") actions.append(el("button", { type: "button", id: "ack-button", class: "warn", onclick: () => acknowledge(a) }, t("ack_key")));
  if (UNRESOLVED.has(a.state)) actions.append(el("button", { type: "button", onclick: () => openResolve(a) }, t("resolve")));
  const sentences = explain(a, st.cases.get(a.case_id), st.roles);
  const raw = el("details", { id: "raw", open: st.showRaw, ontoggle: (ev) => { st.showRaw = ev.target.open; } },
    el("summary", {}, t("raw_json")), el("pre", {}, JSON.stringify(a.explanation || {}, null, 2)));
  box.replaceChildren(
    el("h3", {}, typeLabel(a.type)), actions,
    el("h4", {}, t("explanation")), el("ul", { id: "explanation", class: "explanation" }, ...sentences.map((s) => el("li", {}, s))),
    el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, String(v))])),
    raw);
}
async function acknowledge(a) {
  try {
    const r = await api(`alerts/${encodeURIComponent(a.alert_id)}/ack`, { method: "POST", body: "{}" });
    if (r && r.alert_id) onAlert(r); else await reloadAlerts();
  } catch (e) {
    if (e.status !== 401) window.alert(`${t("failed")}: ${e.message}`);
  }
}
let resolving = null;
function fillOutcomes() {
  const sel = $("outcome");
  const keep = sel.value;
  sel.replaceChildren(...Object.keys(OUTCOMES.en).map((o) => el("option", { value: o }, outcomeLabel(o))));
  if (keep) sel.value = keep;
}
function openResolve(a) {
  resolving = a;
  $("resolve-what").textContent = `${typeLabel(a.type)} — ${t("case")} ${a.case_id}`;
  $("resolve-note").value = "";
  $("resolve-note").required = NOTE_REQUIRED.has(a.type);
  $("resolve-error").hidden = true;
  $("resolve").showModal();
}
async function submitResolve(ev) {
  ev.preventDefault();
  const a = resolving;
  const note = $("resolve-note").value.trim();
  const err = $("resolve-error");
  if (!a) return;
  if (NOTE_REQUIRED.has(a.type) && !note) { err.textContent = t("note_required"); err.hidden = false; return; }
  try {
    const r = await api(`alerts/${encodeURIComponent(a.alert_id)}/resolve`, {
      method: "POST", body: JSON.stringify({ outcome: $("outcome").value, note }),
    });
    $("resolve").close();
    if (r && r.alert_id) onAlert(r); else await reloadAlerts();
  } catch (e) {
    err.textContent = `${t("failed")}: ${e.message}`;
    err.hidden = false;
  }
}

// ---------- map ----------
function renderMap() {
  const v = st.view;
  $("case-title").textContent = v ? `${t("case")} ${v.case.case_id}` : st.caseId ? `${t("case")} ${st.caseId}` : t("no_case");
  $("case-info").textContent = v
    ? `${t("risk")}: ${t(`r_${v.case.risk}`)} · ${deviceName(v.case.offender_device, st.roles)}${v.case.order && v.case.order.contact_ban_m ? ` · ${t("lg_ban")} ${fmtM(v.case.order.contact_ban_m)}` : ""}`
    : "";
  const note = $("privacy-note");
  const withheld = !!v && v.victim_withheld === "purpose_required";
  note.hidden = !v || (!withheld && (!!v.victim || !v.case.victim_device));
  note.textContent = withheld ? t("victim_purpose_required") : v && !v.open_alerts.length ? t("victim_hidden") : t("victim_none");
  note.dataset.reason = withheld ? "purpose_required" : "";
  $("order-banner").hidden = !orderLapsed(v);
  caseMap.draw(v, st.track);
}

// ---------- live ----------
let audio = null;
function beep() {
  if (!st.sound) return;
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.25, now + i * 0.22);
      g.gain.exponentialRampToValueAtTime(0.001, now + i * 0.22 + 0.2);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.22);
      o.stop(now + i * 0.22 + 0.21);
    }
  } catch { /* no audio device: the visual cue remains */ }
}
function cueCritical(a) {
  const banner = $("cue");
  banner.textContent = `${t("new_critical")}: ${typeLabel(a.type)} — ${t("case")} ${a.case_id}`;
  banner.hidden = false;
  banner.dataset.alert = a.alert_id;
  banner.classList.remove("blink");
  void banner.offsetWidth; // restart the animation
  banner.classList.add("blink");
  beep();
}
function onAlert(a) {
  if (!a || !a.alert_id) return;
  const old = st.alerts.get(a.alert_id);
  if (old && old.updated_at && a.updated_at && Date.parse(old.updated_at) > Date.parse(a.updated_at)) return;
  if (a.state === "open" && (!old || old.priority !== a.priority || old.state !== "open")) {
    st.fresh.add(a.alert_id);
    setTimeout(() => { st.fresh.delete(a.alert_id); renderQueue(); }, 3000);
    if (a.priority === "critical") cueCritical(a);
  }
  if (!st.cases.has(a.case_id)) loadCases().then(() => { renderQueue(); renderDetail(); }).catch(() => {});
  st.alerts.set(a.alert_id, a);
  if (a.state === "resolved" && st.tab === "resolved") st.resolved = [a, ...st.resolved.filter((r) => r.alert_id !== a.alert_id)];
  if (st.view && a.case_id === st.caseId) {
    const others = st.view.open_alerts.filter((x) => x.alert_id !== a.alert_id);
    st.view.open_alerts = UNRESOLVED.has(a.state) ? [...others, a] : others;
    if (!st.view.open_alerts.length) st.view.victim = null; // the privacy rule, mirrored
    else if (!st.view.victim && UNRESOLVED.has(a.state)) loadMap(st.caseId);
    renderMap();
  }
  renderQueue();
  renderDetail();
}
function onPosition(p) {
  if (!st.view || !p || !Array.isArray(p.case_ids) || !p.case_ids.includes(st.caseId)) return;
  const fix = { lat: p.lat, lon: p.lon, acc_m: p.acc_m, ts: p.ts };
  if (p.role === "offender") { st.view.offender = fix; st.track = [...st.track, fix].slice(-500); }
  else if (p.role === "victim" && st.view.open_alerts.length) st.view.victim = fix;
  renderMap();
}
function setConn(state) {
  const c = $("conn");
  c.className = `conn conn-${state}`;
  c.dataset.i18n = `conn_${state}`;
  c.textContent = t(`conn_${state}`);
}

// ---------- room tasks ----------
async function loadTasks() {
  const list = asList(await api("tasks?state=open"));
  st.tasks = new Map(list.map((x) => [x.task_id, x]));
  renderTasks();
}
function onTask(task) {
  if (!task || !task.task_id) return;
  if (task.state === "open") st.tasks.set(task.task_id, task); else st.tasks.delete(task.task_id);
  renderTasks();
}
function renderTasks() {
  const rows = openTasks(st.tasks.values(), Date.now()).map((x) => taskRow(x, Date.now(), openTaskDone));
  $("tasks").replaceChildren(...rows);
  $("tasks-empty").hidden = rows.length > 0;
}
let finishing = null;
function openTaskDone(task) {
  finishing = task;
  $("task-what").textContent = `${t(`task_${task.kind}`)} — ${t("case")} ${task.case_id}`;
  $("task-note").value = "";
  $("task-error").hidden = true;
  $("task-dialog").showModal();
}
async function submitTaskDone(ev) {
  ev.preventDefault();
  const task = finishing;
  const note = $("task-note").value.trim();
  const err = $("task-error");
  if (!task) return;
  if (!note) { err.textContent = t("note"); err.hidden = false; return; }
  try {
    const done = await api(`tasks/${encodeURIComponent(task.task_id)}/done`, { method: "POST", body: JSON.stringify({ note }) });
    $("task-dialog").close();
    onTask(done);
  } catch (e) {
    err.textContent = `${t("failed")}: ${e.message}`;
    err.hidden = false;
  }
}

// ---------- sign in / out ----------
function startStream() {
  if (st.stream) st.stream.stop();
  st.stream = openStream({
    purpose: st.purpose,
    onState: setConn,
    onOpen: () => { reloadAll().catch(() => {}); loadTasks().catch(() => {}); },
    onEvent: (kind, body) => {
      if (kind === "alert") onAlert(body);
      else if (kind === "position") onPosition(body);
      else if (kind === "task") onTask(body);
      else if (kind === "order") { if (applyOrderEvent(st.view, body)) renderMap(); }
      else if (kind === "gap") { reloadAll().catch(() => {}); loadTasks().catch(() => {}); }
    },
    onDenied: () => lost(),
    // The server ended the stream (token revoked or expired, signed out elsewhere): stop, ask to sign in.
    onEnded: () => { st.stream = null; signedOut(t("stream_ended")); },
  });
}
function ready(who) {
  $("who").textContent = `${who.name} (${who.role})`;
  if (st.stream) return;
  loadCases().catch(() => {}).then(() => reloadAlerts().catch(() => {}));
  startStream();
}
function choosePurpose() {
  st.purpose = $("purpose").value || null;
  if (!st.stream) return;
  startStream(); // the stream's purpose is fixed when it opens
  if (st.caseId) loadMap(st.caseId).catch(() => {});
}
function lost() {
  if (st.stream) st.stream.stop();
  st.stream = null;
  st.purpose = null;
  $("purpose").value = "";
  st.tasks.clear();
  st.alerts.clear();
  st.resolved = [];
  st.view = null;
  st.caseId = null;
  st.selected = null;
  $("who").textContent = "";
  setConn("off");
  renderAll();
}

// ---------- wiring ----------
function renderAll() { applyLabels(); fillOutcomes(); renderQueue(); renderDetail(); renderMap(); renderTasks(); renderSound(); }
function renderSound() { $("sound").textContent = st.sound ? t("sound_on") : t("sound_off"); }
$("resolve-form").addEventListener("submit", submitResolve);
$("task-form").addEventListener("submit", submitTaskDone);
$("task-cancel").addEventListener("click", () => $("task-dialog").close());
$("purpose").addEventListener("change", choosePurpose);
$("resolve-cancel").addEventListener("click", () => $("resolve").close());
$("lang").addEventListener("click", () => { setLang(lang() === "nl" ? "en" : "nl"); renderAll(); });
$("sound").addEventListener("click", () => {
  st.sound = !st.sound;
  localStorage.setItem(SOUND_KEY, st.sound ? "on" : "off");
  renderSound();
  if (st.sound) beep();
});
$("cue").addEventListener("click", () => {
  const a = st.alerts.get($("cue").dataset.alert);
  $("cue").hidden = true;
  if (a) selectAlert(a);
});
for (const tab of ["open", "resolved"]) {
  $(`tab-${tab}`).addEventListener("click", async () => {
    st.tab = tab;
    $("tab-open").classList.toggle("active", tab === "open");
    $("tab-resolved").classList.toggle("active", tab === "resolved");
    renderQueue();
    if (tab === "resolved") {
      try { st.resolved = asList(await api("alerts?state=resolved")); renderQueue(); } catch { /* shown on next reload */ }
    }
  });
}
$("zoom-fit").addEventListener("click", () => caseMap.fit());
window.addEventListener("resize", () => caseMap.invalidate());
document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select") || document.querySelector("dialog[open]") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const ids = queueOrder();
  const i = ids.indexOf(st.selected);
  const pick = (j) => { const a = st.alerts.get(ids[j]) || st.resolved.find((r) => r.alert_id === ids[j]); if (a) selectAlert(a); };
  if (ev.key === "ArrowDown" || ev.key === "j") { ev.preventDefault(); pick(Math.min(ids.length - 1, i + 1)); }
  else if (ev.key === "ArrowUp" || ev.key === "k") { ev.preventDefault(); pick(Math.max(0, i - 1)); }
  else if (ev.key === "a" || ev.key === "A") { const a = selected(); if (a && a.state === "open") { ev.preventDefault(); acknowledge(a); } }
  else if (ev.key === "r" || ev.key === "R") { const a = selected(); if (a && UNRESOLVED.has(a.state)) { ev.preventDefault(); openResolve(a); } }
  else if (ev.key === "Escape") $("cue").hidden = true;
});
setInterval(() => {
  for (const e of document.querySelectorAll("[data-countdown]")) {
    const a = st.alerts.get(e.dataset.countdown);
    if (a) { e.textContent = countdownText(a, st.deadlines, Date.now()); e.classList.toggle("overdue", e.textContent.startsWith(t("overdue"))); }
  }
  for (const e of document.querySelectorAll("[data-task-countdown]")) {
    const x = st.tasks.get(e.dataset.taskCountdown);
    if (x) { e.textContent = taskCountdown(x, Date.now()); e.classList.toggle("overdue", Date.parse(x.deadline) < Date.now()); }
  }
}, 1000);
setInterval(() => { if (st.view) renderMap(); }, 30000); // ages and staleness on the map

pagesConfig().then((c) => { st.deadlines = c.ack_deadline_s || {}; renderQueue(); });
renderAll();
wireLogin({ ready, lost });

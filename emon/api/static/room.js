// emon monitoring room. Plain script, no libraries, nothing loaded from another host.
// Data: REST under api/v1 (relative to this page) and the live SSE stream, read with fetch()
// because EventSource cannot send an Authorization header. The server decides what may be shown
// (the victim only while the case has an unresolved alert); this page never widens that.
"use strict";

(() => {
  const API = "api/v1/";
  const TOKEN_KEY = "emon.room.token";
  const LANG_KEY = "emon.room.lang";
  const STALE_S = 300; // a fix older than this is drawn grey
  const WATCHDOG_MS = 45000; // server heartbeats every ~15 s; silence this long means a dead stream
  const BACKOFF_MAX_MS = 30000;
  // Outcome codes offered when resolving; keep in step with the alert service.
  const OUTCOMES = ["intervened", "police_dispatched", "contact_made", "false_alarm", "technical", "other"];
  const UNRESOLVED = new Set(["open", "acknowledged"]);

  const I18N = {
    nl: {
      fit: "Alles", title: "Meldkamer toezicht", conn_off: "Niet verbonden", conn_live: "Live", conn_wait: "Opnieuw verbinden…",
      logout: "Afmelden", queue: "Meldingen", tab_open: "Open", tab_resolved: "Afgehandeld",
      queue_empty: "Geen meldingen.", no_case: "Kies een melding", detail: "Details", detail_none: "Geen melding gekozen.",
      lg_excl: "Verbodsgebied", lg_incl: "Gebodsgebied", lg_off: "Dader (± nauwkeurigheid)",
      lg_vic: "Slachtoffer (alleen bij open melding)", lg_home: "Woonadres dader",
      login_title: "Aanmelden", login_token: "Toegangstoken", login_hint: "Het token blijft alleen in dit tabblad bewaard.",
      login_go: "Aanmelden", login_bad: "Token ongeldig of zonder toegang.", resolve_title: "Melding afhandelen",
      outcome: "Uitkomst", note: "Notitie", cancel: "Annuleren", resolve: "Afhandelen", ack: "Bevestigen",
      note_required: "Een sabotagemelding vraagt een notitie.", failed: "Mislukt",
      st_open: "open", st_acknowledged: "bevestigd", st_resolved: "afgehandeld",
      late: "laat", escalated: "geëscaleerd", suppressed: "onderdrukt", replay: "na-ingestie",
      victim_hidden: "Slachtoffer niet getoond: geen open melding.", victim_none: "Geen positie slachtoffer bekend.",
      offender_none: "Geen positie dader bekend.", case: "Zaak", risk: "Risico", type: "Soort", rule: "Regel",
      state: "Status", priority: "Prioriteit", opened: "Geopend", acked: "Bevestigd", resolved_at: "Afgehandeld",
      distance: "Afstand", closest: "Kleinste afstand", offender_fix: "Positie dader", victim_fix: "Positie slachtoffer",
      recipients: "Ontvangers", explanation: "Toelichting", ago: "geleden", home: "woning", by: "door",
      r_low: "laag", r_medium: "midden", r_high: "hoog",
      o_intervened: "Ingegrepen", o_police_dispatched: "Politie ingezet", o_contact_made: "Contact met betrokkene",
      o_false_alarm: "Vals alarm", o_technical: "Technisch probleem", o_other: "Anders",
    },
    en: {
      fit: "Fit", title: "Monitoring room", conn_off: "Disconnected", conn_live: "Live", conn_wait: "Reconnecting…",
      logout: "Sign out", queue: "Alerts", tab_open: "Open", tab_resolved: "Resolved",
      queue_empty: "No alerts.", no_case: "Select an alert", detail: "Details", detail_none: "No alert selected.",
      lg_excl: "Exclusion zone", lg_incl: "Inclusion zone", lg_off: "Offender (± accuracy)",
      lg_vic: "Victim (only with an open alert)", lg_home: "Offender residence",
      login_title: "Sign in", login_token: "Access token", login_hint: "The token is kept in this tab only.",
      login_go: "Sign in", login_bad: "Token invalid or not allowed.", resolve_title: "Resolve alert",
      outcome: "Outcome", note: "Note", cancel: "Cancel", resolve: "Resolve", ack: "Acknowledge",
      note_required: "A tamper alert needs a note.", failed: "Failed",
      st_open: "open", st_acknowledged: "acknowledged", st_resolved: "resolved",
      late: "late", escalated: "escalated", suppressed: "suppressed", replay: "late upload",
      victim_hidden: "Victim not shown: no open alert.", victim_none: "No victim position known.",
      offender_none: "No offender position known.", case: "Case", risk: "Risk", type: "Type", rule: "Rule",
      state: "State", priority: "Priority", opened: "Opened", acked: "Acknowledged", resolved_at: "Resolved",
      distance: "Distance", closest: "Closest", offender_fix: "Offender position", victim_fix: "Victim position",
      recipients: "Recipients", explanation: "Explanation", ago: "ago", home: "residence", by: "by",
      r_low: "low", r_medium: "medium", r_high: "high",
      o_intervened: "Intervened", o_police_dispatched: "Police dispatched", o_contact_made: "Contacted person",
      o_false_alarm: "False alarm", o_technical: "Technical problem", o_other: "Other",
    },
  };
  // The alert service's vocabulary (emon/alerts/types.py); an unknown type is shown as is.
  const TYPE_LABELS = {
    nl: { exclusion_pre_alert: "Vooralarm verbodsgebied", exclusion_breach: "Verbodsgebied betreden",
      inclusion_breach: "Gebodsgebied verlaten", proximity_pre_alert: "Vooralarm nadering",
      proximity_breach: "Contactverbod: te dichtbij", proximity_unknown: "Afstand onbekend",
      retrospective_violation: "Overtreding achteraf", crossing_suspected: "Vermoedelijke doorkruising",
      tamper: "Sabotage", strap_open: "Band geopend", battery_low: "Batterij laag", battery_critical: "Batterij kritiek",
      no_fix: "Geen positie", no_communication: "Geen verbinding", panic: "Paniekknop", order_expiring: "Maatregel loopt af" },
    en: { exclusion_pre_alert: "Exclusion pre-alert", exclusion_breach: "Exclusion zone entered",
      inclusion_breach: "Inclusion zone left", proximity_pre_alert: "Proximity pre-alert",
      proximity_breach: "Contact ban: too close", proximity_unknown: "Distance unknown",
      retrospective_violation: "Retrospective violation", crossing_suspected: "Suspected crossing",
      tamper: "Tamper", strap_open: "Strap opened", battery_low: "Battery low", battery_critical: "Battery critical",
      no_fix: "No position", no_communication: "No communication", panic: "Panic button", order_expiring: "Order expiring" },
  };
  const PRIO_LABELS = {
    nl: { critical: "KRIT", high: "HOOG", normal: "NORM", low: "LAAG" },
    en: { critical: "CRIT", high: "HIGH", normal: "NORM", low: "LOW" },
  };
  const NOTE_REQUIRED = new Set(["tamper", "strap_open"]); // the service refuses these without a note

  const $ = (id) => document.getElementById(id);
  const svg = $("map");
  const SVG_NS = svg.namespaceURI; // taken from the page's own <svg>, so no namespace literal here

  const st = {
    lang: localStorage.getItem(LANG_KEY) === "en" ? "en" : "nl",
    token: sessionStorage.getItem(TOKEN_KEY),
    alerts: new Map(), // alert_id -> alert (unresolved, plus resolved ones seen in this session)
    resolved: [], // the resolved tab, from REST
    tab: "open",
    selectedAlert: null,
    caseId: null,
    map: null, // {case, zones, offender, victim, open_alerts}
    zoom: 1, // 1 = fitted; above 1 the map follows the offender
    fresh: new Set(),
    stream: null, // AbortController of the running stream
  };

  // ---------- text ----------
  const t = (key) => I18N[st.lang][key] ?? I18N.nl[key] ?? key;
  const typeLabel = (type) => TYPE_LABELS[st.lang][type] ?? String(type ?? "?");
  function applyLang() {
    document.documentElement.lang = st.lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    $("lang").textContent = st.lang === "nl" ? "EN" : "NL";
    document.title = `emon — ${t("title")}`;
    fillOutcomes();
    renderAll();
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(st.lang === "nl" ? "nl-NL" : "en-GB");
  }
  function fmtAge(iso) {
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (!Number.isFinite(s)) return "";
    if (s < 60) return `${Math.floor(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h} ${st.lang === "nl" ? "u" : "h"} ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} d`;
  }
  const fmtM = (m) => (m == null ? "—" : m >= 1000 ? `${(m / 1000).toFixed(m >= 10000 ? 0 : 1)} km` : `${Math.round(m)} m`);

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // ---------- REST ----------
  class HttpError extends Error {
    constructor(status, detail) { super(detail || `HTTP ${status}`); this.status = status; }
  }
  async function api(path, options = {}) {
    const res = await fetch(API + path, {
      ...options,
      cache: "no-store",
      headers: { Authorization: `Bearer ${st.token}`, "Content-Type": "application/json", ...(options.headers || {}) },
    });
    if (res.status === 401) { signOut(t("login_bad")); throw new HttpError(401); }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const d = body && body.detail;
      throw new HttpError(res.status, typeof d === "string" ? d : d ? JSON.stringify(d) : "");
    }
    return body;
  }
  const asList = (body) => (Array.isArray(body) ? body : (body && (body.alerts || body.items)) || []);

  async function reloadAlerts() {
    const [open, acked] = await Promise.all([api("alerts?state=open"), api("alerts?state=acknowledged")]);
    for (const [id, a] of st.alerts) if (UNRESOLVED.has(a.state)) st.alerts.delete(id);
    for (const a of [...asList(open), ...asList(acked)]) st.alerts.set(a.alert_id, a);
    if (st.tab === "resolved") st.resolved = asList(await api("alerts?state=resolved"));
    renderQueue();
    renderDetail();
  }
  async function loadMap(caseId) {
    st.caseId = caseId;
    try {
      const m = await api(`cases/${encodeURIComponent(caseId)}/map`);
      if (st.caseId === caseId) st.map = m;
    } catch (e) {
      if (st.caseId === caseId) st.map = null;
      $("case-info").textContent = `${t("failed")}: ${e.message}`;
    }
    renderMap();
  }
  async function reloadAll() {
    await reloadAlerts();
    if (st.caseId) await loadMap(st.caseId);
  }

  // ---------- live stream ----------
  function sseParser(onEvent) {
    // Server-Sent Events framing: lines end in LF, CRLF or CR; a blank line ends an event.
    let buf = "";
    let ev = { event: "message", data: [], id: null };
    function line(l) {
      if (l === "") {
        if (ev.data.length) onEvent(ev.event, ev.data.join("\n"), ev.id);
        ev = { event: "message", data: [], id: null };
        return;
      }
      if (l.startsWith(":")) return; // comment (heartbeat)
      const i = l.indexOf(":");
      const field = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? "" : l.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") ev.event = value;
      else if (field === "data") ev.data.push(value);
      else if (field === "id") ev.id = value;
    }
    return (chunk) => {
      buf += chunk;
      for (let m = /\r\n|\n|\r/.exec(buf); m; m = /\r\n|\n|\r/.exec(buf)) {
        if (m[0] === "\r" && m.index === buf.length - 1) break; // may be the first half of a CRLF
        line(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    };
  }
  function setConn(state) {
    const c = $("conn");
    c.className = `conn conn-${state}`;
    c.dataset.i18n = `conn_${state}`;
    c.textContent = t(`conn_${state}`);
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function runStream() {
    let attempt = 0;
    while (st.token) {
      const ctrl = new AbortController();
      st.stream = ctrl;
      let watchdog = null;
      const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), WATCHDOG_MS); };
      try {
        kick();
        const res = await fetch(`${API}stream`, {
          headers: { Authorization: `Bearer ${st.token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: ctrl.signal,
        });
        if (res.status === 401 || res.status === 403) { signOut(t("login_bad")); return; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setConn("live");
        // Anything may have changed while we were away: the stream has no replay.
        reloadAll().catch(() => {});
        const push = sseParser(onStreamEvent);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          attempt = 0;
          push(value);
        }
      } catch (e) {
        if (st.stream !== ctrl) return; // signed out or replaced
      } finally {
        clearTimeout(watchdog);
      }
      if (!st.token || st.stream !== ctrl) return;
      setConn("wait");
      attempt += 1;
      const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(attempt, 5));
      await sleep(delay / 2 + Math.random() * (delay / 2)); // capped exponential backoff with jitter
    }
  }

  function onStreamEvent(kind, data) {
    let body;
    try { body = JSON.parse(data); } catch { return; }
    if (kind === "alert") onAlert(body);
    else if (kind === "position") onPosition(body);
    else if (kind === "gap") reloadAll().catch(() => {});
  }
  function onAlert(a) {
    if (!a || !a.alert_id) return;
    const old = st.alerts.get(a.alert_id);
    if (old && old.updated_at && a.updated_at && Date.parse(old.updated_at) > Date.parse(a.updated_at)) return;
    if (!old && a.state === "open") {
      st.fresh.add(a.alert_id); // flashes a few times, then stays red like any open alert
      setTimeout(() => st.fresh.delete(a.alert_id), 3000);
    }
    st.alerts.set(a.alert_id, a);
    if (a.state === "resolved" && st.tab === "resolved") st.resolved = [a, ...st.resolved.filter((r) => r.alert_id !== a.alert_id)];
    if (st.map && a.case_id === st.caseId) {
      const others = st.map.open_alerts.filter((x) => x.alert_id !== a.alert_id);
      st.map.open_alerts = UNRESOLVED.has(a.state) ? [...others, a] : others;
      if (!st.map.open_alerts.length) st.map.victim = null; // the privacy rule, mirrored
      else if (!st.map.victim && UNRESOLVED.has(a.state)) loadMap(st.caseId); // victim now visible
      renderMap();
    }
    renderQueue();
    renderDetail();
  }
  function onPosition(p) {
    if (!st.map || !p || !Array.isArray(p.case_ids) || !p.case_ids.includes(st.caseId)) return;
    const fix = { lat: p.lat, lon: p.lon, acc_m: p.acc_m, ts: p.ts };
    if (p.role === "offender") st.map.offender = fix;
    else if (p.role === "victim" && st.map.open_alerts.length) st.map.victim = fix;
    renderMap();
  }

  // ---------- queue ----------
  function prioRank(p) {
    if (typeof p === "number") return p;
    const named = { critical: 0, high: 1, normal: 2, low: 3 };
    return named[String(p ?? "").toLowerCase()] ?? 9;
  }
  function queueItems() {
    if (st.tab === "resolved") return st.resolved;
    const stateRank = { open: 0, acknowledged: 1 };
    return [...st.alerts.values()]
      .filter((a) => UNRESOLVED.has(a.state))
      .sort((a, b) => stateRank[a.state] - stateRank[b.state]
        || prioRank(a.priority) - prioRank(b.priority)
        || Date.parse(a.opened_at) - Date.parse(b.opened_at));
  }
  function renderQueue() {
    const ul = $("queue");
    const items = queueItems();
    ul.replaceChildren(...items.map(alertRow));
    $("queue-empty").hidden = items.length > 0;
    const n = [...st.alerts.values()].filter((a) => a.state === "open").length;
    document.title = `${n ? `(${n}) ` : ""}emon — ${t("title")}`;
  }
  function alertRow(a) {
    const badges = [];
    if (a.late) badges.push(el("span", { class: "badge b-late" }, t("late")));
    if (a.escalated) badges.push(el("span", { class: "badge b-esc" }, t("escalated")));
    if (a.suppressed) badges.push(el("span", { class: "badge b-sup" }, t("suppressed")));
    if (a.live === false) badges.push(el("span", { class: "badge b-replay" }, t("replay")));
    if (a.state === "acknowledged") badges.push(el("span", { class: "badge b-ack" }, t("st_acknowledged")));
    const rank = prioRank(a.priority);
    const cls = ["alert-row", `st-${a.state}`];
    if (a.alert_id === st.selectedAlert) cls.push("selected");
    if (st.fresh.has(a.alert_id)) cls.push("fresh");
    return el("li", {},
      el("button", { type: "button", class: cls.join(" "), onclick: () => selectAlert(a) },
        el("span", { class: `prio prio-${Math.min(rank, 9)}` }, PRIO_LABELS[st.lang][a.priority] ?? String(a.priority ?? "–")),
        el("span", { class: "a-type" }, typeLabel(a.type)),
        el("span", { class: "a-age", "data-age": a.opened_at || "" }, fmtAge(a.opened_at)),
        el("span", { class: "a-meta" },
          el("span", {}, `${t("case")} ${a.case_id}`),
          el("span", { class: `risk-${a.risk}` }, `${t("risk")}: ${t(`r_${a.risk}`)}`),
          ...badges)));
  }
  function selectAlert(a) {
    st.selectedAlert = a.alert_id;
    st.fresh.delete(a.alert_id);
    renderQueue();
    renderDetail();
    if (a.case_id !== st.caseId || !st.map) { st.map = null; st.zoom = 1; renderMap(); loadMap(a.case_id); }
  }

  // ---------- detail and actions ----------
  function selected() {
    return st.alerts.get(st.selectedAlert) || st.resolved.find((r) => r.alert_id === st.selectedAlert) || null;
  }
  const outcomeLabel = (o) => I18N[st.lang][`o_${o}`] ?? String(o ?? "");
  function fixText(f) {
    if (!f) return "—";
    return `${Number(f.lat).toFixed(5)}, ${Number(f.lon).toFixed(5)} ±${fmtM(f.acc_m)} (${fmtTime(f.ts)})`;
  }
  function renderDetail() {
    const box = $("detail");
    const a = selected();
    if (!a) { box.replaceChildren(el("p", { class: "muted" }, t("detail_none"))); return; }
    const rows = [
      ["type", typeLabel(a.type)], ["rule", a.rule], ["case", a.case_id], ["risk", t(`r_${a.risk}`)],
      ["state", t(`st_${a.state}`)], ["priority", a.priority], ["opened", `${fmtTime(a.opened_at)} (${fmtAge(a.opened_at)} ${t("ago")})`],
      ["acked", a.acknowledged_at ? `${fmtTime(a.acknowledged_at)} ${t("by")} ${a.acknowledged_by ?? "?"}` : null],
      ["resolved_at", a.resolved_at ? `${fmtTime(a.resolved_at)} ${t("by")} ${a.resolved_by ?? "?"} — ${outcomeLabel(a.outcome)}` : null],
      ["distance", a.distance_m != null ? fmtM(a.distance_m) : null], ["closest", a.closest_m != null ? fmtM(a.closest_m) : null],
      ["offender_fix", a.offender_position ? fixText(a.offender_position) : null],
      ["victim_fix", a.victim_position ? fixText(a.victim_position) : null],
      ["recipients", Array.isArray(a.recipients) && a.recipients.length ? a.recipients.join(", ") : null],
    ].filter(([, v]) => v != null && v !== "");
    const dl = el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, String(v))]));
    const actions = el("div", { class: "actions" });
    if (a.state === "open") actions.append(el("button", { type: "button", class: "warn", onclick: () => acknowledge(a) }, t("ack")));
    if (UNRESOLVED.has(a.state)) actions.append(el("button", { type: "button", onclick: () => openResolve(a) }, t("resolve")));
    const parts = [el("h3", {}, typeLabel(a.type)), actions, dl];
    if (a.explanation && Object.keys(a.explanation).length) {
      parts.push(el("h4", {}, t("explanation")), el("pre", {}, JSON.stringify(a.explanation, null, 2)));
    }
    box.replaceChildren(...parts);
  }
  async function acknowledge(a) {
    try {
      const r = await api(`alerts/${encodeURIComponent(a.alert_id)}/ack`, { method: "POST", body: "{}" });
      if (r && r.alert_id) onAlert(r); else await reloadAlerts();
    } catch (e) {
      if (e.status !== 401) window.alert(`${t("failed")}: ${e.message}`);
    }
  }
  function fillOutcomes() {
    const sel = $("outcome");
    const keep = sel.value;
    sel.replaceChildren(...OUTCOMES.map((o) => el("option", { value: o }, t(`o_${o}`))));
    if (keep) sel.value = keep;
  }
  let resolving = null;
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
  const R_EARTH = 6371008.8;
  const rad = (d) => (d * Math.PI) / 180;
  function svgEl(tag, attrs = {}, text = null) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    return e;
  }
  function rings(geometry) {
    // Polygon -> [rings]; MultiPolygon -> [[rings], ...]; always return a list of polygons.
    if (!geometry) return [];
    if (geometry.type === "Polygon") return [geometry.coordinates];
    if (geometry.type === "MultiPolygon") return geometry.coordinates;
    return [];
  }
  function niceMetres(m) {
    const p = 10 ** Math.floor(Math.log10(m));
    const f = m / p;
    return (f >= 5 ? 5 : f >= 2 ? 2 : 1) * p;
  }
  function renderMap() {
    const m = st.map;
    $("case-title").textContent = m ? `${t("case")} ${m.case.case_id}` : st.caseId ? `${t("case")} ${st.caseId}` : t("no_case");
    $("case-info").textContent = m
      ? `${t("risk")}: ${t(`r_${m.case.risk}`)} · ${m.case.offender_device}${m.case.order && m.case.order.contact_ban_m ? ` · contact ≤ ${fmtM(m.case.order.contact_ban_m)}` : ""}`
      : "";
    const note = $("privacy-note");
    note.hidden = !m || !!m.victim || !m.case.victim_device;
    note.textContent = m && !m.open_alerts.length ? t("victim_hidden") : t("victim_none");
    const box = svg.getBoundingClientRect();
    const W = Math.max(200, Math.round(box.width));
    const H = Math.max(200, Math.round(box.height));
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.replaceChildren();
    if (!m) return;

    // A local equirectangular projection around the residence: metres east/north. Good to well
    // under 1 % over a city; it is for drawing only, the distances shown come from the server.
    const lat0 = m.case.residence ? m.case.residence.lat : 52.1;
    const lon0 = m.case.residence ? m.case.residence.lon : 5.1;
    const kx = rad(1) * R_EARTH * Math.cos(rad(lat0));
    const ky = rad(1) * R_EARTH;
    const local = (lon, lat) => [(lon - lon0) * kx, (lat - lat0) * ky];
    const polys = m.zones.features.map((f) => ({ f, polys: rings(f.geometry).map((p) => p.map((r) => r.map(([x, y]) => local(x, y)))) }));
    const ban = (m.case.order && m.case.order.contact_ban_m) || 0;
    // Fit on what matters: residence, exclusion zones, people. A large inclusion zone (a whole
    // municipality) is drawn but does not set the scale, unless there is nothing else.
    const pts = [[0, 0, 0]];
    const excl = polys.filter((z) => z.f.properties.kind !== "inclusion");
    for (const z of excl.length || m.offender ? excl : polys) {
      for (const p of z.polys) for (const r of p) for (const [x, y] of r) pts.push([x, y, 0]);
    }
    if (m.offender) pts.push([...local(m.offender.lon, m.offender.lat), m.offender.acc_m || 0]);
    if (m.victim) pts.push([...local(m.victim.lon, m.victim.lat), Math.max(ban, m.victim.acc_m || 0)]);
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y, r] of pts) { x0 = Math.min(x0, x - r); y0 = Math.min(y0, y - r); x1 = Math.max(x1, x + r); y1 = Math.max(y1, y + r); }
    const span = Math.max(x1 - x0, y1 - y0, 400);
    const s = (st.zoom * Math.min(W, H)) / (span * 1.15); // pixels per metre, with a margin
    // Zoomed in, the map follows the offender; at the fitted scale it shows everything.
    const follow = st.zoom > 1 && m.offender ? local(m.offender.lon, m.offender.lat) : null;
    const cx = follow ? follow[0] : (x0 + x1) / 2;
    const cy = follow ? follow[1] : (y0 + y1) / 2;
    const px = ([x, y]) => [W / 2 + (x - cx) * s, H / 2 - (y - cy) * s];
    const ptsAttr = ([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`;

    // grid every "nice" distance, so the eye can measure
    const step = niceMetres(span / 6);
    const g = svgEl("g");
    for (let gx = Math.ceil((cx - W / 2 / s) / step) * step; gx < cx + W / 2 / s; gx += step) {
      const [sx] = px([gx, 0]);
      g.append(svgEl("line", { class: "m-grid", x1: sx, y1: 0, x2: sx, y2: H }));
    }
    for (let gy = Math.ceil((cy - H / 2 / s) / step) * step; gy < cy + H / 2 / s; gy += step) {
      const [, sy] = px([0, gy]);
      g.append(svgEl("line", { class: "m-grid", x1: 0, y1: sy, x2: W, y2: sy }));
    }
    svg.append(g);

    for (const { f, polys: ps } of polys) {
      const cls = f.properties.kind === "inclusion" ? "m-zone-incl" : "m-zone-excl";
      const d = ps.map((p) => p.map((r) => `M${r.map((c) => ptsAttr(px(c))).join("L")}Z`).join("")).join("");
      svg.append(svgEl("path", { class: cls, d }, null));
      const outer = ps[0] && ps[0][0];
      if (outer && outer.length) {
        const xs = outer.map((c) => c[0]);
        const ys = outer.map((c) => c[1]);
        const [lx, ly] = px([(Math.min(...xs) + Math.max(...xs)) / 2, Math.max(...ys)]);
        svg.append(svgEl("text", { class: "m-label", x: lx, y: ly - 6, "text-anchor": "middle" }, f.properties.name));
      }
    }
    if (m.case.residence) {
      const [hx, hy] = px(local(m.case.residence.lon, m.case.residence.lat));
      svg.append(svgEl("rect", { class: "m-home", x: hx - 5, y: hy - 5, width: 10, height: 10 }));
      svg.append(svgEl("text", { class: "m-label-small", x: hx + 9, y: hy + 4 }, t("home")));
    }
    const now = Date.now();
    function person(fix, who) {
      const p = px(local(fix.lon, fix.lat));
      const grp = svgEl("g", { class: (now - Date.parse(fix.ts)) / 1000 > STALE_S ? "stale" : "" });
      if (who === "vic" && ban) grp.append(svgEl("circle", { class: "m-ban", cx: p[0], cy: p[1], r: ban * s }));
      grp.append(svgEl("circle", { class: `m-acc-${who}`, cx: p[0], cy: p[1], r: Math.max(0, (fix.acc_m || 0) * s) }));
      grp.append(svgEl("circle", { class: `m-dot-${who}`, cx: p[0], cy: p[1], r: 6 }));
      const label = `${who === "off" ? t("lg_off").split(" (")[0] : t("lg_vic").split(" (")[0]} · ${fmtAge(fix.ts)}`;
      // offender labelled above-left, victim below-right, so the two never cover each other
      const at = who === "off" ? { x: p[0] - 10, y: p[1] - 10, "text-anchor": "end" } : { x: p[0] + 10, y: p[1] + 18 };
      grp.append(svgEl("text", { class: "m-label", ...at }, label));
      svg.append(grp);
      return p;
    }
    const po = m.offender ? person(m.offender, "off") : null;
    const pv = m.victim ? person(m.victim, "vic") : null;
    if (po && pv) {
      const [ox, oy] = local(m.offender.lon, m.offender.lat);
      const [vx, vy] = local(m.victim.lon, m.victim.lat);
      svg.prepend(svgEl("line", { class: "m-link", x1: po[0], y1: po[1], x2: pv[0], y2: pv[1] }));
      svg.append(svgEl("text", { class: "m-label", x: (po[0] + pv[0]) / 2 + 6, y: (po[1] + pv[1]) / 2 },
        `≈ ${fmtM(Math.hypot(ox - vx, oy - vy))}`));
    }
    if (!m.offender) svg.append(svgEl("text", { class: "m-label-small", x: 16, y: H - 48 }, t("offender_none")));

    // scale bar (bottom left) and north arrow (top left)
    const barM = niceMetres(W / 5 / s);
    const barPx = barM * s;
    const bx = 16;
    const by = H - 20;
    svg.append(svgEl("path", { class: "m-scale", d: `M${bx},${by - 6}V${by}H${bx + barPx}V${by - 6}` }));
    svg.append(svgEl("text", { class: "m-label", x: bx + barPx / 2, y: by - 10, "text-anchor": "middle" }, fmtM(barM)));
    svg.append(svgEl("path", { class: "m-north", d: `M${W - 24},16l7,18l-7,-5l-7,5z` }));
    svg.append(svgEl("text", { class: "m-label", x: W - 24, y: 48, "text-anchor": "middle" }, "N"));
  }

  function renderAll() { renderQueue(); renderDetail(); renderMap(); }

  // ---------- sign in / out ----------
  function signOut(message) {
    st.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (st.stream) st.stream.abort();
    st.stream = null;
    st.alerts.clear();
    st.resolved = [];
    st.map = null;
    st.caseId = null;
    st.selectedAlert = null;
    setConn("off");
    renderAll();
    const err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    if (!$("login").open) $("login").showModal();
  }
  async function signIn(token) {
    st.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await reloadAlerts();
    } catch (e) {
      if (e.status === 403) signOut(t("login_bad"));
      if (!st.token) return;
    }
    if ($("login").open) $("login").close();
    runStream();
  }

  // ---------- wiring ----------
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("token").value.trim();
    $("token").value = "";
    if (v) signIn(v);
  });
  $("login").addEventListener("cancel", (ev) => ev.preventDefault()); // no data without a token
  $("resolve-form").addEventListener("submit", submitResolve);
  $("resolve-cancel").addEventListener("click", () => $("resolve").close());
  $("logout").addEventListener("click", () => signOut(""));
  $("lang").addEventListener("click", () => {
    st.lang = st.lang === "nl" ? "en" : "nl";
    localStorage.setItem(LANG_KEY, st.lang);
    applyLang();
  });
  for (const tab of ["open", "resolved"]) {
    $(`tab-${tab}`).addEventListener("click", async () => {
      st.tab = tab;
      $("tab-open").classList.toggle("active", tab === "open");
      $("tab-resolved").classList.toggle("active", tab === "resolved");
      renderQueue();
      if (tab === "resolved" && st.token) {
        try { st.resolved = asList(await api("alerts?state=resolved")); renderQueue(); } catch { /* shown on next reload */ }
      }
    });
  }
  window.addEventListener("resize", () => renderMap());
  const zoomBy = (f) => { st.zoom = Math.min(64, Math.max(1, st.zoom * f)); renderMap(); };
  $("zoom-in").addEventListener("click", () => zoomBy(2));
  $("zoom-out").addEventListener("click", () => zoomBy(0.5));
  $("zoom-fit").addEventListener("click", () => { st.zoom = 1; renderMap(); });
  svg.addEventListener("wheel", (ev) => { ev.preventDefault(); zoomBy(ev.deltaY < 0 ? 1.25 : 0.8); }, { passive: false });
  setInterval(() => {
    for (const e of document.querySelectorAll("[data-age]")) e.textContent = fmtAge(e.dataset.age);
  }, 5000);
  setInterval(() => { if (st.map) renderMap(); }, 30000); // ages and staleness on the map

  applyLang();
  if (st.token) signIn(st.token);
  else signOut("");
})();

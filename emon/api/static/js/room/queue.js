// The alert queue: order, grouping by case and episode, countdown to the acknowledgement deadline.
//
// Order: open alerts before acknowledged ones; then priority (critical first); then the
// acknowledgement deadline, soonest first. An alert already past its deadline has been escalated
// by the service, so alerts that can still be acknowledged in time come first, then the overdue
// ones (longest overdue last), then those without a deadline. Alerts of the same case and episode
// stay together, placed where the most urgent of them belongs.
import { t, typeLabel, prioLabel } from "../i18n.js";
import { el, fmtDuration } from "../util.js";
import { deviceName } from "./explain.js";

const PRIO_RANK = { critical: 0, high: 1, normal: 2, low: 3 };
const STATE_RANK = { open: 0, acknowledged: 1 };
export const UNRESOLVED = new Set(["open", "acknowledged"]);

/** Seconds until the alert's acknowledgement deadline (negative: overdue), or null without one. */
export function remaining(a, deadlines, nowMs) {
  const limit = Number(deadlines?.[a.priority] ?? 0);
  if (a.state !== "open" || !(limit > 0)) return null;
  return (Date.parse(a.opened_at) + limit * 1000 - nowMs) / 1000;
}

function urgency(a, deadlines, nowMs) {
  const left = remaining(a, deadlines, nowMs);
  const band = left == null ? 2 : left >= 0 ? 0 : 1;
  return [STATE_RANK[a.state] ?? 2, PRIO_RANK[a.priority] ?? 9, band, left == null ? Date.parse(a.opened_at) : band === 1 ? -left : left];
}
function compare(x, y) {
  for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/** Groups [[alert, ...], ...] in queue order; each group is one case and episode, most urgent first. */
export function ordered(alerts, deadlines, nowMs) {
  const keyed = alerts.map((a) => ({ a, u: urgency(a, deadlines, nowMs) })).sort((p, q) => compare(p.u, q.u));
  const groups = new Map();
  for (const { a } of keyed) {
    const key = `${a.case_id}|${a.episode}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  return [...groups.values()];
}

export function countdownText(a, deadlines, nowMs) {
  const left = remaining(a, deadlines, nowMs);
  if (left == null) return a.state === "open" ? t("no_deadline") : "";
  return left >= 0 ? fmtDuration(left) : `${t("overdue")} ${fmtDuration(-left)}`;
}

/** One queue row (a button); ``nested`` marks a further alert of the same case and episode. */
export function row(a, { selected, fresh, nested, roles, deadlines, onSelect }) {
  const badges = [];
  if (a.late) badges.push(el("span", { class: "badge b-late" }, t("late")));
  if (a.escalated) badges.push(el("span", { class: "badge b-esc" }, t("escalated")));
  if (a.suppressed) badges.push(el("span", { class: "badge b-sup" }, t("suppressed")));
  if (a.live === false) badges.push(el("span", { class: "badge b-replay" }, t("replay")));
  if (a.state === "acknowledged") badges.push(el("span", { class: "badge b-ack" }, t("st_acknowledged")));
  const device = deviceOf(a);
  const left = remaining(a, deadlines, Date.now());
  const cls = ["alert-row", `st-${a.state}`, `prio-${a.priority}`];
  if (selected) cls.push("selected");
  if (fresh) cls.push("fresh");
  if (nested) cls.push("nested");
  return el("li", {},
    el("button", { type: "button", class: cls.join(" "), "data-alert": a.alert_id, onclick: () => onSelect(a) },
      el("span", { class: `prio prio-${a.priority}` }, prioLabel(a.priority)),
      el("span", { class: "a-type" }, typeLabel(a.type)),
      el("span", { class: `a-countdown${left != null && left < 0 ? " overdue" : ""}`, "data-countdown": a.alert_id },
        countdownText(a, deadlines, Date.now())),
      el("span", { class: "a-meta" },
        el("span", {}, `${t("case")} ${a.case_id}`),
        device ? el("span", { class: "a-device" }, deviceName(device, roles)) : null,
        el("span", { class: `risk-${a.risk}` }, `${t("risk")}: ${t(`r_${a.risk}`)}`),
        ...badges)));
}

/** The device an alert concerns: the device of a device alert, else the first fix's device. */
export function deviceOf(a) {
  if (a.device_id) return a.device_id;
  const ev = a.explanation && Array.isArray(a.explanation.evidence) ? a.explanation.evidence : [];
  return ev.length ? ev[0].device_id : a.explanation?.device_id ?? null;
}

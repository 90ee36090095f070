// An alert's explanation as sentences a person reads in seconds: which fixes (time, accuracy, age),
// which rule, which distance, provable or only possible, and what emon did. The raw JSON stays
// available behind a toggle (see main.js).
import { t, recipientLabel } from "../i18n.js";
import { fmtClock, fmtDuration, fmtM, fmtTime } from "../util.js";

/** "ankle tag tag-1" / "victim's device vic-1" / the bare id when its role is unknown. */
export function deviceName(deviceId, roles) {
  if (!deviceId) return "";
  const role = roles.get(deviceId);
  if (role === "offender") return `${t("dev_tag")} ${deviceId}`;
  if (role === "victim") return `${t("dev_victim")} ${deviceId}`;
  return deviceId;
}

function ruleSentence(a, caseDoc, roles) {
  const rule = String(a.rule || "");
  const [kind, ...rest] = rule.split(":");
  const name = rest.join(":");
  if (kind === "exclusion") return t("x_rule_excl", { zone: name });
  if (kind === "inclusion") return t("x_rule_incl", { zone: name });
  if (kind === "proximity") return t("x_rule_prox", { ban: fmtM(caseDoc?.order?.contact_ban_m) });
  if (kind === "order") return t("x_rule_order");
  if (kind === "device") return t("x_rule_device", { device: deviceName(rest[0], roles) });
  return `${t("rule")}: ${rule}`;
}

function who(deviceId, roles) {
  const role = roles.get(deviceId);
  const label = role === "offender" ? t("offender") : role === "victim" ? t("victim") : t("device");
  return `${label} (${deviceName(deviceId, roles)})`;
}

/** The sentences (strings) explaining alert ``a``; ``roles`` maps device id -> offender|victim. */
export function explain(a, caseDoc, roles) {
  const x = a.explanation || {};
  const out = [ruleSentence(a, caseDoc, roles)];
  for (const e of Array.isArray(x.evidence) ? x.evidence : []) {
    out.push(t("x_fix", { who: who(e.device_id, roles), time: fmtClock(e.ts), acc: fmtM(e.acc_m), age: fmtDuration(e.age_s) }));
  }
  if (x.event) out.push(t("x_event", { device: deviceName(x.device_id, roles), event: x.event, time: fmtTime(x.ts) }));
  if (x.silent_since) {
    out.push(t("x_silent", { device: deviceName(x.device_id, roles), time: fmtTime(x.silent_since), age: fmtDuration(x.silent_for_s) }));
  }
  const kind = String(a.rule || "").split(":")[0];
  const d = x.distance_m ?? a.distance_m;
  if (d != null && (kind === "exclusion" || kind === "inclusion")) {
    out.push(t(d < 0 ? "x_dist_inside" : "x_dist_outside", { d: fmtM(Math.abs(d)) }));
  } else if (d != null && kind === "proximity") {
    out.push(t("x_dist_prox", { d: fmtM(d), ban: fmtM(caseDoc?.order?.contact_ban_m) }));
  }
  if (a.closest_m != null && kind === "proximity" && a.closest_m !== d) out.push(t("x_closest", { d: fmtM(a.closest_m) }));
  if (x.classification === "breach") out.push(t("x_breach"));
  else if (x.classification === "possible") out.push(t("x_possible"));
  else if (x.classification === "clear") out.push(t("x_clear"));
  const detail = x.detail || {};
  if (detail.implausible_jump) out.push(t("x_jump"));
  if (detail.reason === "no_fresh_position") out.push(t("x_no_fresh"));
  if (x.live === false || a.late) out.push(t("x_late"));
  const recipients = Array.isArray(a.recipients) ? a.recipients : [];
  out.push(recipients.length ? t("x_notified", { who: recipients.map(recipientLabel).join(", ") }) : t("x_notified_none"));
  if (detail.locate_now || x.locate_now) out.push(t("x_locate"));
  if (a.escalated) out.push(t("x_escalated"));
  if (a.suppressed) out.push(t("x_suppressed"));
  if (a.acknowledged_at) out.push(t("x_acked", { time: fmtTime(a.acknowledged_at), who: a.acknowledged_by ?? "?" }));
  if (a.order_version != null) out.push(t("x_order_version", { n: a.order_version }));
  return out;
}

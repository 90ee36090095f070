// An order as a legal object on the pages: the list of orders that end soon, are open-ended or ended
// without a decision (GET /api/v1/orders/expiring), and one case's order — kind, decision, term, and
// whether it is in force (GET /api/v1/cases/{id}/order). Rendering only; time is an argument.
import { t } from "./i18n.js";
import { el, fmtTime } from "./util.js";

export const DAY_MS = 86400000;

/** Whole days from ``nowMs`` until ``iso`` (rounded down; negative once ended). */
export function daysLeft(iso, nowMs) {
  return Math.floor((Date.parse(iso) - nowMs) / DAY_MS);
}

const kindLabel = (kind) => (t(`ok_${kind}`) === `ok_${kind}` ? String(kind) : t(`ok_${kind}`));

/**
 * The three groups of ``GET /orders/expiring`` as lists whose entries link to their case
 * (``#case=<id>``, handled by the page): ending soon with the days left, open-ended, ended unanswered.
 */
export function expiringList(answer, nowMs) {
  const link = (item, extra) => el("li", { "data-case": item.case_id },
    el("a", { href: `#case=${encodeURIComponent(item.case_id)}` }, item.case_id),
    ` · ${kindLabel(item.kind)}`, extra ? [" · ", extra] : null);
  const group = (key, title, items, extra) => el("div", { class: "expiring-group", "data-group": key },
    el("h4", {}, title),
    items.length ? el("ul", {}, ...items.map((i) => link(i, extra(i)))) : el("p", { class: "muted small" }, t("cw_exp_none")));
  return [
    group("expiring", t("cw_exp_soon"), answer.expiring || [],
      (i) => el("span", { class: "expiry soon" }, t("cw_days_left", { n: Math.max(0, daysLeft(i.valid_until, nowMs)) }))),
    group("open_ended", t("cw_exp_open"), answer.open_ended || [], () => null),
    group("expired_without_decision", t("cw_exp_lapsed"), answer.expired_without_decision || [],
      (i) => el("span", { class: "expiry over" }, `${t("cw_expired")} ${fmtTime(i.valid_until)}`)),
  ];
}

/**
 * One case's order: its kind, the decision that imposed or last extended it (from the case document),
 * its term, — visibly — whether it is in force, and the decisions recorded about its end.
 */
export function orderStatus(status, order) {
  const decision = order && order.decision;
  const decisionText = decision
    ? [decision.reference, decision.authority, decision.date ? fmtTime(decision.date) : ""].filter(Boolean).join(", ")
    : t("cw_no_decision");
  const term = `${status.valid_from ? fmtTime(status.valid_from) : "—"} → ${status.valid_until ? fmtTime(status.valid_until) : t("cw_no_end")}`;
  return [
    el("p", {}, `${t("cw_order")}: ${kindLabel(status.kind)}`),
    el("p", {}, `${t("cw_decision")}: ${decisionText}`),
    el("p", {}, `${t("cw_term")}: ${term}`),
    el("p", { id: "order-in-force", class: status.in_force ? "in-force" : "expiry over not-in-force" },
      status.in_force ? t("cw_in_force") : t("cw_not_in_force"),
      status.expired_without_decision ? ` (${t("cw_exp_lapsed").toLowerCase()})` : ""),
    (status.decisions || []).length ? el("ul", { id: "order-decisions", class: "small" },
      ...status.decisions.map((d) => el("li", {},
        `${fmtTime(d.decided_at)} · ${t(`cw_d_${d.decision}`)}${d.new_until ? ` → ${fmtTime(d.new_until)}` : ""}`,
        ` · ${d.decided_by}: ${d.reason}`))) : null,
  ].filter(Boolean);
}

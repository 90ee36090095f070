// Whether the selected case's order is in force: after its end without a decision the order's rules
// produce no violations, so the room must see at a glance that nothing is being enforced for the case.
// The map carries ``order_in_force``; an ``order`` event on the stream (``case_id``, ``in_force``)
// changes it while the case is open on screen.

/** True when ``view`` (GET /cases/{id}/map) says the order is not in force; unknown counts as in force. */
export const orderLapsed = (view) => !!view && view.order_in_force === false;

/** Apply an ``order`` stream event to the shown map data; true when it concerned the shown case. */
export function applyOrderEvent(view, event) {
  if (!view || !event || event.case_id !== view.case.case_id || typeof event.in_force !== "boolean") return false;
  view.order_in_force = event.in_force;
  return true;
}

"""CAP 1.2 messages to police systems about an order itself (not an emergency): imposed, extended,
changed, ended. Pure: the time is passed in.

``Alert`` when an order is imposed, ``Update`` when it is extended or changed, ``Cancel`` when it ends;
status Actual, urgency Unknown, severity Minor, certainty Observed. ``incidents`` is the case id, so a
receiver groups every message about one order; ``identifier`` is stable per (case, version, event), so
a re-sent message is recognised.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from enum import StrEnum

from emon.alerts.cap import NS, RESTRICTION, MsgType, cap_time
from emon.case import Case
from emon.orders.plain import describe

_NAMESPACE = uuid.UUID("8a4c2f0e-5b1d-4c7a-9e3f-6f7264657273")  # fixed forever: identifiers must not change


class OrderEvent(StrEnum):
    IMPOSED = "imposed"
    EXTENDED = "extended"
    CHANGED = "changed"
    ENDED = "ended"


_MSG = {
    OrderEvent.IMPOSED: MsgType.ALERT,
    OrderEvent.EXTENDED: MsgType.UPDATE,
    OrderEvent.CHANGED: MsgType.UPDATE,
    OrderEvent.ENDED: MsgType.CANCEL,
}
_HEAD = {
    OrderEvent.IMPOSED: "Maatregel opgelegd (order imposed)",
    OrderEvent.EXTENDED: "Maatregel verlengd (order extended)",
    OrderEvent.CHANGED: "Maatregel gewijzigd (order changed)",
    OrderEvent.ENDED: "Maatregel beëindigd (order ended)",
}


def message_id(case_id: str, version: int, event: OrderEvent) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{case_id}|{version}|{event.value}"))


def police_event(
    last: tuple[int, int, bool] | None, version: int, extensions: int, *, ended: bool
) -> OrderEvent | None:
    """What police systems must be told now, given what they were last told (``last`` = (version,
    extensions, ended) or None if never): the order version in force, its extension count, and whether
    its term has just ended. None: nothing new."""
    if ended:
        return None if last is not None and last[2] and last[0] == version else OrderEvent.ENDED
    if last is None:
        return OrderEvent.IMPOSED
    if version > last[0]:
        return OrderEvent.EXTENDED if extensions > last[1] else OrderEvent.CHANGED
    return None


def build_order_cap(case: Case, version: int, event: OrderEvent, *, sender: str, sent: datetime) -> bytes:
    """The CAP document about ``case``'s order (version ``version``) for police systems (UTF-8 XML)."""
    plain = describe(case, sent, "nl")
    root = ET.Element(f"{{{NS}}}alert")

    def sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{NS}}}{tag}")
        el.text = text
        return el

    sub(root, "identifier", message_id(case.case_id, version, event))
    sub(root, "sender", sender)
    sub(root, "sent", cap_time(sent))
    sub(root, "status", "Actual")
    sub(root, "msgType", _MSG[event].value)
    sub(root, "source", "emon")
    sub(root, "scope", "Restricted")
    sub(root, "restriction", RESTRICTION)
    sub(root, "incidents", case.case_id)
    info = ET.SubElement(root, f"{{{NS}}}info")
    sub(info, "language", "nl-NL")
    sub(info, "category", "Security")
    sub(info, "event", _HEAD[event])
    sub(info, "responseType", "None")
    sub(info, "urgency", "Unknown")
    sub(info, "severity", "Minor")
    sub(info, "certainty", "Observed")
    code = ET.SubElement(info, f"{{{NS}}}eventCode")
    sub(code, "valueName", "emon:order_event")
    sub(code, "value", event.value)
    o = case.order
    if o.valid_from is not None:
        sub(info, "effective", cap_time(o.valid_from))
    if o.valid_until is not None and event is not OrderEvent.ENDED:
        sub(info, "expires", cap_time(o.valid_until))
    sub(info, "senderName", "emon elektronische monitoring")
    sub(info, "headline", f"{_HEAD[event]} — zaak {case.case_id}")
    sub(info, "description", "\n".join([plain["summary"], *(r["text"] for r in plain["rules"])]))
    params = [
        ("case_id", case.case_id),
        ("order_version", str(version)),
        ("kind", o.kind.value),
        ("person_ref", case.person_ref or ""),
        ("offender_device", case.offender_device),
    ]
    for name, value in params:
        if value:
            p = ET.SubElement(info, f"{{{NS}}}parameter")
            sub(p, "valueName", name)
            sub(p, "value", value)
    for zone in (*o.exclusion_zones, *o.inclusion_zones):
        area = ET.SubElement(info, f"{{{NS}}}area")
        sub(area, "areaDesc", zone.name)
        if zone.circle is not None:
            c = zone.circle
            sub(area, "circle", f"{c.lat:.6f},{c.lon:.6f} {c.radius_m / 1000:.3f}")
        else:
            assert zone.geometry is not None
            polys = (
                [zone.geometry["coordinates"]]
                if zone.geometry["type"] == "Polygon"
                else zone.geometry["coordinates"]
            )
            for poly in polys:
                sub(area, "polygon", " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in poly[0]))
    ET.register_namespace("", NS)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document

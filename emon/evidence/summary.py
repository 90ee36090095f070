"""What people read in a pack: a summary in Dutch and English (HTML) and a GeoJSON of zones and track."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from shapely.geometry import mapping

from emon.geo import geodesic_circle

if TYPE_CHECKING:
    from emon.evidence.pack import PackData, StoredFix


def geojson(fixes: Sequence[StoredFix], case_document: dict[str, Any] | None) -> dict[str, Any]:
    """A FeatureCollection: the order's zones (circles as polygons, with their radius) and, per device,
    its track (LineString) and every fix (Point with accuracy in metres, device and received time)."""
    features: list[dict[str, Any]] = []
    order = (case_document or {}).get("order", {})
    for kind in ("exclusion_zones", "inclusion_zones"):
        for zone in order.get(kind, []):
            props = {"kind": kind.removesuffix("_zones"), "name": zone.get("name")}
            circle = zone.get("circle")
            if circle is not None:
                geom = mapping(geodesic_circle(circle["lat"], circle["lon"], circle["radius_m"]))
                props["radius_m"] = circle["radius_m"]
            else:
                geom = zone.get("geometry")
            features.append({"type": "Feature", "geometry": geom, "properties": props})
    by_device: dict[str, list[StoredFix]] = {}
    for s in fixes:
        by_device.setdefault(s.fix.device_id, []).append(s)
    for device, rows in sorted(by_device.items()):
        rows = sorted(rows, key=lambda r: r.fix.ts)
        if len(rows) > 1:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [[r.fix.lon, r.fix.lat] for r in rows]},
                    "properties": {"kind": "track", "device_id": device, "role": rows[0].role},
                }
            )
        for r in rows:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [r.fix.lon, r.fix.lat]},
                    "properties": {
                        "kind": "fix",
                        "device_id": device,
                        "role": r.role,
                        "ts": r.fix.ts.isoformat(),
                        "acc_m": r.fix.acc_m,
                        "received_at": r.received_at.isoformat(),
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


_TEXT = {
    "nl": {
        "title": "Bewijspakket",
        "alert": "Melding",
        "case": "Zaak",
        "type": "Soort",
        "opened": "Geopend",
        "state": "Status",
        "version": "Versie van de beschikking",
        "window": "Venster",
        "decisions": "Beslissingen",
        "fixes": "Posities",
        "deliveries": "Bezorgingen",
        "history": "Verloop",
        "rule": "Regel",
        "class": "Oordeel",
        "distance": "Afstand (m)",
        "evidence": "Gebruikte posities (nauwkeurigheid, leeftijd)",
        "verify": "Controle: <code>emon evidence verify pakket.zip</code> controleert de handtekening en elk bestand; "
        "<code>emon replay pakket.zip</code> rekent de beslissingen opnieuw uit vanaf de begintoestand.",
        "notes": "Opmerkingen",
    },
    "en": {
        "title": "Evidence pack",
        "alert": "Alert",
        "case": "Case",
        "type": "Type",
        "opened": "Opened",
        "state": "State",
        "version": "Order version",
        "window": "Window",
        "decisions": "Decisions",
        "fixes": "Positions",
        "deliveries": "Deliveries",
        "history": "History",
        "rule": "Rule",
        "class": "Classification",
        "distance": "Distance (m)",
        "evidence": "Fixes used (accuracy, age)",
        "verify": "Checking: <code>emon evidence verify pack.zip</code> checks the signature and every file; "
        "<code>emon replay pack.zip</code> recomputes the decisions from the starting state.",
        "notes": "Notes",
    },
}


def summary_html(data: PackData, created_at: datetime) -> str:
    """A self-contained HTML page, first in Dutch, then in English."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>emon {escape(str(data.alert.get('alert_id')))}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;font-size:90%}</style>",
        "</head><body>",
    ]
    for lang in ("nl", "en"):
        parts.append(f"<section lang='{lang}'>{_section(data, created_at, _TEXT[lang])}</section><hr>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _section(data: PackData, created_at: datetime, t: dict[str, str]) -> str:
    a = data.alert
    rows = [
        (t["alert"], a.get("alert_id")),
        (t["case"], data.case_id),
        (t["type"], a.get("type")),
        (t["rule"], a.get("rule")),
        (t["opened"], a.get("opened_at")),
        (t["state"], a.get("state")),
        (t["version"], a.get("order_version")),
        (t["window"], f"{data.window_start.isoformat()} — {data.window_end.isoformat()}"),
        (t["fixes"], len(data.fixes)),
        (t["decisions"], len(data.decisions)),
        (t["deliveries"], len(data.deliveries)),
    ]
    out = [f"<h1>{t['title']}</h1><p>{escape(created_at.isoformat())}</p><table>"]
    out += [f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows]
    out.append(
        f"</table><h2>{t['decisions']}</h2><table><tr><th>at</th><th>{t['type']}</th>"
        f"<th>{t['rule']}</th><th>{t['class']}</th><th>{t['distance']}</th><th>{t['evidence']}</th></tr>"
    )
    for d in data.decisions:
        e = d["explanation"]
        used = "; ".join(f"{x['device_id']} {x['acc_m']} m, {x['age_s']} s" for x in e.get("evidence", []))
        out.append(
            f"<tr><td>{escape(e['at'])}</td><td>{escape(e['type'])}</td><td>{escape(e['rule'])}</td>"
            f"<td>{escape(e['classification'])}</td><td>{escape(str(e['distance_m']))}</td><td>{escape(used)}</td></tr>"
        )
    out.append(f"</table><h2>{t['history']}</h2><ul>")
    out += [
        f"<li>{escape(h['at'])} — {escape(h['actor'])}: {escape(h['action'])} ({escape(h['state'])})</li>"
        for h in data.alert_history
    ]
    out.append(f"</ul><h2>{t['deliveries']}</h2><ul>")
    out += [
        f"<li>{escape(str(d.get('created_at')))} — {escape(d['channel'])} {escape(d['msg_type'])}: "
        f"{escape(d['state'])}</li>"
        for d in data.deliveries
    ]
    out.append("</ul>")
    if data.notes:
        out.append(
            f"<h2>{t['notes']}</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in data.notes) + "</ul>"
        )
    out.append(f"<p>{t['verify']}</p>")
    return "".join(out)

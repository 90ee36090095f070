"""CAP 1.2 builder against the bundled OASIS XSD; webhook signatures; victim messages carry no positions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from emon.alerts import lifecycle as lc
from emon.alerts.cap import CapRef, MsgType, build_cap, schema_path
from emon.alerts.channels.dispatch import sign, verify
from emon.alerts.config import AlertConfig
from emon.alerts.messages import victim_notification
from emon.alerts.model import Alert
from emon.alerts.routing import Routing
from emon.geofence.events import EvalEventType as E
from tests.alerts.helpers import case_info, prox, s

SCHEMA = xmlschema.XMLSchema(schema_path())
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


def _breach() -> Alert:
    change = lc.on_evaluation(
        None,
        prox(E.PROXIMITY_BREACH, s(0), 312.4),
        case_info(),
        Routing(),
        AlertConfig(),
        suppressed=False,
        now=s(1),
    )
    assert change is not None
    return change.alert


@pytest.mark.parametrize("msg_type", list(MsgType))
def test_cap_validates_and_carries_both_positions(msg_type: MsgType) -> None:
    refs = () if msg_type is MsgType.ALERT else (CapRef("emon@test", "first-id", s(1)),)
    xml = build_cap(
        _breach(), identifier="id-2", sender="emon@test", sent=s(2), msg_type=msg_type, references=refs
    )
    SCHEMA.validate(xml.decode())
    root = ET.fromstring(xml)

    def text(path: str) -> list[str]:
        return [el.text or "" for el in root.findall(path, NS)]

    assert (text("cap:status"), text("cap:msgType"), text("cap:scope")) == (
        ["Actual"],
        [msg_type.value],
        ["Restricted"],
    )
    assert text("cap:restriction")[0]
    assert text("cap:info/cap:category") == ["Security"]
    names, values = text("cap:info/cap:parameter/cap:valueName"), text("cap:info/cap:parameter/cap:value")
    params = dict(zip(names, values, strict=True))
    assert params["case_id"] == "case-1" and params["risk"] == "high"
    assert params["offender_position"].startswith("52.090700,5.121400")
    assert params["victim_position"].startswith("52.091000,5.123000")
    assert text("cap:info/cap:area/cap:circle") == ["52.090700,5.121400 0.010", "52.091000,5.123000 0.015"]
    if refs:
        assert text("cap:references") == ["emon@test,first-id,2026-03-01T12:00:01+00:00"]


def test_signature_is_standard_webhooks() -> None:
    body = b"<alert/>"
    header = sign("topsecret", "msg-1", 1700000000, body)
    expected = base64.b64encode(hmac.new(b"topsecret", b"msg-1.1700000000.<alert/>", hashlib.sha256).digest())
    assert header == "v1," + expected.decode()
    assert verify("topsecret", "msg-1", 1700000000, body, header)
    assert not verify("topsecret", "msg-1", 1700000001, body, header)
    whsec = "whsec_" + base64.b64encode(b"k").decode()
    assert (
        sign(whsec, "m", 1, b"")
        == "v1," + base64.b64encode(hmac.new(b"k", b"m.1.", hashlib.sha256).digest()).decode()
    )


def test_victim_message_never_reveals_the_offender() -> None:
    alert = _breach()
    body = victim_notification(alert, "n-1", s(2))
    assert set(body) == {"notification_id", "alert_id", "type", "ts", "severity", "message", "action"}
    text = json.dumps(body)
    for leak in ("52.09", "5.12", "312", "lat", "lon", "distance", "acc"):
        assert leak not in text
    assert body["message"]["nl"] and body["action"]["en"]

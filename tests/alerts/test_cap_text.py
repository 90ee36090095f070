"""The CAP document is written as text: it must be byte for byte what ElementTree serialises of the same
tree, whatever the characters (escaping, empty elements, non-ASCII)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from emon.alerts.cap import NS, CapRef, MsgType, build_cap
from emon.alerts.model import Alert
from emon.alerts.types import AlertType
from tests.alerts.helpers import s
from tests.alerts.test_cap import SCHEMA, _breach


def _variants() -> list[Alert]:
    a = _breach()
    return [
        a,
        replace(a, type=AlertType.PANIC, offender_position=None, late=True, escalated=True),
        replace(a, case_id="zaak <1> & \"2\" 'é'", closest_m=None, distance_m=None, victim_position=None),
        replace(a, explanation={"classification": "possible"}),
    ]


@pytest.mark.parametrize("msg_type", list(MsgType))
@pytest.mark.parametrize("index", range(4))
def test_the_text_is_what_elementtree_writes(msg_type: MsgType, index: int) -> None:
    alert = _variants()[index]
    for kwargs in (
        {
            "identifier": "id-1",
            "sender": "emon@x&y",
            "note": "a <b> & c",
            "references": (CapRef("emon", "d1", s(1)),),
        },
        {"identifier": "", "sender": ""},  # empty text: a self-closed element
    ):
        xml = build_cap(alert, sent=s(30), msg_type=msg_type, **kwargs)  # type: ignore[arg-type]
        ET.register_namespace("", NS)
        again = ET.tostring(ET.fromstring(xml), encoding="utf-8", xml_declaration=True)
        assert xml == again
        if kwargs["identifier"]:
            SCHEMA.validate(xml.decode())


def test_a_character_utf8_cannot_carry_is_replaced_in_a_message_police_can_still_read() -> None:
    """A sender read from the environment with a Latin-1 byte holds a lone surrogate: the text writer
    raised, and every police-bound change was lost; a character reference to it is no XML either."""
    xml = build_cap(
        _breach(), sent=s(30), msg_type=MsgType.ALERT, identifier="id-1", sender="emon@politie\udce9.nl"
    )
    assert b"emon@politie?.nl" in xml
    assert ET.fromstring(xml).find(f"{{{NS}}}sender").text == "emon@politie?.nl"  # type: ignore[union-attr]
    SCHEMA.validate(xml.decode())

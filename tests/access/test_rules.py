"""The pure rules: who sees which case, when a victim's position opens, the audit chain, JSON limits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emon import signing
from emon.access import Principal, Purpose, Role, check_units, may_see_case, parse_purpose
from emon.api.limits import json_problem
from emon.audit import ChainVerifier, Entry, MemoryAuditLog, Outcome, sign_checkpoint
from emon.case import Case
from emon.errors import InvalidInput
from emon.privacy import alert_for_viewer, opens_victim_position, victim_visible

CASE = Case.model_validate(
    {
        "case_id": "C1",
        "risk": "high",
        "offender_device": "tag-1",
        "victim_device": "vic-1",
        "residence": {"lat": 52.37, "lon": 4.89},
        "units": ["police:ams", "om:ams", "probation:noord"],
        "order": {
            "contact_ban_m": 300,
            "exclusion_zones": [
                {
                    "name": "Home",
                    "circle": {"lat": 52.36, "lon": 4.9, "radius_m": 500},
                    "protects_victim": True,
                },
                {"name": "Station", "circle": {"lat": 52.38, "lon": 4.9, "radius_m": 200}},
            ],
        },
    }
)


def alert(type_: str, rule: str, state: str = "open") -> dict[str, Any]:
    return {"alert_id": "A", "case_id": "C1", "type": type_, "rule": rule, "state": state}


@pytest.mark.parametrize(
    ("type_", "rule", "state", "opens"),
    [
        ("proximity_breach", "proximity", "open", True),
        ("proximity_pre_alert", "proximity", "acknowledged", True),
        ("proximity_unknown", "proximity", "open", True),
        ("panic", "device:vic-1:panic", "open", True),
        ("retrospective_violation", "proximity", "open", True),
        ("exclusion_breach", "exclusion:Home", "open", True),
        ("crossing_suspected", "exclusion:Home", "open", True),
        ("retrospective_violation", "exclusion:Home", "open", True),
        ("proximity_breach", "proximity", "resolved", False),  # resolved: closed again
        ("exclusion_breach", "exclusion:Station", "open", False),  # the zone does not protect the victim
        ("exclusion_pre_alert", "exclusion:Home", "open", False),
        ("inclusion_breach", "inclusion:Home", "open", False),
        ("battery_low", "device:tag-1:battery_low", "open", False),
        ("battery_critical", "device:tag-1:battery_critical", "open", False),
        ("no_communication", "device:tag-1:no_communication", "open", False),
        ("tamper", "device:tag-1:tamper", "open", False),
        ("strap_open", "device:tag-1:strap_open", "open", False),
    ],
)
def test_which_alerts_open_the_victims_position(type_: str, rule: str, state: str, opens: bool) -> None:
    assert opens_victim_position(alert(type_, rule, state), CASE) is opens
    assert victim_visible(CASE, [alert(type_, rule, state)]) is opens


def test_an_alert_without_its_case_opens_only_the_unconditional_types() -> None:
    assert not opens_victim_position(alert("exclusion_breach", "exclusion:Home"), None)
    assert opens_victim_position(alert("panic", "device:vic-1:panic"), None)


def test_alert_for_viewer_removes_the_victims_coordinates_unless_allowed() -> None:
    explanation = {
        "evidence": [
            {"device_id": "tag-1", "lat": 1.0, "lon": 2.0, "acc_m": 5},
            {"device_id": "vic-1", "lat": 3.0, "lon": 4.0, "acc_m": 9},
        ]
    }
    a = {
        **alert("proximity_breach", "proximity"),
        "victim_position": {"lat": 3.0, "lon": 4.0},
        "explanation": explanation,
    }
    assert alert_for_viewer(a, CASE, True) == a
    hidden = alert_for_viewer(a, CASE, False)
    assert hidden["victim_position"] is None
    assert hidden["explanation"]["evidence"] == [
        {"device_id": "tag-1", "lat": 1.0, "lon": 2.0, "acc_m": 5},
        {"device_id": "vic-1", "acc_m": 9},
    ]
    battery = {**a, "type": "battery_low", "rule": "device:tag-1:battery_low"}
    assert alert_for_viewer(battery, CASE, True)["victim_position"] is None  # purpose alone is not enough


@pytest.mark.parametrize(
    ("role", "units", "sees"),
    [
        (Role.ADMIN, set(), True),
        (Role.POLICE, {"police:ams"}, True),
        (Role.POLICE, {"police:rdam"}, False),
        (Role.PROSECUTOR, {"om:ams"}, True),
        (Role.PROSECUTOR, set(), False),
        (Role.PROBATION, {"probation:noord", "probation:zuid"}, True),
        (Role.POLICE, {"*"}, True),
        (Role.AUDITOR, {"*"}, False),  # the auditor reads the audit log only
    ],
)
def test_case_scope(role: Role, units: set[str], sees: bool) -> None:
    assert may_see_case(Principal("x", role, frozenset(units)), CASE.units) is sees


def test_unit_names_and_purposes_are_checked() -> None:
    assert check_units(["b", "a", "b"]) == ("a", "b")
    with pytest.raises(InvalidInput):
        check_units(["Police Amsterdam"])
    with pytest.raises(InvalidInput):
        check_units(["*"], allow_all=False)
    assert parse_purpose(" dispatch ") is Purpose.DISPATCH and parse_purpose("") is None
    with pytest.raises(InvalidInput, match="unknown purpose"):
        parse_purpose("curiosity")


async def test_the_chain_names_the_first_altered_record_and_a_recomputed_chain_fails_its_checkpoint() -> None:
    log = MemoryAuditLog()
    who = Principal("piet", Role.POLICE, frozenset({"police:ams"}), "piet", "tok_1")
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for i in range(6):
        await log.record(
            Entry.of(who, t0 + timedelta(seconds=i), "case.read", Outcome.ALLOWED, case_id=f"C{i}")
        )
    key = Ed25519PrivateKey.generate()
    keys = {signing.key_id(key.public_key()): key.public_key()}
    cp = sign_checkpoint(key, 6, log.records[5].hash, t0)

    def verify(records: list[Any]) -> Any:
        v = ChainVerifier(keys)
        for r in records:
            if not v.feed(r):
                break
        return v.finish([cp], (records[-1].seq, records[-1].hash))

    assert verify(log.records).ok and verify(log.records).checkpoints == 1
    altered = list(log.records)
    altered[2] = dataclasses.replace(altered[2], case_id="C99")
    verdict = verify(altered)
    assert (verdict.ok, verdict.first_broken) == (False, 3)
    # An attacker who rewrites record 3 and recomputes every hash after it passes the chain, not the signature.
    forged = MemoryAuditLog()
    for r in log.records:
        await forged.record(
            Entry.of(who, r.at, r.action, Outcome.ALLOWED, case_id="C99" if r.seq == 3 else r.case_id)
        )
    verdict = verify(forged.records)
    assert not verdict.ok and verdict.first_broken == 6 and "signed checkpoint" in verdict.problem
    # Cutting off the end is caught by the checkpoint that covers it.
    verdict = verify(log.records[:4])
    assert not verdict.ok and verdict.first_broken == 5 and "removed" in verdict.problem


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 20_000 + b"]" * 20_000, (400, "json_too_deep")),
        (b'{"a":' * 65 + b"1" + b"}" * 65, (400, "json_too_deep")),
        (b'{"a":' * 60 + b"1" + b"}" * 60, None),
        (b'{"s": "' + b"[" * 500 + b'"}', None),  # brackets inside a string are text
        (b'{"name": "a\\u0000b"}', (422, "invalid_text")),
        (b'{"name": "\\ud800"}', (422, "invalid_text")),
        (b'{"name": "\\ud83d\\ude00"}', None),  # a proper surrogate pair
        (b'{"n": ' + b"9" * 5000 + b"}", None),  # the route refuses it (too many digits)
        (b"{nope", None),  # a syntax error is the route's to answer (400 or 422)
        (b'{"n": 1e999}', (400, "invalid_json")),
        (b'{"n": NaN}', (400, "invalid_json")),
        (b'{"n": 1e300, "s": "1e999 NaN"}', None),
        (b'{"name": "\xed\xa0\x80"}', (422, "invalid_text")),
        (b'{"name": "\\\\u0000"}', None),  # an escaped backslash, then the text u0000
    ],
)
def test_json_limits(body: bytes, expected: tuple[int, str] | None) -> None:
    problem = json_problem(body)
    assert (None if problem is None else problem[:2]) == expected

"""A victim device's ack is decoded into a typed struct; anything else is refused, never a crash."""

from __future__ import annotations

import msgspec
import pytest

from emon.alerts.model import VictimAck


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            b'{"notification_id": "n-1", "ts": "2026-12-01T09:00:00Z"}',
            VictimAck("n-1", None, "2026-12-01T09:00:00Z"),
        ),
        (b'{"alert_id": "a-1", "battery": 80}', VictimAck(None, "a-1")),
    ],
)
def test_good_acks(payload: bytes, expected: VictimAck) -> None:
    assert msgspec.json.decode(payload, type=VictimAck) == expected


@pytest.mark.parametrize(
    "payload", [b"{}", b'{"notification_id": ""}', b"[1]", b'{"alert_id": 5}', b"nope", b'"a-1"']
)
def test_bad_acks_are_refused(payload: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(payload, type=VictimAck)

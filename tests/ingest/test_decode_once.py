"""The ingest loop decodes each fix message once: a message whose every fix is valid goes straight to its
part, and one with a bad element keeps its good fixes and one dead letter — without a second decoding
(issue #14)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from emon.device import Device, DeviceKind, DeviceRegistry
from emon.ingest import decode
from emon.ingest.pipeline import Pipeline, RawMessage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GOOD = b'{"ts":%.3f,"lat":52.1,"lon":5.1,"acc":5.0,"seq":1}' % NOW.timestamp()
OFF_THE_MAP = b'{"ts":%.3f,"lat":91.0,"lon":5.1,"acc":5.0,"seq":2}' % NOW.timestamp()


def test_each_fix_message_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    typed_fixes = decode.typed_fixes

    def counting(device_id: str, payload: bytes, now: datetime, limits: decode.DecodeLimits) -> Any:
        decoded.append(payload)
        return typed_fixes(device_id, payload, now, limits)

    monkeypatch.setattr(decode, "typed_fixes", counting)
    pipe = Pipeline(cast(Any, None), cast(Any, None), DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG)]))
    mixed = b"[" + GOOD + b"," + OFF_THE_MAP + b"]"
    batch = [
        RawMessage("emon/v1/fix/tag-1", GOOD, 0.0, 0.0),
        RawMessage("emon/v1/fix/tag-1", mixed, 0.0, 0.0),
        RawMessage("emon/v1/fix/tag-2", GOOD, 0.0, 0.0),  # not registered: not decoded at all
    ]
    parts, acks, seen = pipe.decode(batch, NOW)
    assert decoded == [GOOD, mixed]
    assert [[f.seq for f in p.fixes] for p in parts] == [[1], [1], []]
    assert [None if p.dead is None else p.dead.reason for p in parts] == [
        None,
        "bad_coordinates",
        "unknown_device",
    ]
    assert (acks, seen) == ([], {"tag-1": NOW})

"""Fuzzing the decoder and the storage path on the real PostgreSQL (Hypothesis, deterministic).

Hostile payloads — deep nesting, NUL and lone surrogates, huge numbers, long strings, random bytes and
random JSON, on fix, event and OwnTracks topics of registered and invented devices — go through the
pipeline one message per batch and then all together. No exception may escape; every message is
either stored (each fix and event it carries is in PostgreSQL) or dead-lettered (a row with its
SHA-256); and a valid fix after them is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emon.deadletters import DeadLetterPolicy
from emon.ingest.decode import DecodeLimits, decode_event, decode_fixes
from emon.ingest.pipeline import Pipeline
from tests.storage.helpers import Store, message, open_store

TOPICS = st.sampled_from(
    ["emon/v1/fix/tag-1", "emon/v1/event/tag-1", "emon/v1/fix/tag-2", "emon/v1/event/tag-2"] * 3
    + ["owntracks/x/y", "emon/v1/fix/ghost", "junk", "emon/v1/fix/\u0000", "emon/v1/event/\ud800"]
)
NASTY_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=5),  # surrogates, NUL
    st.just("a\u0000b"),
    st.text(min_size=1_000, max_size=3_000),
)
HUGE_NUMBERS = st.one_of(
    st.integers(min_value=2**63, max_value=10**400),
    st.integers(max_value=-(2**63) - 1, min_value=-(10**400)),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON = st.recursive(
    st.none() | st.booleans() | HUGE_NUMBERS | st.integers() | NASTY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NASTY_TEXT, children, max_size=4),
    max_leaves=12,
)


def dumps(value: object, ascii_only: bool) -> bytes:
    # ensure_ascii writes lone surrogates as \udXXX escapes; otherwise they become invalid UTF-8 bytes.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def fix_like(draw: st.DrawFn) -> dict[str, object]:
    ago = draw(st.integers(min_value=-1_000, max_value=400 * 86_400))
    doc: dict[str, object] = {
        "ts": draw(st.sampled_from(["iso", "unix"])),
        "lat": draw(st.one_of(st.floats(-90, 90), st.floats(-90, 90), HUGE_NUMBERS, NASTY_TEXT)),
        "lon": draw(st.floats(-180, 180)),
        "acc": draw(st.one_of(st.floats(0, 500), HUGE_NUMBERS)),
        "seq": draw(st.one_of(st.integers(0, 2**62), HUGE_NUMBERS)),
    }
    ts = datetime.now(UTC) - timedelta(seconds=ago)
    doc["ts"] = ts.isoformat() if doc["ts"] == "iso" else ts.timestamp()
    if draw(st.booleans()):
        doc["note"] = draw(JSON)
    return doc


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, object]:
    ago = draw(st.integers(min_value=0, max_value=86_400))
    return {
        "ts": (datetime.now(UTC) - timedelta(seconds=ago)).isoformat(),
        "type": draw(st.sampled_from(["tamper", "battery_low", "panic", "nonsense"])),
        **draw(st.dictionaries(NASTY_TEXT, JSON, max_size=3)),
    }


def nested(depth: int, balanced: bool) -> bytes:
    return b"[" * depth + (b"]" * depth if balanced else b"")


HOSTILE = st.one_of(
    st.builds(nested, st.integers(1, 5_000), st.booleans()),
    st.binary(max_size=2_000),
    st.builds(dumps, JSON, st.booleans()),
)
FIX_TOPICS = st.sampled_from(["emon/v1/fix/tag-1", "emon/v1/fix/tag-2"])
EVENT_TOPICS = st.sampled_from(["emon/v1/event/tag-1", "emon/v1/event/tag-2"])
MESSAGES = st.lists(
    st.one_of(
        st.tuples(FIX_TOPICS, st.builds(dumps, fix_like(), st.booleans())),
        st.tuples(FIX_TOPICS, st.builds(dumps, st.lists(fix_like(), min_size=1, max_size=5), st.booleans())),
        st.tuples(EVENT_TOPICS, st.builds(dumps, event_like(), st.booleans())),
        st.tuples(TOPICS, HOSTILE),
    ),
    min_size=1,
    max_size=6,
)


NOW_ISO = datetime.now(UTC).isoformat()
EXPLICIT = [
    ("emon/v1/fix/tag-1", b"[" * 3000 + b"]" * 3000),  # the two poison messages
    ("emon/v1/event/tag-1", b'{"type":"battery_low","ts":"' + NOW_ISO.encode() + b'","note":"a\\u0000b"}'),
    ("emon/v1/event/tag-2", b'{"type":"tamper","ts":"' + NOW_ISO.encode() + b'","x":"\\ud800"}'),
    ("emon/v1/event/tag-2", b'{"type":"panic","ts":"' + NOW_ISO.encode() + b'","n":' + b"9" * 30 + b"}"),
    ("emon/v1/fix/tag-2", b'["\xed\xa0\x80"]'),
    ("emon/v1/fix/tag-2", b"[]"),
]


async def outcome_is_recorded(store: Store, topic: str, payload: bytes) -> bool:
    """Stored (every fix and event it decodes to is in PostgreSQL) or dead-lettered (its SHA-256)."""
    digest = hashlib.sha256(payload).digest()
    reason = await store.scalar("SELECT min(reason) FROM dead_letters WHERE payload_sha256 = %s", digest)
    assert reason != "internal_error", "decoding raised something other than InvalidPayload"
    if reason is not None:
        return True
    now = datetime.now(UTC)
    device = topic.rsplit("/", 1)[-1]
    if topic.startswith("emon/v1/fix/"):
        expected = decode_fixes(topic, device, payload, now, DecodeLimits())
    elif topic.startswith("emon/v1/event/"):
        expected = decode_event(topic, device, payload, now, DecodeLimits())
    else:
        return False
    if not (expected.fixes or expected.events):
        return False
    for f in expected.fixes:
        if not await store.scalar(
            "SELECT count(*) FROM fixes WHERE device_id = %s AND ts = %s AND seq = %s",
            f.device_id,
            f.ts,
            f.key[2],
        ):
            return False
    for e in expected.events:
        if not await store.scalar(
            "SELECT count(*) FROM device_events WHERE device_id = %s AND ts = %s AND type = %s",
            e.device_id,
            e.ts,
            e.type.value,
        ):
            return False
    return True


def test_hostile_messages_are_stored_or_dead_lettered_and_the_line_keeps_moving() -> None:
    runner = asyncio.Runner()
    context = open_store()
    store = runner.run(context.__aenter__())
    sequence = iter(range(1, 10**9))
    try:
        pipeline = Pipeline(
            store.records,
            store.live,
            store.registry,  # type: ignore[arg-type]
            dead_letters=DeadLetterPolicy(rows_per_min=10**9, bytes_per_min=10**12),
        )

        @settings(
            max_examples=50,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @example(EXPLICIT)
        @given(MESSAGES)
        def run(messages: list[tuple[str, bytes]]) -> None:
            runner.run(check(pipeline, store, messages, next(sequence)))

        run()
        reasons = runner.run(store.scalar("SELECT array_agg(DISTINCT reason) FROM dead_letters"))
        # The explicit examples alone reach these; the generated ones reach many more.
        assert {"too_deep", "bad_text", "invalid_utf8", "number_out_of_range", "empty_batch"} <= set(reasons)  # type: ignore[arg-type]
        assert runner.run(store.scalar("SELECT count(*) FROM device_events"))
    finally:
        runner.run(context.__aexit__(None, None, None))
        runner.close()


async def check(pipeline: Pipeline, store: Store, messages: list[tuple[str, bytes]], seq: int) -> None:
    for topic, payload in messages:
        await pipeline.store([message(topic, payload)])  # must not raise
        assert await outcome_is_recorded(store, topic, payload), (topic, payload[:200])
    await pipeline.store([message(t, p) for t, p in messages])  # all together, again: no exception
    valid = {"ts": datetime.now(UTC).isoformat(), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": seq}
    stored = await pipeline.store([message("emon/v1/fix/tag-2", json.dumps(valid).encode())])
    assert [f.seq for f in stored.fixes] == [seq]

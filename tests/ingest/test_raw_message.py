"""A received message is built with ``tuple.__new__`` (no defaults, no arity check): every field is there."""

from __future__ import annotations

from emon.ingest.pipeline import Pipeline, RawMessage


def test_a_submitted_message_has_every_field_of_the_named_tuple() -> None:
    pipeline = Pipeline(None, None, None)  # type: ignore[arg-type]  # submit touches only the queue
    pipeline.submit("t/fix/tag-1", b"{}")
    (msg,) = pipeline._queue
    assert len(msg) == len(RawMessage._fields)
    assert msg == RawMessage(*msg) and msg.ack is None

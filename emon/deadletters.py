"""Dead letters, bounded: one row per message, a truncated payload, and a global budget. Pure: no I/O.

A hostile publisher must not be able to fill the disk through dead letters, whatever device ids or
topics it invents: the budget is global (rows and bytes per minute, and a cap on the table's total
size); beyond it a message is only counted (``emon_dead_letters_over_budget_total``). The row keeps the
first bytes of the payload with the whole payload's length and SHA-256, the number of bad elements and
the first few reasons. The periodic loop that applies retention and measures the table lives in
:mod:`emon.ingest.pipeline`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from emon.fix import DeadLetter

MAX_REASONS = 5  # reasons kept per row (the count of bad elements is kept in full)
ROW_OVERHEAD_BYTES = 200  # what a row costs beyond its payload and texts (header, index entries)
DETAIL_ESTIMATE_BYTES = 300  # the budget's estimate of a row's detail text, before the row is built


def clean_text(value: str, limit: int = 10_000) -> str:
    """Text that PostgreSQL can hold (no NUL, no lone surrogates), at most ``limit`` characters.

    Used for what emon writes about a message (topic, detail), never to repair a device's data."""
    if len(value) > limit:
        value = value[:limit]
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """How much the dead-letter table may hold (the ``EMON_DEAD_LETTER_*`` settings)."""

    payload_bytes: int = 2_048  # raw payload kept per row; length and SHA-256 of the whole are kept
    rows_per_min: int = 1_000
    bytes_per_min: int = 4_000_000
    max_total_bytes: int = 256 * 1024 * 1024
    retention_s: float = 30 * 86_400.0


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """What is stored about one message that emon could not (fully) use."""

    topic: str
    device_id: str | None
    reason: str  # the first reason: a stable code
    reasons: tuple[str, ...]  # the first MAX_REASONS codes
    detail: str  # the first MAX_REASONS "code: detail" lines
    bad_elements: int  # how many elements (or 1 for the message as a whole) were refused
    payload: bytes  # the first ``payload_bytes`` bytes
    payload_len: int
    payload_sha256: bytes

    @property
    def size(self) -> int:
        """Bytes this row costs in the table, as the periodic measurement counts them."""
        return len(self.payload) + len(self.detail) + len(self.topic) + ROW_OVERHEAD_BYTES


def estimated_size(topic: str, payload: bytes, payload_bytes: int) -> int:
    """What a message's row will cost, known before building it (no hashing for a message that is
    over budget anyway)."""
    return min(len(payload), payload_bytes) + len(topic) + DETAIL_ESTIMATE_BYTES + ROW_OVERHEAD_BYTES


def row_for(
    topic: str, payload: bytes, letters: Sequence[DeadLetter], payload_bytes: int, more: int = 0
) -> DeadLetterRow:
    """One row for one message, whatever the number of its bad elements (``letters`` and ``more``
    not listed). Texts are made storable (no NUL, no lone surrogate), whatever a hostile topic or
    payload held."""
    first = letters[0]
    head = letters[:MAX_REASONS]
    total = len(letters) + more
    more = total - len(head)
    detail = "\n".join(f"{d.reason}: {d.detail}" if d.detail else d.reason for d in head)
    if more:
        detail += f"\n… and {more} more"
    return DeadLetterRow(
        topic=clean_text(topic, 1_024),
        device_id=None if first.device_id is None else clean_text(first.device_id, 256),
        reason=clean_text(first.reason, 64),
        reasons=tuple(clean_text(d.reason, 64) for d in head),
        detail=clean_text(detail, 4_000),
        bad_elements=total,
        payload=payload[:payload_bytes],
        payload_len=len(payload),
        payload_sha256=hashlib.sha256(payload).digest(),
    )


@dataclass(slots=True)
class DeadLetterBudget:
    """A global budget of rows and bytes per minute, and the table's total size (set by the periodic
    measurement). ``now`` is a monotonic clock reading in seconds, passed in."""

    policy: DeadLetterPolicy = field(default_factory=DeadLetterPolicy)
    total_bytes: int = 0  # of the table, as last measured
    _window_start: float = float("-inf")
    _rows: int = 0
    _bytes: int = 0

    @property
    def full(self) -> bool:
        return self.total_bytes >= self.policy.max_total_bytes

    def admit(self, size: int, now: float) -> bool:
        """True if a row of ``size`` bytes may be written now (and count it); False: count the
        message only."""
        if now - self._window_start >= 60.0:
            self._window_start, self._rows, self._bytes = now, 0, 0
        if (
            self.full
            or self._rows >= self.policy.rows_per_min
            or self._bytes + size > self.policy.bytes_per_min
        ):
            return False
        self._rows += 1
        self._bytes += size
        self.total_bytes += size
        return True

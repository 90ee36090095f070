"""The audit log's rules: what one record holds, how records are chained and checkpoints signed, and how
the whole is verified. Pure (no I/O); ``emon/storage/audit.py`` appends and reads.

Each record's hash is SHA-256 over the previous record's hash and the record's canonical JSON, so
altering, removing or reordering a record breaks the chain from there on. A checkpoint signs
(sequence number, hash, time) with the deployment's Ed25519 key, so an attacker who rewrites the
records *and* recomputes every hash after them, or cuts off the end of the log, is caught by the
signed checkpoints (up to the records after the last checkpoint; see docs/access.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emon import signing
from emon.access import Principal

GENESIS = "0" * 64
MAX_DETAIL_CHARS = 4000


class Outcome(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Entry:
    """One consultation or change of personal data: who, when, what, why, and whether it was allowed."""

    at: datetime  # UTC
    user_id: str | None
    user_name: str
    role: str
    action: str  # e.g. "case.read", "device.latest", "stream.open", "token.revoke"
    outcome: Outcome
    purpose: str | None = None
    case_id: str | None = None
    device_id: str | None = None
    alert_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, who: Principal, at: datetime, action: str, outcome: Outcome, **what: Any) -> Entry:
        return cls(at.astimezone(UTC), who.user_id, who.name, who.role.value, action, outcome, **what)

    def detail_text(self) -> str:
        """The detail as canonical JSON, cut to :data:`MAX_DETAIL_CHARS` (stored and hashed as this text)."""
        text = canonical(dict(self.detail))
        if len(text) > MAX_DETAIL_CHARS:
            text = canonical({"truncated": text[: MAX_DETAIL_CHARS - 100]})
        return text


@dataclass(frozen=True, slots=True)
class Record:
    """A stored entry: its place in the chain and its hash."""

    seq: int
    at: datetime
    user_id: str | None
    user_name: str
    role: str
    action: str
    outcome: str
    purpose: str | None
    case_id: str | None
    device_id: str | None
    alert_id: str | None
    detail: str  # canonical JSON text
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "user_id": self.user_id,
            "user_name": self.user_name,
            "role": self.role,
            "action": self.action,
            "outcome": self.outcome,
            "purpose": self.purpose,
            "case_id": self.case_id,
            "device_id": self.device_id,
            "alert_id": self.alert_id,
            "detail": json.loads(self.detail),
            "hash": self.hash,
        }
        return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def record_hash(prev_hash: str, seq: int, at: datetime, fields: Mapping[str, str | None], detail: str) -> str:
    """SHA-256 (hex) of the previous hash and the record's canonical JSON."""
    body = canonical(
        {
            "seq": seq,
            "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **fields,
            "detail": detail,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _fields(r: Record | Entry) -> dict[str, str | None]:
    return {
        "user_id": r.user_id,
        "user_name": r.user_name,
        "role": r.role,
        "action": r.action,
        "outcome": str(r.outcome),
        "purpose": r.purpose,
        "case_id": r.case_id,
        "device_id": r.device_id,
        "alert_id": r.alert_id,
    }


def chain(entry: Entry, seq: int, prev_hash: str) -> Record:
    """The record ``entry`` becomes at ``seq`` after a record hashed ``prev_hash``."""
    detail = entry.detail_text()
    at = entry.at.astimezone(UTC)
    digest = record_hash(prev_hash, seq, at, _fields(entry), detail)
    return Record(
        seq,
        at,
        entry.user_id,
        entry.user_name,
        entry.role,
        entry.action,
        str(entry.outcome),
        entry.purpose,
        entry.case_id,
        entry.device_id,
        entry.alert_id,
        detail,
        prev_hash,
        digest,
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the record at ``seq`` has hash ``hash`` (signed at ``at``, UTC)."""

    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: bytes

    @staticmethod
    def message(seq: int, digest: str, at: datetime) -> bytes:
        return f"emon-audit-checkpoint\n{seq}\n{digest}\n{at.astimezone(UTC).isoformat()}".encode()


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, digest: str, at: datetime) -> Checkpoint:
    at = at.astimezone(UTC)
    return Checkpoint(
        seq, digest, at, signing.key_id(key.public_key()), key.sign(Checkpoint.message(seq, digest, at))
    )


@dataclass
class Verdict:
    ok: bool
    records: int
    checkpoints: int
    first_broken: int | None = None  # sequence number of the first record that fails
    problem: str = ""
    notes: list[str] = field(default_factory=list)


class ChainVerifier:
    """Feed records in sequence order, then :meth:`finish` with the checkpoints and the chain head.

    Stops at the first problem and names the record (its ``seq``).
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)
        self._prev_seq = 0
        self._prev_hash = GENESIS
        self._hashes: dict[int, str] = {}
        self.verdict = Verdict(True, 0, 0)

    def _fail(self, seq: int, problem: str) -> None:
        if self.verdict.ok:
            self.verdict.ok = False
            self.verdict.first_broken = seq
            self.verdict.problem = problem

    def feed(self, r: Record) -> bool:
        """Check one record; False once the chain is broken (stop feeding)."""
        if not self.verdict.ok:
            return False
        expected = self._prev_seq + 1
        if r.seq != expected:
            self._fail(expected, f"record {expected} is missing (next stored record is {r.seq})")
            return False
        if r.prev_hash != self._prev_hash:
            self._fail(r.seq, f"record {r.seq} does not follow record {r.seq - 1} (previous hash differs)")
            return False
        if record_hash(r.prev_hash, r.seq, r.at, _fields(r), r.detail) != r.hash:
            self._fail(r.seq, f"record {r.seq} was altered (its content does not match its hash)")
            return False
        self._prev_seq, self._prev_hash = r.seq, r.hash
        self._hashes[r.seq] = r.hash
        self.verdict.records += 1
        return True

    def finish(self, checkpoints: list[Checkpoint], head: tuple[int, str] | None) -> Verdict:
        """Check every signed checkpoint against the records, and the chain head against the last record."""
        v = self.verdict
        if not v.ok:
            return v
        for cp in sorted(checkpoints, key=lambda c: c.seq):
            key = self._keys.get(cp.key_id)
            if key is None:
                v.notes.append(
                    f"checkpoint at record {cp.seq} is signed by unknown key {cp.key_id}: not checked"
                )
                continue
            if not signing.verify(key, cp.signature, Checkpoint.message(cp.seq, cp.hash, cp.at)):
                self._fail(cp.seq, f"checkpoint at record {cp.seq} has an invalid signature")
                return v
            stored = self._hashes.get(cp.seq)
            if stored is None:
                self._fail(
                    self._prev_seq + 1,
                    f"the log ends at record {self._prev_seq} but a signed checkpoint "
                    f"covers record {cp.seq}: records were removed",
                )
                return v
            if stored != cp.hash:
                self._fail(cp.seq, f"record {cp.seq} differs from its signed checkpoint (chain recomputed)")
                return v
            v.checkpoints += 1
        if head is not None and head != (self._prev_seq, self._prev_hash):
            self._fail(
                min(head[0], self._prev_seq + 1),
                f"the chain head says record {head[0]} but the log ends at record {self._prev_seq}",
            )
            return v
        if not self._keys:
            v.notes.append("no public key given: signed checkpoints not checked")
        elif not checkpoints:
            v.notes.append("no signed checkpoints: only the hash chain was checked")
        elif v.checkpoints:
            last = max(c.seq for c in checkpoints)
            if last < self._prev_seq:
                v.notes.append(f"records {last + 1}-{self._prev_seq} are after the last signed checkpoint")
        return v


class AuditSink(Protocol):
    """Where entries are appended (PostgreSQL in production: emon.storage.audit.AuditLog)."""

    async def record(self, *entries: Entry) -> list[Record]: ...


class MemoryAuditLog:
    """An in-memory chain with the same rules, for unit tests of code that audits."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def record(self, *entries: Entry) -> list[Record]:
        out = []
        for entry in entries:
            prev = self.records[-1].hash if self.records else GENESIS
            rec = chain(entry, len(self.records) + 1, prev)
            self.records.append(rec)
            out.append(rec)
        return out

"""The open cases in memory, indexed by device: who is monitored, against whom, under which order.

Every open case stays in memory for as long as it is monitored (issue #14: ≤ 1 KB per device). The
case book keeps each one as a :class:`CaseRecord`: what the hot paths read (ids, devices, risk, units,
whom a breach endangers) and the document as compact msgpack bytes (≈ 1 KB for a case of five zones,
against ≈ 6 KB of pydantic models). The :class:`Case` is built from those bytes only when a caller needs
the document (:meth:`CaseBook.document`: the API, the order lifecycle, privacy checks), and the last
few built are kept so that a burst of reads of one case does not rebuild it each time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast, overload

import msgspec

from emon.case import Case, CaseStatus, Risk

# Documents built from their bytes and kept: a burst of decisions or requests on a few cases reads
# them from here. Each is ≈ 6 KB, so a bounded number, not one per open case.
DOCUMENTS_KEPT = 256

# Validation context of a document the case book stored itself: it was validated when put, so the
# checks that only judge new input (a polygon's validity, the antimeridian split) are skipped.
STORED = {"emon_stored_document": True}


class HasDevices(Protocol):
    """A case's id and devices (a :class:`Case`, a :class:`CaseRecord`, a compiled case)."""

    @property
    def case_id(self) -> str: ...
    @property
    def offender_device(self) -> str: ...
    @property
    def victim_device(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One open case as the case book holds it: what the hot paths read, and the document packed.

    ``victim_rules`` are the rules whose breach endangers the victim (``proximity`` under a contact
    ban, ``exclusion:<zone>`` for zones marked ``protects_victim``); ``victim_notifications`` is False
    when the victim opted out of warnings (``order.victim_notifications == "none"``). ``packed`` is
    the document as msgpack (:func:`pack_case`); :func:`unpack_case` builds the equal :class:`Case`.
    """

    case_id: str
    risk: Risk
    offender_device: str
    victim_device: str | None
    units: tuple[str, ...]
    person_ref: str | None
    victim_rules: frozenset[str]
    victim_notifications: bool
    packed: bytes

    @classmethod
    def of(cls, case: Case) -> CaseRecord:
        order = case.order
        rules = {f"exclusion:{z.name}" for z in order.exclusion_zones if z.protects_victim}
        if order.contact_ban_m is not None:
            rules.add("proximity")
        return cls(
            case.case_id,
            case.risk,
            case.offender_device,
            case.victim_device,
            _one(case.units),
            case.person_ref,
            _one(frozenset(rules)),
            order.victim_notifications != "none",
            pack_case(case),
        )


_ENCODER = msgspec.msgpack.Encoder()


def pack_case(case: Case) -> bytes:
    """``case`` as msgpack: its JSON form with only the fields it was given (defaults left out), so
    that :func:`unpack_case` rebuilds it with the same ``model_fields_set`` as well as equal values."""
    buffer = bytearray()
    # Through a buffer: the bytes ``encode`` returns keep its over-allocation (≈ 1.5 KB for ≈ 1 KB).
    _ENCODER.encode_into(case.model_dump(mode="json", exclude_unset=True), buffer)
    return bytes(buffer)


def unpack_case(packed: bytes) -> Case:
    """The :class:`Case` that :func:`pack_case` packed (equal, and serialising to the same JSON)."""
    return Case.model_validate(msgspec.msgpack.decode(packed), context=STORED)


def built(record: CaseRecord) -> Case:
    """The record's document, holding the record's own id strings (equal values): what is kept of a
    document built for the engine (a compiled case's ids, the device index's keys) is then not a
    second copy of each (≈ 40 B per device)."""
    case = unpack_case(record.packed)
    fields = case.__dict__  # the same values; pydantic's frozen check guards assignment, not this
    fields["case_id"], fields["offender_device"] = record.case_id, record.offender_device
    fields["victim_device"] = record.victim_device
    return case


_T = TypeVar("_T", tuple[str, ...], frozenset[str])
_SHARED: dict[tuple[str, ...] | frozenset[str], tuple[str, ...] | frozenset[str]] = {}
_SHARED_MAX = 4096


def _one(value: _T) -> _T:
    """One object for equal unit tuples and rule sets across cases (most cases share a few)."""
    shared = _SHARED.get(value)
    if shared is None:
        if len(_SHARED) >= _SHARED_MAX:
            return value
        _SHARED[value] = shared = value
    return cast(_T, shared)  # stored under an equal key, so of the same type


class DeviceIndex:
    """The one device ↔ case index: device id → the ids of the cases it takes part in (as offender
    or victim), in the order they were added. Used by :class:`CaseBook` and by the geofence engine.
    Lookups (one per fix) return a stored tuple; only adding and removing a case build new ones."""

    def __init__(self) -> None:
        self._cases: dict[str, tuple[str, ...]] = {}

    def add(self, case: HasDevices) -> None:
        for device in (case.offender_device, case.victim_device):
            if device is not None and case.case_id not in self._cases.get(device, ()):
                self._cases[device] = (*self._cases.get(device, ()), case.case_id)

    def remove(self, case: HasDevices) -> None:
        for device in (case.offender_device, case.victim_device):
            if device is None or device not in self._cases:
                continue
            rest = tuple(c for c in self._cases[device] if c != case.case_id)
            if rest:
                self._cases[device] = rest
            else:
                del self._cases[device]

    def cases_of(self, device_id: str) -> tuple[str, ...]:
        return self._cases.get(device_id, ())


# A pass over every case's document (built as read, ≈ 0.05 ms each) lets the event loop turn this often.
DOCUMENTS_PER_TURN = 100


class Documents(Sequence[Case]):
    """Cases' documents, each built from its record when read (≈ 0.05 ms a case) and not kept.

    A pass over every open case (loading the engine, the order lifecycle's tick) then holds one
    document at a time: ≈ 6 KB, not 6 KB per case all at once, whose freed memory would stay resident
    where the objects made meanwhile (compiled cases, records) are kept among it."""

    def __init__(self, records: list[CaseRecord]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def ids(self) -> list[str]:
        """The cases' ids, in order, without building a document."""
        return [r.case_id for r in self._records]

    @overload
    def __getitem__(self, index: int) -> Case: ...
    @overload
    def __getitem__(self, index: slice) -> Documents: ...
    def __getitem__(self, index: int | slice) -> Case | Documents:
        if isinstance(index, slice):
            return Documents(self._records[index])
        return built(self._records[index])

    def __iter__(self) -> Iterator[Case]:
        for record in self._records:
            yield built(record)


class CaseBook:
    """Open cases by id and by device (offender tag or victim device). Updated by the API.

    :meth:`get`, :meth:`cases_for_device` and :meth:`all` return records (no document is built: they
    serve the per-fix and per-tick paths); :meth:`document` and :meth:`documents` build the
    :class:`Case` documents."""

    def __init__(self, cases: list[Case] | None = None, *, kept: int = DOCUMENTS_KEPT) -> None:
        self._cases: dict[str, CaseRecord] = {}
        self._by_device = DeviceIndex()
        self._documents: OrderedDict[str, Case] = OrderedDict()
        self._kept = kept
        for c in cases or []:
            self.put(c)

    def put(self, case: Case) -> None:
        self.remove(case.case_id)
        if case.status is not CaseStatus.OPEN:
            return
        record = CaseRecord.of(case)
        self._cases[case.case_id] = record
        self._by_device.add(record)

    def remove(self, case_id: str) -> None:
        self._documents.pop(case_id, None)
        old = self._cases.pop(case_id, None)
        if old is not None:
            self._by_device.remove(old)

    def get(self, case_id: str) -> CaseRecord | None:
        """The open case's record (no document built), or None."""
        return self._cases.get(case_id)

    def document(self, case_id: str) -> Case | None:
        """The open case's document (equal to the one put), or None. Built from its packed form
        (≈ 0.1 ms) unless one of the last :data:`DOCUMENTS_KEPT` built."""
        doc = self._documents.get(case_id)
        if doc is not None:
            self._documents.move_to_end(case_id)
            return doc
        record = self._cases.get(case_id)
        if record is None:
            return None
        doc = self._documents[case_id] = built(record)
        if len(self._documents) > self._kept:
            self._documents.popitem(last=False)
        return doc

    def cases_for_device(self, device_id: str) -> list[CaseRecord]:
        """The records of the device's open cases, by case id."""
        return [self._cases[i] for i in sorted(self._by_device.cases_of(device_id))]

    def all(self) -> list[CaseRecord]:
        """Every open case's record, in the order they were put."""
        return list(self._cases.values())

    def documents(self, which: Callable[[CaseRecord], bool] | None = None) -> Documents:
        """The documents of every open case (or of those ``which`` accepts), in the order they were
        put, as they are now. Each is built when read and not kept (see :class:`Documents`)."""
        return Documents([r for r in self._cases.values() if which is None or which(r)])

    def holds(self, case: Case) -> bool:
        """True if ``case`` is open here with an equal document (compared without keeping it)."""
        record = self._cases.get(case.case_id)
        return record is not None and (record.packed == pack_case(case) or unpack_case(record.packed) == case)

    def __len__(self) -> int:
        return len(self._cases)

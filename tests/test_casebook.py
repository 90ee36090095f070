"""The case book keeps open cases compact (issue #14): records for the hot paths, documents packed and
built again exactly, a bounded number of them kept."""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from typing import Any

import pytest

from emon import casebook as casebook_module
from emon.case import Case, CaseStatus, Risk
from emon.casebook import CaseBook, CaseRecord, pack_case, unpack_case
from emon.geofence.config import EvalConfig
from emon.geofence.rules import compile_case

SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]
ACROSS = [[179.9, -17.0], [180.2, -17.0], [180.2, -16.8], [179.9, -16.8], [179.9, -17.0]]


def _doc(case_id: str = "c1", **more: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "risk": "high",
        "offender_device": f"tag-{case_id}",
        "victim_device": f"vic-{case_id}",
        "residence": {"lat": 52.0, "lon": 5.0},
        "order": {
            "exclusion_zones": [{"name": "home", "circle": {"lat": 52.1, "lon": 5.1, "radius_m": 200.0}}]
        },
        **more,
    }


def _order(**more: Any) -> dict[str, Any]:
    return {"order": {**_doc()["order"], **more}}


# Documents as given to the API or read from PostgreSQL: every kind of field the model normalises.
DOCUMENTS: list[dict[str, Any]] = [
    _doc(),
    _doc(victim_device=None, units=["pr-noord"], person_ref="PN-0001", prosecutor="om-1"),
    _doc(probation_officer="rn-7", risk="low", residence={"rd": {"x": 121_000, "y": 487_000}}),
    _doc(
        **_order(
            kind="gedragsaanwijzing",
            decision={"authority": "OM Amsterdam", "reference": "P-1", "date": "2026-01-02T10:00:00+01:00"},
            valid_from="2026-01-01T00:00:00+01:00",
            valid_until="2026-03-01T00:00:00Z",
            contact_ban_m=500,
            prealert={"exclusion_enter_m": 150, "exclusion_exit_m": 250},
            victim_notifications="none",
            exclusion_zones=[
                {"name": "square", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
                {
                    "name": "ints",
                    "geometry": {"coordinates": [[[5, 52], [6, 52], [6, 53], [5, 52]]], "type": "Polygon"},
                },
                {
                    "name": "across",
                    "geometry": {"type": "Polygon", "coordinates": [ACROSS]},
                    "protects_victim": True,
                },
                {"name": "east", "circle": {"lat": 0.0, "lon": 181.0, "radius_m": 50}, "confirm_fixes": 2},
            ],
            inclusion_zones=[
                {
                    "name": "curfew",
                    "circle": {"rd": {"x": 121_000, "y": 487_000}, "radius_m": 80.0},
                    "schedule": {
                        "timezone": "Europe/Amsterdam",
                        "windows": [{"days": ["mon"], "start": "22:00", "end": "07:00"}],
                    },
                    "grace_s": 600,
                    "valid_until": "2026-03-01T12:30:00.123456+02:00",
                }
            ],
        )
    ),
]


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_a_document_is_built_again_exactly_as_it_was_put(doc: dict[str, Any]) -> None:
    given = Case.model_validate(json.loads(json.dumps(doc)))
    stored = Case.model_validate(given.model_dump(mode="json", exclude_none=True))  # as read from PostgreSQL
    for case in (given, stored):
        book = CaseBook([case])
        built = book.document(case.case_id)
        assert built is not None and built is not case
        assert built == case
        assert built.model_dump_json(exclude_none=True) == case.model_dump_json(
            exclude_none=True
        )  # the API's bytes
        assert built.model_dump(mode="json", exclude_unset=True) == case.model_dump(
            mode="json", exclude_unset=True
        )
        assert list(book.documents()) == [case] and book.documents()[0] == case
        assert book.holds(case)


def test_the_record_carries_what_the_hot_paths_read() -> None:
    case = Case.model_validate(DOCUMENTS[3])
    record = CaseBook([case]).get(case.case_id)
    assert record == CaseRecord(
        "c1",
        Risk.HIGH,
        "tag-c1",
        "vic-c1",
        (),
        None,
        frozenset({"exclusion:across", "proximity"}),
        False,  # the victim opted out of warnings
        pack_case(case),
    )
    plain = CaseBook([Case.model_validate(_doc("c2", units=["pr-noord"]))]).get("c2")
    assert plain is not None and (plain.victim_rules, plain.victim_notifications, plain.units) == (
        frozenset(),
        True,
        ("pr-noord",),
    )


def test_records_do_not_build_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-fix and per-tick paths (positions to the room, alert routing, silence) read records."""
    book = CaseBook([Case.model_validate(_doc(f"c{i}", victim_device="vic")) for i in (2, 1)])

    def built(packed: bytes) -> Case:
        raise AssertionError("a document was built")

    monkeypatch.setattr(casebook_module, "unpack_case", built)
    assert [c.case_id for c in book.cases_for_device("vic")] == ["c1", "c2"]
    assert [c.case_id for c in book.all()] == ["c2", "c1"]
    record = book.get("c1")
    assert record is not None and record.offender_device == "tag-c1"


def test_a_replaced_or_closed_case_is_not_read_from_the_documents_kept() -> None:
    book = CaseBook([Case.model_validate(_doc())])
    first = book.document("c1")
    assert first is not None and book.document("c1") is first  # kept: a burst does not rebuild it
    lower = first.model_copy(update={"risk": Risk.LOW})
    book.put(lower)
    assert book.document("c1") == lower and not book.holds(first)
    book.put(lower.model_copy(update={"status": CaseStatus.CLOSED}))
    assert (book.document("c1"), book.get("c1"), book.all()) == (None, None, [])


def test_only_the_last_documents_built_are_kept() -> None:
    cases = [Case.model_validate(_doc(f"c{i}")) for i in range(5)]
    book = CaseBook(cases, kept=2)
    docs = [book.document(c.case_id) for c in cases]
    assert docs == cases
    assert book.document("c4") is docs[4] and book.document("c3") is docs[3]
    assert book.document("c0") is not docs[0]  # rebuilt: not one of the last two


def test_only_a_document_built_from_its_own_bytes_skips_the_polygon_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polygons were checked (and split at the antimeridian) when the case was put: built again from
    its bytes they are only packed (¾ of the cost of a build). The same document given anew is checked."""
    import emon.geo

    case = Case.model_validate(DOCUMENTS[3])
    packed = pack_case(case)

    def checked(geometry: dict[str, Any]) -> None:
        raise ValueError("checked again")

    monkeypatch.setattr(emon.geo, "geojson_to_shape", checked)
    assert unpack_case(packed) == case
    with pytest.raises(ValueError, match="checked again"):
        Case.model_validate(case.model_dump(mode="json", exclude_unset=True))


def test_a_compiled_case_does_not_hold_its_document() -> None:
    case = Case.model_validate(DOCUMENTS[3])
    before = sys.getrefcount(case)
    compiled = compile_case(case, EvalConfig())
    assert sys.getrefcount(case) == before
    assert (compiled.case_id, compiled.offender_device, compiled.victim_device) == ("c1", "tag-c1", "vic-c1")
    assert (compiled.valid_from, compiled.valid_until) == (case.order.valid_from, case.order.valid_until)


def test_the_case_book_holds_a_benchmark_case_in_a_quarter_of_its_document() -> None:
    """benchmarks.memory's case (5 zones: 3 circles, 2 polygons of 12 vertices): ≈ 6.1 KB of pydantic
    models held per case when the book kept the documents; ≈ 1.5 KB as record, packed bytes and index."""
    from benchmarks.e2e_setup import bench_cases

    CaseBook(bench_cases(20)).document("bench-case-000000")  # imports and caches outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cases = bench_cases(2000)  # 200 cases
        book = CaseBook(cases)
        n = len(cases)
        del cases
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(book) == n
    assert held / n < 1_600


def test_documents_are_built_one_at_a_time_when_read() -> None:
    cases = [Case.model_validate(_doc(f"c{i}", units=[f"u{i % 2}"])) for i in range(4)]
    book = CaseBook(cases)
    docs = book.documents(lambda r: r.units == ("u0",))
    assert len(docs) == 2 and list(docs) == [cases[0], cases[2]] and list(docs[1:]) == [cases[2]]
    first = next(iter(docs))
    assert first == cases[0] and first is not next(iter(docs))  # built again on every read, not kept
    assert book.document("c0") is not first


def test_a_document_built_shares_its_records_id_strings() -> None:
    """What the engine keeps of a document built for it (ids) is not a second copy of each string."""
    book = CaseBook([Case.model_validate(_doc("c1"))])
    record = book.get("c1")
    assert record is not None
    for doc in (book.document("c1"), book.documents()[0], next(iter(book.documents()))):
        assert doc is not None
        assert doc.case_id is record.case_id
        assert doc.offender_device is record.offender_device and doc.victim_device is record.victim_device

"""The one device ↔ case index (CaseBook and the geofence engine share it) and the one topic-prefix rule."""

from __future__ import annotations

import pytest

from emon.casebook import CaseBook, DeviceIndex
from emon.geofence.engine import Engine
from emon.topic import prefixed, unprefixed
from tests.alerts.helpers import make_case


def test_the_index_keeps_the_order_cases_were_added_and_forgets_removed_ones() -> None:
    index = DeviceIndex()
    one, two = (
        make_case(case_id="c1", offender="tag-1", victim="vic"),
        make_case(case_id="c2", offender="tag-2", victim="vic"),
    )
    index.add(two)
    index.add(one)
    assert (index.cases_of("vic"), index.cases_of("tag-1"), index.cases_of("nobody")) == (
        ("c2", "c1"),
        ("c1",),
        (),
    )
    index.remove(two)
    assert (index.cases_of("vic"), index.cases_of("tag-2")) == (("c1",), ())
    index.remove(two)  # twice is harmless
    index.add(make_case(case_id="c1", offender="tag-9", victim=None))  # re-added with another tag
    index.remove(one)
    assert index.cases_of("vic") == ()


def test_casebook_and_engine_answer_the_same_for_a_device() -> None:
    cases = [make_case(case_id=f"c{i}", offender=f"tag-{i}", victim="vic") for i in (3, 1, 2)]
    book, engine = CaseBook(cases), Engine()
    for c in cases:
        engine.add_case(c)
    assert [c.case_id for c in book.cases_for_device("vic")] == ["c1", "c2", "c3"]  # the book sorts
    assert engine.cases_for_device("vic") == ("c3", "c1", "c2")  # the engine evaluates in the order added
    book.remove("c1")
    engine.remove_case("c1")
    assert [c.case_id for c in book.cases_for_device("vic")] == sorted(engine.cases_for_device("vic"))


@pytest.mark.parametrize(
    ("prefix", "bare", "full"),
    [("", "emon/v1/fix/t1", "emon/v1/fix/t1"), ("t/abc", "emon/v1/fix/t1", "t/abc/emon/v1/fix/t1")],
)
def test_prefixed_and_unprefixed_are_inverse(prefix: str, bare: str, full: str) -> None:
    assert prefixed(prefix, bare) == full
    assert unprefixed(prefix, full) == bare


def test_a_topic_outside_the_prefix_is_not_ours() -> None:
    assert unprefixed("t/abc", "t/abcd/emon/v1/fix/t1") is None
    assert unprefixed("t/abc", "emon/v1/fix/t1") is None

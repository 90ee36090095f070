"""Case documents held compactly (emon.order, emon.packed_geometry) read and serialise exactly as the
documents they were validated from."""

from __future__ import annotations

import copy
import json
import pickle
import tracemalloc
from typing import Any

import pytest
from pydantic import ValidationError

from emon.case import Case
from emon.order import Zone
from emon.packed_geometry import PackedPolygon

SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]
HOLE = [[5.002, 52.002], [5.003, 52.002], [5.003, 52.003], [5.002, 52.002]]
EAST = [[6.0, 52.0], [6.01, 52.0], [6.01, 52.01], [6.0, 52.0]]


def _geometry(kind: str, coordinates: Any, **more: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates, **more}


# (geometry as given, stored packed?)
GEOMETRIES: list[tuple[dict[str, Any], bool]] = [
    (_geometry("Polygon", [SQUARE]), True),
    (_geometry("Polygon", [SQUARE, HOLE]), True),
    (_geometry("MultiPolygon", [[SQUARE, HOLE], [EAST]]), True),
    ({"coordinates": [SQUARE], "type": "Polygon"}, True),  # key order kept
    (_geometry("Polygon", [[[int(x), int(y)] if x == 5.0 else [x, y] for x, y in SQUARE]]), False),  # ints
    (_geometry("Polygon", [[[x, y, 1.5] for x, y in SQUARE]]), False),  # altitudes
    (_geometry("Polygon", [SQUARE], bbox=[5.0, 52.0, 5.01, 52.01]), False),  # foreign member
]


@pytest.mark.parametrize(("geometry", "packed"), GEOMETRIES)
def test_a_zone_reads_and_serialises_as_given(geometry: dict[str, Any], packed: bool) -> None:
    given = json.loads(json.dumps(geometry))
    zone = Zone.model_validate({"name": "z", "geometry": given})
    assert isinstance(zone.__dict__["geometry"], PackedPolygon) is packed
    assert zone.geometry == geometry
    assert json.dumps(zone.geometry) == json.dumps(geometry)  # same key order, ints stay ints
    assert json.dumps(zone.model_dump(mode="json")["geometry"]) == json.dumps(geometry)
    assert zone.model_dump()["geometry"] == geometry
    assert json.loads(zone.model_dump_json(exclude_none=True))["geometry"] == geometry
    assert zone == Zone.model_validate({"name": "z", "geometry": geometry})
    assert repr(zone) == repr(Zone.model_construct(**{**zone.__dict__, "geometry": geometry}))


def test_a_zone_across_the_antimeridian_is_still_stored_split() -> None:
    ring = [[179.9, -17.0], [180.2, -17.0], [180.2, -16.8], [179.9, -16.8], [179.9, -17.0]]
    zone = Zone.model_validate({"name": "z", "geometry": _geometry("Polygon", [ring])})
    assert zone.geometry is not None and zone.geometry["type"] == "MultiPolygon"
    assert all(abs(x) <= 180 for poly in zone.geometry["coordinates"] for x, _ in poly[0])


def test_a_packed_zone_differs_from_one_with_another_vertex() -> None:
    moved = [SQUARE[0], [5.02, 52.0], *SQUARE[2:]]
    a = Zone.model_validate({"name": "z", "geometry": _geometry("Polygon", [SQUARE])})
    b = Zone.model_validate({"name": "z", "geometry": _geometry("Polygon", [moved])})
    assert a != b
    assert a.model_dump(mode="json") != b.model_dump(mode="json")


def test_the_geometry_read_cannot_change_the_zone() -> None:
    given = json.loads(json.dumps(_geometry("Polygon", [SQUARE])))
    zone = Zone.model_validate({"name": "z", "geometry": given})
    read = zone.geometry
    assert read is not None
    read["coordinates"][0][0][0] = 9.0
    given["coordinates"][0][1][0] = 9.0
    assert zone.geometry == _geometry("Polygon", [SQUARE])
    with pytest.raises(ValidationError, match="frozen"):
        zone.geometry = _geometry("Polygon", [EAST])


def _case_doc(i: int) -> dict[str, Any]:
    return {
        "case_id": f"case-{i}",
        "risk": "high",
        "offender_device": f"tag-{i}",
        "victim_device": f"victim-{i}",
        "residence": {"lat": 52.0, "lon": 5.0},
        "order": {
            "exclusion_zones": [
                {"name": "home", "circle": {"lat": 52.1, "lon": 5.1, "radius_m": 200.0}},
                {"name": "work", "geometry": _geometry("Polygon", [SQUARE])},
            ],
            "contact_ban_m": 500,
        },
    }


def test_a_case_copies_and_pickles_to_an_equal_case() -> None:
    case = Case.model_validate(_case_doc(1))
    for other in (
        copy.copy(case),
        copy.deepcopy(case),
        case.model_copy(deep=True),
        pickle.loads(pickle.dumps(case)),
    ):
        assert other == case
        assert other.model_dump(mode="json") == case.model_dump(mode="json")


def test_cases_share_their_fields_sets_and_a_copy_does_not_change_them() -> None:
    a, b = Case.model_validate(_case_doc(1)), Case.model_validate(_case_doc(2))
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    zones = (a.order.exclusion_zones[1], b.order.exclusion_zones[1])
    assert zones[0].__pydantic_fields_set__ is zones[1].__pydantic_fields_set__
    changed = a.model_copy(update={"person_ref": "PR-12345"})
    assert "person_ref" in changed.model_fields_set
    assert "person_ref" not in b.model_fields_set
    assert set(b.model_dump(exclude_unset=True)) == set(_case_doc(2))


def test_zone_names_are_one_string_each() -> None:
    # Built at run time: two equal strings that are different objects until interned.
    names = ["".join(["wo", "rk"]) for _ in range(2)]
    assert names[0] is not names[1]
    doc = _case_doc(7)
    doc["order"]["exclusion_zones"][1]["name"] = names[0]
    case = Case.model_validate(doc)
    other = Zone.model_validate({"name": names[1], "circle": {"lat": 52.0, "lon": 5.0, "radius_m": 10.0}})
    assert case.order.exclusion_zones[1].name is other.name


def test_a_benchmark_case_holds_less_than_half_the_memory_it_did() -> None:
    """benchmarks.memory's case: 5 zones (3 circles, 2 polygons of 12 vertices); 13.6 KB held by
    Python per case before the compact representation, 6.1 KB after."""
    from benchmarks.e2e_setup import bench_cases

    bench_cases(20)  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cases = bench_cases(2000)  # 200 cases
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / len(cases) < 7_000


def test_the_memory_benchmark_evaluates_fixes_in_emons_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch of every device's fixes left ≈ 2.5 times the resident memory of emon's batches
    (at most EMON_BATCH_MAX fixes) behind: the benchmark measures what a serving instance keeps."""
    from benchmarks import memory
    from emon.geofence import Engine
    from emon.settings import Settings

    sizes: list[int] = []
    evaluate = Engine.evaluate_batch

    def counted(self: Engine, fixes: Any, now: Any) -> Any:
        sizes.append(len(fixes))
        return evaluate(self, fixes, now)

    monkeypatch.setattr(Engine, "evaluate_batch", counted)
    held: dict[str, Any] = {}
    for _, build in memory.stages(250, 2, batch=100):
        build(held)
    assert sizes == [100, 100, 50] * 2
    assert memory.BATCH == Settings.model_fields["batch_max"].default == 1000

"""Case documents held compactly (emon.order, emon.case, emon.device) read and serialise exactly as
the documents they were validated from."""

from __future__ import annotations

import copy
import pickle
from typing import Any

from emon.case import Case
from emon.device import Device, DeviceKind
from emon.order import Zone

SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]
HOLE = [[5.002, 52.002], [5.003, 52.002], [5.003, 52.003], [5.002, 52.002]]
EAST = [[6.0, 52.0], [6.01, 52.0], [6.01, 52.01], [6.0, 52.0]]


def _geometry(kind: str, coordinates: Any, **more: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates, **more}


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


def test_device_ids_and_zone_names_are_one_string_each() -> None:
    # Built at run time: two equal strings that are different objects until interned.
    ids = ["".join(["tag-", str(7)]) for _ in range(2)]
    names = ["".join(["wo", "rk"]) for _ in range(2)]
    assert ids[0] is not ids[1] and names[0] is not names[1]
    doc = _case_doc(7)
    doc["offender_device"] = ids[0]
    doc["order"]["exclusion_zones"][1]["name"] = names[0]
    case = Case.model_validate(doc)
    assert case.offender_device is Device(ids[1], DeviceKind.ANKLE_TAG).device_id
    other = Zone.model_validate({"name": names[1], "circle": {"lat": 52.0, "lon": 5.0, "radius_m": 10.0}})
    assert case.order.exclusion_zones[1].name is other.name

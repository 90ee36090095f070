"""The open cases streamed at start-up are the same documents, in the same order, as read in one list."""

from __future__ import annotations

import pytest

from emon.case import CaseStatus
from emon.storage.cases import CaseRecords
from emon.storage.open_cases import stream_open_cases
from tests.geofence.conftest import circle_zone, make_case
from tests.storage.helpers import Store

pytestmark = pytest.mark.integration


async def test_the_stream_yields_every_open_case_by_id_and_no_closed_one(store: Store) -> None:
    records = CaseRecords(store.db)
    for case_id in ("c3", "c1", "c4", "c2"):
        await records.add(make_case(case_id=case_id, exclusion=[circle_zone("z")], contact_ban_m=500), "test")
    closed = make_case(case_id="c4").model_copy(update={"status": CaseStatus.CLOSED})
    assert await records.replace(closed, "test") == 2
    streamed = [c async for c in stream_open_cases(store.db)]
    assert [c.case_id for c in streamed] == ["c1", "c2", "c3"]
    assert streamed == await records.all(CaseStatus.OPEN)

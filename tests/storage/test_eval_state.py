"""Evaluation state in PostgreSQL: written packed every step, JSON only in the snapshots kept for replay;
what is read back restores the same engine state, so the decisions after a restart are the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emon.geofence import Engine
from emon.storage.cases import CaseRecords, EvaluationWrite, JournalStep
from tests.geofence.conftest import T0, VICTIM, Step, build_fixes, circle_zone, make_case, run_live, types
from tests.storage.helpers import Store

pytestmark = pytest.mark.integration

CASE = make_case(exclusion=[circle_zone("z")], contact_ban_m=500)
FIXES = build_fixes(
    [
        s
        for i, d in enumerate([900, 600, 250, 150, 50, 20, 20, 20, 20, 60, 200, 400, 600, 800])
        for s in (Step(i * 20, 5000, device=VICTIM), Step(i * 20 + 1, d, acc_m=30))
    ]
)
HALF = 14  # the offender is inside the zone: an open breach episode


def mid_episode() -> Engine:
    engine = Engine()
    engine.add_case(CASE)
    assert "exclusion_breach" in types(run_live(engine, FIXES[:HALF]))
    return engine


async def row(store: Store, query: str) -> tuple[object, ...]:
    async with store.db.pool.connection() as conn:
        cur = await conn.execute(query.encode())
        found = await cur.fetchone()
        assert found is not None
        return tuple(found)


async def test_a_case_state_is_stored_packed_and_restores_the_same_decisions(store: Store) -> None:
    engine = mid_episode()
    records = CaseRecords(store.db)
    step = JournalStep("batch", T0 + timedelta(minutes=5), ("case-1",))
    await records.save_evaluation(
        {"case-1": engine.packed("case-1")}, [], step=step, snapshot={"case-1": engine.snapshot("case-1")}
    )
    packed, doc = await row(store, "SELECT packed, state FROM eval_state WHERE case_id = 'case-1'")
    assert doc is None and packed == engine.packed("case-1")
    (snapshot,) = await row(store, "SELECT state FROM eval_snapshots WHERE case_id = 'case-1'")
    assert snapshot == engine.snapshot("case-1")  # evidence packs replay from the JSON snapshot

    restored = Engine()
    restored.add_case(CASE, (await records.states())["case-1"])
    assert restored.snapshot("case-1") == engine.snapshot("case-1")
    after = run_live(engine, FIXES[HALF:])
    assert run_live(restored, FIXES[HALF:]) == after
    assert "exclusion_breach_ended" in types(after)


async def test_a_state_stored_as_json_is_still_restored_and_replaced_by_the_packed_one(store: Store) -> None:
    engine = mid_episode()
    records = CaseRecords(store.db)
    await records.save_evaluation(
        {"case-1": engine.snapshot("case-1")}, []
    )  # as written before migration 118
    (state,) = (await records.states()).values()
    assert state == engine.snapshot("case-1")
    restored = Engine()
    restored.add_case(CASE, state)
    assert run_live(restored, FIXES[HALF:]) == run_live(mid_episode(), FIXES[HALF:])

    await records.save_evaluation({"case-1": engine.packed("case-1")}, [])
    assert await records.states() == {"case-1": engine.packed("case-1")}
    assert await row(store, "SELECT state IS NULL FROM eval_state") == (True,)


async def test_steps_written_together_keep_their_own_journal_numbers_decisions_and_snapshots(
    store: Store,
) -> None:
    """What the evaluation lanes write for batches that waited together (``save_evaluations``): one
    transaction, and per step its own journal row, its decisions under that row's number, its snapshot."""
    engine = Engine()
    engine.add_case(CASE)
    first = run_live(engine, FIXES[:6])
    packed_first = engine.packed("case-1")
    second = run_live(engine, FIXES[6:HALF])
    assert first and second
    records = CaseRecords(store.db)
    # Later than the watermark the schema starts with (it never moves back).
    t1, t2 = datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC) + timedelta(hours=2)
    await records.save_evaluations(
        [
            EvaluationWrite({"case-1": packed_first}, first, watermark=t1, step=JournalStep("batch", t1, ())),
            EvaluationWrite(
                {"case-1": engine.packed("case-1")},
                second,
                watermark=t2,
                step=JournalStep("batch", t2, ()),
                snapshot={"case-1": engine.snapshot("case-1")},
            ),
        ]
    )
    async with store.db.pool.connection() as conn:
        steps = await (await conn.execute(b"SELECT n, now FROM eval_journal ORDER BY n")).fetchall()
        by_step = await (
            await conn.execute(b"SELECT journal_n, count(*) FROM eval_events GROUP BY journal_n ORDER BY 1")
        ).fetchall()
        (snap_n,) = await (await conn.execute(b"SELECT n FROM eval_snapshots")).fetchone() or (None,)
    assert [at for _, at in steps] == [t1, t2]
    (n1, _), (n2, _) = steps
    assert by_step == [(n1, len(first)), (n2, len(second))]
    assert snap_n == n2
    assert await records.watermark() == t2
    assert await records.states() == {"case-1": engine.packed("case-1")}

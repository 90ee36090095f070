"""An evidence pack takes only its case's partition's journal steps (several instances journal apart)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from psycopg.types.json import Jsonb

from emon.evidence.pack import pack_files
from emon.evidence.replay import replay
from emon.partitioning import partition_of
from emon.storage.evidence import collect
from tests.evidence.helpers import breach_alert, setup_case, walk_in, write_key
from tests.harness import running_emon


async def test_a_pack_leaves_out_the_steps_other_partitions_journaled(tmp_path: Path) -> None:
    async with running_emon(signing_key_file=str(write_key(tmp_path))) as em:
        await setup_case(em)
        await walk_in(em, [2400, 2000, 1600, 1200, 800, 400, 150, 100])
        alert = await breach_alert(em)
        mine = partition_of("case-e", 16)
        other = (mine + 1) % 16
        episode = datetime.fromisoformat(str(alert["episode"]))
        async with em.runtime.db.pool.connection() as conn:
            for partition in (mine, other):  # a tick of each partition during the incident
                await conn.execute(
                    "INSERT INTO eval_journal (kind, now, case_ids, fixes, detail) VALUES ('tick', %s, '{}', "
                    "'[]', %s)",
                    (episode, Jsonb({"partition": partition, "partitions": 16})),
                )
        data = await collect(
            em.runtime.db, str(alert["alert_id"]), datetime.now(UTC), before_s=600, after_s=600
        )
        tagged = [s["detail"]["partition"] for s in data.journal if "partition" in s["detail"]]
        assert tagged == [mine]
        assert replay(pack_files(data, datetime.now(UTC))).same

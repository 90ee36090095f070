"""How long one orders-lifecycle pass takes over N open cases (first pass: a watch and a victim-notice task
per case; steady pass: nothing due). Real PostgreSQL on its own schema; the alert service is built but no
background loop runs.

    .venv/bin/python -m benchmarks.order_bench [--cases 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from emon.case import Case
from emon.runtime import Runtime
from emon.settings import Settings
from emon.storage.postgres import drop_schema


async def main(n: int) -> None:
    schema = f"bench_orders_{uuid.uuid4().hex[:8]}"
    settings = Settings().model_copy(
        update={"db_schema": schema, "redis_prefix": schema, "mqtt_client_id": schema}
    )
    rt = Runtime(settings)
    await rt.db.open()
    await rt.db.migrate()
    now = datetime.now(UTC)
    try:
        for i in range(n):
            start = now - timedelta(days=i % 80)
            case = Case.model_validate(
                {
                    "case_id": f"b-{i}",
                    "risk": "high",
                    "offender_device": f"tag-{i}",
                    "residence": {"lat": 52, "lon": 5},
                    "units": ["probation:x"],
                    "prosecutor": "o",
                    "probation_officer": "p",
                    "order": {
                        "kind": "gedragsaanwijzing",
                        "contact_ban_m": 200,
                        "valid_from": start.isoformat(),
                        "valid_until": (start + timedelta(days=90)).isoformat(),
                    },
                }
            )
            await rt.cases.add(case, "bench")
            rt.casebook.put(case)
        for label in ("first pass", "steady pass", "steady pass"):
            t = time.perf_counter()
            actions = await rt.orders.tick(now)
            print(f"{label}: {n} cases, {len(actions)} actions, {time.perf_counter() - t:.2f} s")
    finally:
        await rt.paperwork.close()
        await rt.db.close()
        await drop_schema(settings.database_url, schema)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    asyncio.run(main(parser.parse_args().cases))

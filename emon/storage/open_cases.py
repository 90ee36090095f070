"""The open cases read at start-up, one document at a time (issue #14).

The case book keeps each open case packed (emon.casebook); the document read from PostgreSQL is needed
only until it is put there. Read as a list, every document is alive at once (≈ 6 KB of Python objects
a case, with the whole result set in libpq's memory besides): memory the process then keeps resident,
because what the case book keeps is allocated among it. Streamed, one row and one document are alive at
a time and the memory they take is used again for the next (at 100,000 devices: ≈ 700 B per device
resident after loading the case book from a list, ≈ 300 B streamed; ``benchmarks.memory`` for the parts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from emon.case import Case, CaseStatus
from emon.storage.postgres import Database


async def stream_open_cases(db: Database) -> AsyncIterator[Case]:
    """Every open case, by case id, each parsed when its row arrives (libpq's single-row mode)."""
    async with db.pool.connection() as conn:
        cur = conn.cursor()
        query = b"SELECT document FROM cases WHERE status = %s ORDER BY case_id"
        async for (document,) in cur.stream(query, (CaseStatus.OPEN.value,)):
            yield Case.model_validate(document)

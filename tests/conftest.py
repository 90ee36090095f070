from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.harness import Running, running_emon


@pytest.fixture
async def emon() -> AsyncIterator[Running]:
    """A real emon on the machine's PostgreSQL, Redis and Mosquitto, isolated by schema and topic prefix."""
    async with running_emon() as em:
        yield em

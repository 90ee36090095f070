from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.storage.helpers import Store, open_store


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    """A real PostgreSQL schema (migrated, two registered tags) and Redis prefix, cleaned up after."""
    async with open_store() as s:
        yield s

"""Fixtures for the storage-level tests.

``db_url`` comes from tests/conftest.py (one fresh database per test, on SQLite and on PostgreSQL);
it must not be redefined here, or every storage test would lose its PostgreSQL run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ess_bot.storage.db import Database


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """A Database on ``db_url`` with every migration applied."""
    db = Database(db_url)
    await db.upgrade()
    try:
        yield db
    finally:
        await db.dispose()

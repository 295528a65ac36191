"""The async database handle: engine, session factory, migrations at start."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ess_bot.storage.models import BotState

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection=None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class Database:
    """Owns the engine and hands out sessions. One per process; passed in, never global."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=5, max_overflow=5, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    async def upgrade(self) -> None:
        """Apply every Alembic migration (idempotent)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), "head"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def get_state(self, key: str) -> str | None:
        async with self.sessions() as session:
            return await session.scalar(select(BotState.value).where(BotState.key == key))

    async def set_state(self, key: str, value: str) -> None:
        async with self.sessions.begin() as session:
            await set_state(session, key, value)

    async def states(self, prefix: str) -> dict[str, str]:
        """Every key/value whose key starts with ``prefix``."""
        async with self.sessions() as session:
            rows = await session.execute(select(BotState.key, BotState.value).where(BotState.key.startswith(prefix)))
            return {k: v for k, v in rows}

    async def delete_state(self, key: str) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(BotState, key)
            if row is not None:
                await session.delete(row)


async def set_state(session: AsyncSession, key: str, value: str) -> None:
    row = await session.get(BotState, key)
    if row is None:
        session.add(BotState(key=key, value=value))
    else:
        row.value = value


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()

"""The async database handle: engine, session factory, migrations at start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, event, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ess_bot.storage.models import BotState

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration. A new database is created from the models at this revision, and a database
# already there is left alone without loading Alembic (a test checks this against the scripts).
HEAD_REVISION = "0007"

_VERSION_TABLE = Table("alembic_version", MetaData(),  # as Alembic makes it
                       Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


def alembic_config(connection=None) -> "AlembicConfig":
    from alembic.config import Config as AlembicConfig

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

    async def prepare(self, sqlite_path: Path | None = None) -> str:
        """Create the SQLite file's folder if needed, then :meth:`upgrade`."""
        if sqlite_path is not None:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return await self.upgrade()

    async def upgrade(self) -> str:
        """Bring the schema to the newest revision (idempotent). Says what was done: ``"current"``
        (nothing to do), ``"created"`` (a new database: tables made from the models, stamped at the
        head revision, as Alembic recommends) or ``"migrated"`` (Alembic ran the missing migrations)."""
        async with self.engine.begin() as conn:
            state = await conn.run_sync(_schema_state)
            if state == "current":
                return state
            if state == "empty":
                await conn.run_sync(_create_at_head)
                return "created"
            from alembic import command  # only when there is something to migrate: it is slow to load

            await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), "head"))
        log.info("database migrated to revision %s", HEAD_REVISION)
        return "migrated"

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def get_state(self, key: str) -> str | None:
        async with self.sessions() as session:
            return await session.scalar(select(BotState.value).where(BotState.key == key))

    async def set_state(self, key: str, value: str) -> None:
        await self.set_states({key: value})

    async def set_states(self, values: dict[str, str]) -> None:
        """Several keys in one transaction."""
        async with self.sessions.begin() as session:
            for key, value in values.items():
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


def _schema_state(conn) -> str:
    """``current`` (at HEAD_REVISION), ``empty`` (no table at all) or ``behind`` (anything else)."""
    names = inspect(conn).get_table_names()
    if not names:
        return "empty"
    if _VERSION_TABLE.name in names:
        versions = conn.execute(select(_VERSION_TABLE.c.version_num)).scalars().all()
        if versions == [HEAD_REVISION]:
            return "current"
    return "behind"


def _create_at_head(conn) -> None:
    import ess_bot.storage.all_models  # noqa: F401  (every table on Base.metadata)
    from ess_bot.storage.models import Base

    Base.metadata.create_all(conn)
    _VERSION_TABLE.create(conn)
    conn.execute(insert(_VERSION_TABLE).values(version_num=HEAD_REVISION))
    log.info("new database created at revision %s", HEAD_REVISION)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()

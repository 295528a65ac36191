"""The async database handle: engine, session factory, migrations at start."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, event, insert, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ess_bot.files import create_private_file
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


CONNECT_TIMEOUT = 5.0  # seconds to reach PostgreSQL before a command is answered in degraded mode
PROBE_KEY = "health.probe"


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached or written right now (server down or
    restarting, connection lost, disk full, file locked or read-only) — worth retrying later — rather
    than a bug or a constraint violation."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError)):
            return False
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                            sa_exc.TimeoutError, OSError, ConnectionError, asyncio.TimeoutError)):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if type(exc).__module__.startswith("asyncpg") and type(exc).__name__ in _ASYNCPG_UNAVAILABLE:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


_ASYNCPG_UNAVAILABLE = {"ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError",
                        "AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError",
                        "InternalClientError", "DiskFullError", "InsufficientResourcesError",
                        "ReadOnlySQLTransactionError", "PostgresConnectionError", "InterfaceError",
                        "ConnectionRejectionError", "ServerNotReadyError"}


def describe_database_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except Exception:
        return "la base de données configurée"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database or '(en mémoire)'}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"PostgreSQL « {parsed.database or ''} » sur {where}" if parsed.database else f"PostgreSQL sur {where}"


def unreachable_message(url: str, exc: BaseException) -> str:
    """The one French line a person reads when the bot cannot start on its database."""
    hint = ("le dossier et ses droits" if url.startswith("sqlite")
            else "et que le serveur de base de données est démarré")
    return (f"Base de données injoignable : {describe_database_url(url)} ({explain_database_error(exc)}). "
            f"Vérifiez database.url (ou ESS_BOT_DATABASE_URL), {hint}."
            if url.startswith("sqlite") else
            f"Base de données injoignable : {describe_database_url(url)} ({explain_database_error(exc)}). "
            f"Vérifiez database.url (ou ESS_BOT_DATABASE_URL) {hint}.")


def explain_database_error(exc: BaseException) -> str:
    """A short French reason for a database failure (``connexion refusée``, ``disque plein``…)."""
    chain = []
    while exc is not None and len(chain) < 5:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(e) for e in chain).lower()
    names = {type(e).__name__ for e in chain}
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"} or "password authentication" in text:
        return "identifiant ou mot de passe refusé"
    if "InvalidCatalogNameError" in names or ("database" in text and "does not exist" in text):
        return "cette base n'existe pas sur le serveur"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text \
            or "connect call failed" in text:
        return "connexion refusée ; le serveur est-il démarré ?"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "nom d'hôte inconnu"
    if any(isinstance(e, (asyncio.TimeoutError, TimeoutError, sa_exc.TimeoutError)) for e in chain):
        return "pas de réponse du serveur dans le délai"
    if "disk is full" in text or "no space left" in text or "DiskFullError" in names:
        return "disque plein"
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "base en lecture seule"
    if any(isinstance(e, FileNotFoundError) for e in chain) or "no such file" in text:
        return "dossier introuvable ou impossible à créer"
    if any(isinstance(e, IsADirectoryError) for e in chain):
        return "le chemin désigne un dossier, pas un fichier"
    if "unable to open database file" in text:
        return "fichier impossible à ouvrir (dossier absent ou droits insuffisants)"
    if any(isinstance(e, PermissionError) for e in chain) or "permission denied" in text:
        return "droits insuffisants"
    if "locked" in text:
        return "base verrouillée par un autre programme"
    if names & {"ConnectionDoesNotExistError", "AdminShutdownError", "CannotConnectNowError"} or \
            "connection" in text and ("closed" in text or "lost" in text or "reset" in text):
        return "connexion perdue : le serveur redémarre peut-être"
    return "erreur de la base de données"


class Database:
    """Owns the engine and hands out sessions. One per process; passed in, never global."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # a server that does not answer is given up after CONNECT_TIMEOUT (asyncpg's default is 60 s)
            kwargs.update(pool_size=5, max_overflow=5, pool_pre_ping=True, pool_timeout=CONNECT_TIMEOUT,
                          connect_args={"timeout": CONNECT_TIMEOUT})
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    async def prepare(self, sqlite_path: Path | None = None) -> str:
        """Create the SQLite file's folder (0700) and the file itself (0600) if needed, whatever the
        umask — SQLite gives its -wal and -shm files the database file's mode — then :meth:`upgrade`."""
        if sqlite_path is not None:
            create_private_file(sqlite_path)
        return await self.upgrade()

    def describe(self) -> str:
        """Where the database is, for a person: ``PostgreSQL ess sur 127.0.0.1:5432`` or ``SQLite
        /srv/ess-bot/data/ess-bot.db`` (never the password)."""
        return describe_database_url(self.url)

    async def probe(self) -> tuple[bool, bool]:
        """(reads work, writes work), without raising: a read, then a small write committed in the bot's
        own state table (a rolled-back write would not notice a full disk)."""
        try:
            async with self.sessions() as session:
                await session.scalar(select(BotState.value).where(BotState.key == PROBE_KEY))
        except Exception as exc:
            if not is_unavailable(exc):
                log.warning("database probe: unexpected %s", type(exc).__name__)
            return False, False
        try:
            async with self.sessions.begin() as session:
                await set_state(session, PROBE_KEY, os.urandom(4).hex())
        except Exception:
            return True, False
        return True, True

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

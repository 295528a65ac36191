"""Alembic environment: used programmatically by Database.upgrade() (a connection is passed in),
or from the command line with ``alembic -c ess_bot/migrations/alembic.ini`` and ESS_BOT_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

import ess_bot.storage.all_models  # noqa: F401  (registers every table on Base.metadata)
from ess_bot.storage.models import Base, include_object

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      include_object=include_object(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("ESS_BOT_DATABASE_URL", "sqlite+aiosqlite:///data/ess-bot.db")

    async def go() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(go())


if context.is_offline_mode():
    raise SystemExit("offline mode is not supported; run against a database")
run_online()

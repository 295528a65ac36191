"""Core tables on SQLite and on a real PostgreSQL: migrations, exactly-once records, time zones."""

from datetime import datetime, timezone

from sqlalchemy import func, inspect, select

from ess_bot.storage.db import Database
from ess_bot.storage.models import BotState, ProcessedEvent
from tests.support import PARIS, Harness

NOW = datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)  # just after the spring DST change


async def test_migrations_create_the_tables_and_can_run_twice(db_url):
    db = Database(db_url)
    await db.upgrade()
    await db.upgrade()
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"processed_events", "outbox", "scheduled_jobs", "bot_state", "alembic_version"} <= tables
    await db.dispose()


async def test_duplicate_delivery_is_applied_once(db_url):
    h = await Harness(db_url, NOW).start()
    assert len(await h.say("!ping", event_id="$same")) == 1
    assert await h.say("!ping", event_id="$same") == []
    async with h.app.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
        row = await s.get(ProcessedEvent, "$same")
    assert row.processed_at == NOW.astimezone(timezone.utc)  # aware UTC back, whatever the backend
    await h.close()


async def test_state_values_round_trip(db_url):
    db = Database(db_url)
    await db.upgrade()
    assert await db.get_state("matrix.sync_token") is None
    await db.set_state("matrix.sync_token", "s1_2_3")
    await db.set_state("matrix.sync_token", "s4_5_6")
    assert await db.get_state("matrix.sync_token") == "s4_5_6"
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(BotState)) == 1
    await db.dispose()

"""Tools, files seen in rooms and events on SQLite and on a real PostgreSQL: migrations, services,
aggregation in SQL, instants across time zones."""

from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import inspect

from ess_bot.clock import Clock
from ess_bot.config import Member
from ess_bot.services.events import EventChanges, EventService, NewEvent
from ess_bot.services.tools import FileRef, NewTool, SeenFile, ToolChanges, ToolService
from ess_bot.storage.db import Database, alembic_config
from tests.support import PARIS, Harness, make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
KARIM = Member("@karim:test", "bge-fc", "advisor", "Karim")
MARC = Member("@marc:test", "urscop", "advisor", "Marc")
TABLES = {"tools", "tool_tags", "tool_servings", "room_files", "events"}


@pytest.fixture
async def env(db_url):
    db = Database(db_url)
    await db.upgrade()
    config = make_config(db_url)
    clock = Clock(PARIS, frozen_at=NOW)
    yield db, ToolService(config, clock), EventService(config, clock), clock
    await db.dispose()


async def tables(db):
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))


async def test_migration_creates_and_drops_the_tables(db_url):
    db = Database(db_url)
    await db.upgrade()
    assert TABLES <= await tables(db)
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0002"))
    assert not TABLES & await tables(db)
    await db.upgrade()
    assert TABLES <= await tables(db)
    await db.dispose()


async def test_tools_tags_search_filters_and_popularity(env):
    db, tools, _, clock = env
    async with db.sessions.begin() as s:
        t1 = await tools.add(s, KARIM, NewTool("Trame de business plan ESS", "trame", "https://exemple.org/bp",
                                               ("BusinessPlan", "scop"), "ante_creation"))
        t2 = await tools.add(s, MARC, NewTool("Statuts types SCIC", "modele_statuts", "https://exemple.org/scic",
                                              ("scic", "scop")))
        await tools.add(s, MARC, NewTool("Guide gouvernance", "guide", "https://exemple.org/gouv", ("gouvernance",),
                                         description="Pour les coopératives"))
    async with db.sessions.begin() as s:
        assert [t.id for t in await tools.filtered(s, tag="#SCOP")] == [t2.id, t1.id]  # by title
        assert [t.id for t in await tools.filtered(s, type="trame")] == [t1.id]
        assert [t.id for t in await tools.filtered(s, phase="ante_creation")] == [t1.id]
        assert await tools.known_tags(s) == ["BusinessPlan", "gouvernance", "scic", "scop"]
        result = await tools.search(s, "cooperatives")
        assert [h.tool.title for h in result.hits] == ["Guide gouvernance"]
        for tool_id in (t2.id, t2.id, t2.id, t1.id):
            await tools.served(s, tool_id, "!bge:test")
    async with db.sessions.begin() as s:
        popular = await tools.popular(s)
        assert [(t.id, t.served) for t in popular] == [(t2.id, 3), (t1.id, 1)]
        view, changes = await tools.update(s, KARIM, t1.id, ToolChanges(tags=("bp",), phase=""))
        assert view.tags == ("bp",) and view.phase is None and len(changes) == 2
        await tools.remove(s, MARC, t2.id)
    async with db.sessions() as s:
        assert [t.id for t in await tools.popular(s)] == [t1.id]
        assert [t.title for t in await tools.all(s)] == ["Guide gouvernance", "Trame de business plan ESS"]


async def test_room_files_keep_encrypted_content(env):
    db, tools, _, _ = env
    enc = {"url": "mxc://test/enc", "key": {"alg": "A256CTR", "k": "abc", "ext": True}, "iv": "iv",
           "hashes": {"sha256": "h"}, "v": "v2"}
    ref = FileRef(name="grille.xlsx", file=enc, size=12, mimetype="application/vnd.ms-excel", event_id="$f")
    async with db.sessions.begin() as s:
        await tools.record_file(s, SeenFile("$f", "!bge:test", "@karim:test", NOW, ref))
        await tools.record_file(s, SeenFile("$f", "!bge:test", "@karim:test", NOW, ref))  # idempotent
    async with db.sessions.begin() as s:
        assert await tools.room_file(s, "$f", "!bge:test") == ref
        assert await tools.room_file(s, "$f", "!urscop:test") is None  # never from another room
        tool = await tools.add(s, KARIM, NewTool("Grille", file=ref))
    async with db.sessions() as s:
        assert (await tools.get(s, tool.id)).file == ref


async def test_events_round_trip_in_utc_and_calendar_items_overlap(env):
    db, _, events, clock = env
    start = datetime(2027, 3, 28, 1, 30, tzinfo=PARIS)  # the night of the DST change
    async with db.sessions.begin() as s:
        ev = await events.create(s, KARIM, NewEvent("Nuit de l'ESS", start, start + timedelta(hours=3),
                                                    audience=("porteurs",), tags=("mois-ess",),
                                                    rooms=("!annonces:test", "!bge:test")))
        other = await events.create(s, KARIM, NewEvent("Café", datetime(2026, 12, 2, 9, 0, tzinfo=PARIS)))
    async with db.sessions.begin() as s:
        got = await events.get(s, ev.id)
        assert got.start == start and got.end - got.start == timedelta(hours=3)
        assert got.start.tzinfo is not None and got.start.utcoffset() == timedelta(hours=1)
        assert got.end.utcoffset() == timedelta(hours=2)  # after the change
        assert got.audience == ("porteurs",) and got.tags == ("mois-ess",) and got.rooms == ("!annonces:test",
                                                                                            "!bge:test")
        items = await events.calendar_items(s, datetime(2027, 3, 28, 4, 0, tzinfo=PARIS),
                                            datetime(2027, 3, 29, tzinfo=PARIS))
        assert [i.uid for i in items] == ["event-1@ess-bot"]  # overlaps the window's start
        view, _ = await events.update(s, KARIM, other.id, EventChanges(start=datetime(2026, 12, 3, 9, 0,
                                                                                      tzinfo=PARIS)))
        assert view.sequence == 1 and view.end == datetime(2026, 12, 3, 11, 0, tzinfo=PARIS)
        await events.cancel(s, KARIM, other.id, "grève")
    async with db.sessions() as s:
        upcoming = await events.upcoming(s, clock.now())
        assert [e.id for e in upcoming] == [ev.id]
        assert [e.id for e in await events.upcoming(s, clock.now(), include_cancelled=True)] == [other.id, ev.id]
        assert await events.calendar_items(s, NOW, NOW + timedelta(days=30)) == []
        cancelled = await events.get(s, other.id)
        assert cancelled.cancelled and cancelled.sequence == 2 and cancelled.cancel_reason == "grève"
        assert cancelled.start.astimezone(timezone.utc) == datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)


async def test_event_flow_with_reminders_through_the_bot(db_url):
    h = await Harness(db_url, NOW).start()
    try:
        sent = await h.say('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h', sender="@karim:test")
        assert len(sent) == 7
        h.clock.set(datetime(2027, 1, 14, 9, 0, tzinfo=PARIS))
        await h.app.scheduler.run_due()
        sent = await h.flush()
        assert len(sent) == 6 and "C'est demain à 18 h." in sent[0].body
        [reply] = await h.say("!outil ajouter \"Trame\" https://exemple.org/t #bp")
        await h.say("!outil trame")
        [reply] = await h.say("!outil populaires")
        assert "demandé 1 fois" in reply.body
    finally:
        await h.close()


async def test_same_title_and_start_and_tag_changes_on_both_backends(env):
    db, tools, events, _ = env
    start = datetime(2027, 1, 15, 18, 0, tzinfo=PARIS)
    async with db.sessions.begin() as s:
        first = await events.create(s, KARIM, NewEvent("Forum ESS", start, tags=("forum",)))
        second = await events.create(s, KARIM, NewEvent("forum  ESS", start.astimezone(timezone.utc)))
        other = await events.create(s, KARIM, NewEvent("Forum ESS", start + timedelta(hours=1)))
    async with db.sessions.begin() as s:
        assert [v.id for v in await events.same_title_and_start(s, second)] == [first.id]
        assert await events.same_title_and_start(s, other) == []
        await events.cancel(s, KARIM, first.id)
        assert await events.same_title_and_start(s, second) == []
        view, changes = await events.update(s, KARIM, other.id, EventChanges(add_tags=("cress",)))
        assert view.tags == ("cress",) and [(c.field, c.old, c.new) for c in changes] == [("tags", (), ("cress",))]
        tool = await tools.add(s, KARIM, NewTool("Trame", "trame", "https://exemple.org/t", ("a", "b")))
        view, _ = await tools.update(s, KARIM, tool.id, ToolChanges(add_tags=("c",), remove_tags=("A",)))
    async with db.sessions() as s:
        assert (await tools.get(s, tool.id)).tags == ("b", "c")

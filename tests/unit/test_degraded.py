"""The degraded mode on a real SQLite database whose writes are made to fail (as with a full disk):
read-only commands answered, writes refused in French with nothing half-applied, the coordination
told once at each end of the outage, waiting events replayed, nothing applied twice afterwards, and
the outbox sender and the scheduler never dying of it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from ess_bot.app import App
from ess_bot.framework.degraded import DEGRADED_LABEL
from ess_bot.framework.messages import Incoming, Outgoing
from ess_bot.scheduler import schedule
from ess_bot.storage.accompaniments import Accompaniment
from ess_bot.storage.db import Database
from ess_bot.storage.models import OutboxMessage, ProcessedEvent, ScheduledJob
from tests.faults import DatabaseFaults
from tests.unit.accompaniment_driver import BGE, COORD, PARIS, Bot

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)


@pytest.fixture
async def bot(tmp_path):
    b = await Bot(tmp_path, NOW).start()
    b.faults = DatabaseFaults(b.app.db)
    try:
        yield b
    finally:
        await b.close()


async def count(bot, model, *where) -> int:
    async with bot.app.db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


def in_room(outs: list[Outgoing], room: str) -> list[Outgoing]:
    return [o for o in outs if o.room_id == room]


async def test_writes_refused_reads_answered_coordination_told_once(bot):
    code = await bot.new_project('!projet nouveau "Café culturel Pixel" dep=25')
    bot.faults.writes_fail = True

    outs = await bot.say(f"!suivi {code} émergence 1h30 hier")
    (reply,) = in_room(outs, BGE)
    assert reply.kind == "notice" and reply.reply_to == bot.last_event_id
    assert "Je ne peux pas enregistrer cette demande pour l'instant" in reply.body
    assert "Rien n'a été enregistré." in reply.body and "renvoyer la même commande" in reply.body
    assert "<strong>Rien n'a été enregistré.</strong>" in reply.html
    (told,) = in_room(outs, COORD)
    assert told.kind == "text" and "Base de données indisponible" in told.body and "disque plein" in told.body

    # a read-only command gets its real answer, from memory
    outs = await bot.say(f"!projet voir {code}")
    (reply,) = in_room(outs, BGE)
    assert "Café culturel Pixel" in reply.body and code in reply.body
    # a second write is refused too, and the coordination is not told again
    outs = await bot.say(f"!suivi {code} accueil 1h")
    assert "Rien n'a été enregistré" in in_room(outs, BGE)[0].body and not in_room(outs, COORD)
    # a mistake is still explained (the refusal needs no write)
    outs = await bot.say("!suivi")
    assert "Rien n'a été enregistré" not in in_room(outs, BGE)[0].body
    assert bot.app.health.snapshot()["status"] == "degraded"

    bot.faults.heal()
    assert await count(bot, Accompaniment) == 0
    assert await bot.app.watch.recover()
    outs = await bot.flush()
    (back,) = in_room(outs, COORD)
    assert "Base de données de nouveau disponible" in back.body and "à renvoyer" in back.body
    assert bot.app.health.snapshot() == {"status": "ok", "degraded": {}}
    # every event answered during the outage is recorded as processed: a redelivery does nothing
    assert await count(bot, ProcessedEvent, ProcessedEvent.command.startswith(DEGRADED_LABEL)) == 4
    assert await bot.say(f"!suivi {code} émergence 1h30 hier", event_id="$cmd2") == []
    assert await count(bot, Accompaniment) == 0
    # and the bot records again
    outs = await bot.say(f"!suivi {code} émergence 1h30 hier")
    assert "enregistré" in in_room(outs, BGE)[0].body and await count(bot, Accompaniment) == 1


async def test_unreachable_database_gets_its_own_reply(bot):
    bot.faults.reads_fail = True
    outs = await bot.say("!suivi liste")
    (reply,) = in_room(outs, BGE)
    assert "la base de données du bot est injoignable" in reply.body and "Rien n'a été enregistré" in reply.body
    bot.faults.heal()


async def test_a_redaction_during_the_outage_is_applied_when_the_database_is_back(bot):
    code = await bot.new_project('!projet nouveau "Café culturel Pixel" dep=25')
    await bot.say(f"!suivi {code} émergence 1h30 hier")
    command = bot.last_event_id
    bot.faults.writes_fail = True
    await bot.say(f"!suivi {code} accueil 1h")  # detected: degraded from here on
    assert await bot.redact(command) == []  # cannot be answered now: it waits
    assert [e.event_id for e in bot.app.watch.replay] != []
    bot.faults.heal()
    assert await bot.app.watch.recover()
    outs = await bot.flush()
    assert any(o.body.startswith("🗑️ Suivi n°1 annulé (message d'origine supprimé)") for o in outs)
    async with bot.app.db.sessions() as s:
        assert (await s.get(Accompaniment, 1)).cancelled


async def test_the_watch_probes_and_recovers_by_itself(bot):
    bot.faults.writes_fail = True
    await bot.say("!suivi liste")  # answered (read-only) even though nothing can be written
    await bot.say('!projet nouveau "Recyclerie" dep=25')
    assert bot.app.watch.degraded
    watcher = asyncio.create_task(bot.app.watch.watch())
    try:
        await asyncio.sleep(1.5)
        assert bot.app.watch.degraded  # still failing: still degraded, the watcher keeps probing
        bot.faults.heal()
        for _ in range(40):
            if not bot.app.watch.degraded:
                break
            await asyncio.sleep(0.1)
        assert not bot.app.watch.degraded
        assert not watcher.done()
    finally:
        watcher.cancel()


async def test_the_outbox_sender_survives_database_failures(bot):
    """A row is sent, but the database refuses to mark it: the sender goes on, does not send it twice,
    marks it when the database is back; a scan that fails is retried. The task never ends."""
    runner = asyncio.create_task(bot.sender.run(backoff_max=0.2))
    try:
        async with bot.app.db.sessions.begin() as s:
            s.add(OutboxMessage(room_id=COORD, payload=Outgoing(room_id=COORD, body="un").to_payload(),
                                created_at=NOW, attempts=0))
        bot.faults.writes_fail = True
        bot.app.outbox_ready.set()
        for _ in range(50):
            if bot.recorder.sent:
                break
            await asyncio.sleep(0.05)
        assert [o.body for o in bot.recorder.sent].count("un") == 1
        assert bot.app.watch.degraded
        bot.faults.reads_fail = True  # now the scans fail too
        bot.app.outbox_ready.set()
        await asyncio.sleep(0.6)
        assert not runner.done()
        bot.faults.heal()
        bot.app.outbox_ready.set()
        for _ in range(50):
            if await count(bot, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0:
                break
            await asyncio.sleep(0.05)
        assert await count(bot, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0
        assert [o.body for o in bot.recorder.sent].count("un") == 1  # once
        assert not runner.done()
    finally:
        runner.cancel()


async def test_the_scheduler_keeps_due_jobs_pending_while_the_database_is_down(bot):
    async with bot.app.db.sessions.begin() as s:
        schedule(s, "message", NOW + timedelta(minutes=1), {"room_id": COORD, "markdown": "Rappel"}, now=NOW)
    bot.faults.reads_fail = True
    bot.clock.set(NOW + timedelta(minutes=2))
    assert await bot.app.scheduler.run_due() == []  # no exception
    await asyncio.sleep(0.05)  # the run the clock's move started fails the same way
    assert await bot.app.scheduler.run_due() == []
    bot.faults.heal()
    assert await count(bot, ScheduledJob, ScheduledJob.status == "pending") == 1  # not marked failed
    assert len(await bot.app.scheduler.run_due()) == 1
    outs = await bot.flush()
    assert [o.body for o in outs if o.body == "Rappel"] == ["Rappel"]
    assert await count(bot, ScheduledJob, ScheduledJob.status == "failed") == 0


async def test_what_was_answered_before_a_restart_is_recorded_at_the_next_start(tmp_path):
    """The bot stops while the database is down: the journal it kept is recorded at the next start,
    so a redelivered command answered "nothing recorded" is not applied behind the person's back."""
    bot = await Bot(tmp_path, NOW).start()
    faults = DatabaseFaults(bot.app.db)
    code = await bot.new_project('!projet nouveau "Café culturel Pixel" dep=25')
    faults.writes_fail = True
    await bot.say(f"!suivi {code} émergence 1h30 hier", event_id="$during")
    journal = tmp_path / "degraded-journal.jsonl"
    assert journal.exists() and oct(journal.stat().st_mode & 0o777) == "0o600"
    await bot.close()

    again = await Bot(tmp_path, NOW).start()
    try:
        assert not journal.exists()
        assert await again.say(f"!suivi {code} émergence 1h30 hier", event_id="$during") == []
        assert await count(again, Accompaniment) == 0
    finally:
        await again.close()

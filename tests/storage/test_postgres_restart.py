"""A real PostgreSQL, stopped and started again by the test while the bot works: the commands sent
meanwhile are answered in French, the outbox sender keeps running, and within a few seconds of the
server's return the bot records again — nothing applied twice, nothing lost.

The server is this module's own (not the session's), so that stopping it disturbs no other test."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from ess_bot.storage.accompaniments import Accompaniment
from ess_bot.storage.models import ProcessedEvent
from tests.harness import PostgresServer
from tests.support import PARIS, Harness, make_config

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)
COORD, BGE = "!coord:test", "!bge:test"


@pytest.fixture(scope="module")
def own_postgres():
    pg = PostgresServer()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


async def count(h, model) -> int:
    async with h.app.db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def until(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` holds (fails after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


async def test_postgres_restarted_while_commands_arrive(own_postgres, tmp_path):
    url = own_postgres.create_database()
    h = await Harness(url, NOW, make_config(url)).start()
    runner = asyncio.create_task(h.sender.run(backoff_max=1.0))
    watcher = asyncio.create_task(h.app.watch.watch())
    try:
        text = (await h.say('!projet nouveau "Café culturel Pixel" dep=25'))[0].body
        code = text.split()[2]
        assert code.startswith("P-"), text

        own_postgres.halt()
        before = len(h.recorder.sent)
        await h.say(f"!suivi {code} émergence 1h30 hier", event_id="$down1")
        await h.say("!suivi liste", event_id="$down2")
        await asyncio.sleep(0.2)
        outs = h.recorder.sent[before:]  # the background sender may have sent some of them
        replies = [o for o in outs if o.room_id == BGE]
        assert len(replies) == 2 and all("la base de données du bot est injoignable" in o.body for o in replies)
        assert any("Base de données indisponible" in o.body and "connexion" in o.body
                   for o in outs if o.room_id == COORD)
        assert h.app.health.snapshot()["status"] == "degraded"
        await asyncio.sleep(2)
        assert not runner.done() and not watcher.done()

        own_postgres.resume()
        recovered_after = await until(lambda: _not_degraded(h), timeout=10)
        assert recovered_after < 5, recovered_after
        await h.flush()
        assert any("de nouveau disponible" in o.body for o in h.recorder.sent if o.room_id == COORD)
        # the two events answered during the outage are recorded: redelivered, they do nothing
        assert await h.say(f"!suivi {code} émergence 1h30 hier", event_id="$down1") == []
        assert await count(h, Accompaniment) == 0
        outs = await h.say(f"!suivi {code} émergence 1h30 hier")
        assert "enregistré" in outs[0].body and await count(h, Accompaniment) == 1
        assert await count(h, ProcessedEvent) == 4
        assert not runner.done() and not watcher.done()
    finally:
        runner.cancel()
        watcher.cancel()
        if not own_postgres.running:
            own_postgres.resume()
        await h.close()


async def _not_degraded(h) -> bool:
    return not h.app.watch.degraded

"""The whole bot on the in-memory transport: the runner's start order, replies through the outbox
sender, the scheduler after the first batch, the bot's own messages ignored, a send failure retried."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from ess_bot.clock import Clock
from ess_bot.framework.messages import Incoming
from ess_bot.runner import Runner
from ess_bot.scheduler import schedule
from ess_bot.transports.memory import MemoryTransport
from tests.support import PARIS, make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)


@pytest.fixture
async def bot(tmp_path):
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    transport = MemoryTransport()
    runner = Runner(config, transport, Clock(PARIS, frozen_at=NOW), backoff_max=0.2)
    await runner.start()
    try:
        yield runner, transport
    finally:
        await runner.stop()


def message(n: int, body: str, sender: str = "@karim:test", room: str = "!bge:test") -> Incoming:
    return Incoming(event_id=f"$m{n}", room_id=room, sender=sender, body=body, timestamp=NOW)


async def test_a_command_is_answered_through_the_runner(bot):
    runner, transport = bot
    assert transport.connected and runner.first_sync.is_set() and runner.app.scheduler.started
    assert runner.app.runtime.user_id == "@bot:memory"
    await transport.put(message(1, "!ping"))
    (reply,) = transport.sent
    assert reply.kind == "notice" and reply.reply_to == "$m1" and reply.body.startswith("🏓 Pong !")
    assert "(transport : memory)" in reply.body
    assert runner.caught_up.is_set() and runner.handled == 1


async def test_own_messages_and_redeliveries_are_ignored(bot):
    runner, transport = bot
    await transport.put(message(1, "!ping", sender="@bot:memory"))
    await transport.put(message(2, "!ping"), message(2, "!ping"))
    assert len(transport.sent) == 1 and runner.handled == 1


async def test_scheduled_work_runs_when_the_clock_moves(bot):
    runner, transport = bot
    async with runner.app.db.sessions.begin() as session:
        schedule(session, "message", NOW + timedelta(hours=1), {"room_id": "!coord:test", "markdown": "Rappel"},
                 now=NOW)
    runner.clock.set(NOW + timedelta(hours=1))
    for _ in range(50):
        if transport.sent:
            break
        await asyncio.sleep(0.05)
    assert [o.body for o in transport.sent] == ["Rappel"]


async def test_a_failed_send_is_retried_in_order(bot):
    runner, transport = bot
    transport.fail_sends = 2
    await transport.put(message(1, "!ping"))
    for _ in range(100):
        if transport.sent:
            break
        await asyncio.sleep(0.05)
    assert len(transport.sent) == 1 and transport.sent[0].reply_to == "$m1"
    assert not runner.app.health.degraded("homeserver")


async def test_run_returns_when_the_transport_ends(tmp_path):
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    transport = MemoryTransport()
    runner = Runner(config, transport, Clock(PARIS, frozen_at=NOW))
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.first_sync.wait(), 10)
        await transport.put(message(1, "!ping"))
        await transport.end()
        await asyncio.wait_for(running, 10)
        assert len(transport.sent) == 1
    finally:
        await runner.stop()

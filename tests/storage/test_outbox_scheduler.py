"""Outbox ordering and idempotent transaction ids; scheduled jobs rebuilt from the database.

Run on SQLite and PostgreSQL (the ``db_url`` fixture)."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ess_bot.framework.messages import Outgoing, SendError
from ess_bot.scheduler import schedule
from ess_bot.storage.models import OutboxMessage, ScheduledJob
from tests.support import PARIS, Harness, Recorder

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)


async def test_outbox_keeps_order_and_resends_with_same_txn_id(db_url):
    h = await Harness(db_url, NOW).start()
    calls: list[str] = []
    fail_once = {"$e2": True}

    async def flaky(out: Outgoing, txn_id: str) -> str:
        calls.append(txn_id)
        if out.reply_to in fail_once and fail_once.pop(out.reply_to):
            raise SendError("homeserver down", transient=True)
        return f"$ok-{txn_id}"

    sender = h.app.outbox_sender(flaky)
    for i in (1, 2, 3):
        await h.app.handle(h_incoming(h, f"$e{i}"))
    with pytest.raises(SendError):
        await sender.drain()
    assert calls == ["essbot-1", "essbot-2"]  # stopped at the failure, the third waits its turn
    assert await sender.drain() == 2
    assert calls == ["essbot-1", "essbot-2", "essbot-2", "essbot-3"]  # same txn id on retry
    async with h.app.db.sessions() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [r.event_id for r in rows] == ["$ok-essbot-1", "$ok-essbot-2", "$ok-essbot-3"]
    assert rows[1].attempts == 2 and rows[1].last_error == "homeserver down"
    await h.close()


def h_incoming(h, event_id):
    from ess_bot.framework.messages import Incoming
    return Incoming(event_id=event_id, room_id="!bge:test", sender="@karim:test", body="!ping")


async def test_permanent_error_is_given_up_and_the_rest_goes_on(db_url):
    h = await Harness(db_url, NOW).start()

    async def refuse_first(out, txn_id):
        if txn_id == "essbot-1":
            raise SendError("M_FORBIDDEN", transient=False)
        return "$ok"

    sender = h.app.outbox_sender(refuse_first)
    await h.app.handle(h_incoming(h, "$a"))
    await h.app.handle(h_incoming(h, "$b"))
    assert await sender.drain() == 1
    assert await sender.drain() == 0
    await h.close()


async def test_tag_references_resolve_to_sent_event_ids(db_url):
    h = await Harness(db_url, NOW).start()
    async with h.app.db.sessions.begin() as s:
        s.add(OutboxMessage(room_id="!coord:test", payload=Outgoing(room_id="!coord:test", kind="text",
                                                                   body="sondage").to_payload(),
                            tag="poll:1", created_at=NOW, attempts=0))
        s.add(OutboxMessage(room_id="!coord:test", payload=Outgoing(room_id="!coord:test", kind="reaction",
                                                                   reacts_to="tag:poll:1", key="✅").to_payload(),
                            created_at=NOW, attempts=0))
    recorder = Recorder()
    await h.app.outbox_sender(recorder).drain()
    assert recorder.sent[1].reacts_to == "$sent-1"
    await h.close()


async def test_due_jobs_run_when_the_clock_moves_and_late_ones_say_so(db_url):
    h = await Harness(db_url, NOW).start()
    async with h.app.db.sessions.begin() as s:
        schedule(s, "message", NOW + timedelta(hours=1), {"room_id": "!coord:test", "markdown": "Rappel",
                                                           "mentions": ["@claire:test"]}, key="r1", now=NOW)
    assert await h.app.scheduler.run_due() == []
    h.clock.set(NOW + timedelta(hours=1, minutes=1))
    ran = await h.app.scheduler.run_due()
    assert len(ran) == 1
    [sent] = await h.flush()
    assert sent.kind == "text" and sent.body == "Rappel" and sent.mentions == ["@claire:test"]
    assert await h.app.scheduler.run_due() == []  # never twice
    await h.close()


async def test_job_missed_while_down_runs_at_start_marked_late(db_url):
    h = await Harness(db_url, NOW).start()
    async with h.app.db.sessions.begin() as s:
        schedule(s, "message", NOW + timedelta(hours=1), {"room_id": "!coord:test", "markdown": "Rappel J-1"},
                 key="late", now=NOW)
    await h.close()
    # the bot was down for a day: a new process starts, rebuilds jobs from the database
    h2 = Harness(db_url, NOW + timedelta(days=1))
    await h2.start()
    [sent] = await h2.flush()
    assert sent.body.startswith("Rappel J-1") and "envoyé en retard" in sent.body
    async with h2.app.db.sessions() as s:
        job = await s.scalar(select(ScheduledJob).where(ScheduledJob.key == "late"))
    assert job.status == "late" and job.done_at is not None
    await h2.close()


async def test_broadcasts_are_paced_but_replies_are_not(db_url):
    import asyncio
    h = await Harness(db_url, NOW).start()
    loop = asyncio.get_running_loop()
    times: dict[str, float] = {}

    async def timed(out, txn_id):
        times[txn_id] = loop.time()
        return "$ok"

    async with h.app.db.sessions.begin() as s:
        for i, paced in enumerate([True, True, False, True]):
            s.add(OutboxMessage(room_id="!coord:test", payload=Outgoing(room_id="!coord:test", kind="text",
                                                                       body=str(i), paced=paced).to_payload(),
                                created_at=NOW, attempts=0))
    await h.app.outbox_sender(timed, pace_seconds=0.3).drain()
    t = [times[f"essbot-{i}"] for i in (1, 2, 3, 4)]
    assert t[1] - t[0] >= 0.29          # second broadcast waited
    assert t[2] - t[1] < 0.25           # a reply is not held back by the pacing
    assert t[3] - t[1] >= 0.29          # third broadcast spaced from the previous broadcast
    await h.close()


async def test_relation_in_extra_resolves_tag(db_url):
    h = await Harness(db_url, NOW).start()
    async with h.app.db.sessions.begin() as s:
        s.add(OutboxMessage(room_id="!c", payload=Outgoing(room_id="!c", kind="poll", event_type="x.poll.start",
                                                          extra={"q": 1}).to_payload(), tag="meeting:1:poll",
                            created_at=NOW, attempts=0))
        s.add(OutboxMessage(room_id="!c", payload=Outgoing(room_id="!c", kind="poll_end", event_type="x.poll.end",
                                                          extra={"m.relates_to": {"rel_type": "m.reference",
                                                                                  "event_id": "tag:meeting:1:poll"}}
                                                          ).to_payload(), created_at=NOW, attempts=0))
    recorder = Recorder()
    await h.app.outbox_sender(recorder).drain()
    assert recorder.sent[1].extra["m.relates_to"] == {"rel_type": "m.reference", "event_id": "$sent-1"}
    await h.close()


async def test_a_failing_job_is_retried_later_then_given_up(db_url):
    from ess_bot.scheduler import MAX_RETRIES
    h = await Harness(db_url, NOW).start()
    calls = []

    async def flaky(ctx):
        calls.append(ctx.job.payload.get("_retry", 0))
        if len(calls) < 3:
            raise RuntimeError("database hiccup")
        ctx.announce("!coord:test", "enfin")

    h.app.scheduler.handlers["flaky"] = flaky
    async with h.app.db.sessions.begin() as s:
        schedule(s, "flaky", NOW, {"x": 1}, key="flaky:1", now=NOW)
    await h.app.scheduler.run_due()
    for minutes in (5, 15):
        h.clock.set(NOW + timedelta(minutes=minutes, seconds=1))
        await h.app.scheduler.run_due()
    assert calls == [0, 1, 2]
    [sent] = await h.flush()
    assert sent.body == "enfin"
    async with h.app.db.sessions() as s:
        keys = (await s.scalars(select(ScheduledJob.key).order_by(ScheduledJob.id))).all()
    assert keys == ["flaky:1", "flaky:1:retry1", "flaky:1:retry2"]
    assert MAX_RETRIES >= 3
    await h.close()


async def test_a_reply_goes_out_without_being_read_back_from_the_table(db_url):
    """The dispatcher hands its committed rows to the sender: no SELECT on the outbox before the send."""
    from sqlalchemy import event
    h = await Harness(db_url, NOW).start()
    await h.flush()  # the start-up scan
    statements: list[str] = []
    event.listen(h.app.db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cur, statement, *rest: statements.append(" ".join(statement.split())))
    sent_after: list[int] = []

    async def send(out, txn_id):
        sent_after.append(len(statements))
        return "$ok"

    sender = h.app.outbox_sender(send)
    await h.app.handle(h_incoming(h, "$fast"))
    before = len(statements)
    assert await sender.drain() == 1
    reads = [s for s in statements[before:sent_after[0]] if s.startswith("SELECT") and "FROM outbox" in s]
    assert reads == []
    async with h.app.db.sessions() as s:
        row = await s.scalar(select(OutboxMessage).where(OutboxMessage.source_event_id == "$fast"))
    assert row.event_id == "$ok" and row.sent_at is not None and row.attempts == 1
    await h.close()


async def test_a_row_offered_and_found_by_a_scan_is_sent_once(db_url):
    h = await Harness(db_url, NOW).start()
    await h.flush()
    calls: list[str] = []

    async def send(out, txn_id):
        calls.append(txn_id)
        return f"$ok-{txn_id}"

    sender = h.app.outbox_sender(send)
    await h.app.handle(h_incoming(h, "$both"))  # offered to the sender…
    h.app.outbox_ready.set()                    # …and a scan is due (a job wrote to the table, say)
    assert await sender.drain() == 1
    assert await sender.drain() == 0
    assert len(calls) == 1
    await h.close()


async def test_rooms_are_sent_to_side_by_side_each_in_order(db_url):
    """A slow send in one room does not hold back another room; within a room the order is kept."""
    import asyncio
    h = await Harness(db_url, NOW).start()
    await h.flush()
    b_sent = asyncio.Event()
    order: list[str] = []

    async def send(out, txn_id):
        if out.room_id == "!a:test" and not order:
            await asyncio.wait_for(b_sent.wait(), 5)  # would time out if rooms were sent one after the other
        order.append(f"{out.room_id} {out.body}")
        if out.room_id == "!b:test":
            b_sent.set()
        return f"$ok-{txn_id}"

    async with h.app.db.sessions.begin() as s:
        for room, body in (("!a:test", "a1"), ("!a:test", "a2"), ("!b:test", "b1"), ("!a:test", "a3")):
            s.add(OutboxMessage(room_id=room, payload=Outgoing(room_id=room, kind="notice", body=body).to_payload(),
                                created_at=NOW, attempts=0))
    h.app.outbox_ready.set()
    assert await h.app.outbox_sender(send, parallel_rooms=8).drain() == 4
    assert order == ["!b:test b1", "!a:test a1", "!a:test a2", "!a:test a3"]
    await h.close()


async def test_settled_waits_for_the_replies_but_not_for_ever(db_url):
    import asyncio
    h = await Harness(db_url, NOW).start()
    await h.flush()
    release = asyncio.Event()

    async def slow(out, txn_id):
        await release.wait()
        return "$ok"

    sender = h.app.outbox_sender(slow)
    runner = asyncio.create_task(sender.run())
    assert await sender.settled(0.1)                   # nothing to send
    await h.app.handle(h_incoming(h, "$slow"))
    assert not await sender.settled(0.2)               # the reply is still on its way
    asyncio.get_running_loop().call_later(0.1, release.set)
    assert await sender.settled(5)                     # and now it has gone
    assert sender.sent_count == 1
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await h.close()


async def test_old_sent_messages_leave_the_outbox_but_tagged_and_unsent_ones_stay(db_url):
    """Daily housekeeping: the copy of a message sent more than 30 days ago is deleted (the homeserver
    has it); a tagged one (a poll the bot looks up later) and one not sent yet are kept."""
    from ess_bot.framework.outbox import SENT_KEPT

    h = await Harness(db_url, NOW).start()
    old, recent = NOW - SENT_KEPT - timedelta(days=1), NOW - SENT_KEPT + timedelta(days=1)
    rows = {
        "old": OutboxMessage(room_id="!r", payload={"kind": "notice", "body": "vieux"}, created_at=old, sent_at=old,
                             event_id="$old", attempts=1),
        "old tagged": OutboxMessage(room_id="!r", payload={"kind": "poll", "body": "sondage"}, tag="poll:1",
                                    created_at=old, sent_at=old, event_id="$poll", attempts=1),
        "recent": OutboxMessage(room_id="!r", payload={"kind": "notice", "body": "récent"}, created_at=recent,
                                sent_at=recent, event_id="$recent", attempts=1),
        "unsent": OutboxMessage(room_id="!r", payload={"kind": "notice", "body": "en attente"}, created_at=old,
                                attempts=3, last_error="homeserver down"),
    }
    async with h.app.db.sessions.begin() as s:
        s.add_all(rows.values())
    assert await h.app.scheduler.purge() == 1
    async with h.app.db.sessions() as s:
        left = (await s.scalars(select(OutboxMessage.event_id).order_by(OutboxMessage.id))).all()
    assert left == ["$poll", "$recent", None]
    assert await h.app.scheduler.purge() == 0  # nothing more to remove
    await h.close()


async def test_the_live_scheduler_arms_the_daily_purge_away_from_the_start(db_url):
    from ess_bot.clock import Clock
    from ess_bot.framework.outbox import OutboxSignal
    from ess_bot.scheduler import PURGE_EVERY, PURGE_FIRST_AFTER, Scheduler

    h = await Harness(db_url, NOW).start()  # the schema
    live = Scheduler(h.app.db, Clock(PARIS), h.config, {}, OutboxSignal())
    await live.start()
    try:
        job = live.aps.get_job("purge")
        first = job.next_run_time - datetime.now(PARIS)
        assert PURGE_FIRST_AFTER - timedelta(minutes=1) < first <= PURGE_FIRST_AFTER
        assert job.trigger.interval == PURGE_EVERY
    finally:
        live.shutdown()
        await h.close()

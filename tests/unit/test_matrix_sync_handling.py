"""The Matrix transport's handling of sync batches, without a server (crafted sync responses)."""

from nio import SyncResponse

from ess_bot.transports.matrix import MatrixBot
from tests.support import network_config

ROOM = "!room:hs"


def sync(next_batch: str, events: list[dict], limited: bool = False) -> SyncResponse:
    return SyncResponse.from_dict({
        "next_batch": next_batch,
        "rooms": {"join": {ROOM: {"timeline": {"events": events, "limited": limited, "prev_batch": "p"},
                                  "state": {"events": []}, "ephemeral": {"events": []},
                                  "account_data": {"events": []}}}, "invite": {}, "leave": {}},
        "to_device": {"events": []}, "device_lists": {"changed": [], "left": []},
        "device_one_time_keys_count": {}, "presence": {"events": []}, "account_data": {"events": []}})


def ping(event_id: str, ts: int) -> dict:
    return {"type": "m.room.message", "event_id": event_id, "sender": "@alice:hs", "origin_server_ts": ts,
            "content": {"msgtype": "m.text", "body": "!ping"}}


async def make_bot(tmp_path) -> MatrixBot:
    config = network_config(f"sqlite+aiosqlite:///{tmp_path}/b.db", members=[("@alice:hs", "bge-fc", "advisor")],
                            matrix={"homeserver": "http://127.0.0.1:9", "user_id": "@bot:hs", "password": "x",
                                    "store_path": str(tmp_path / "store")}, base_dir=tmp_path)
    bot = MatrixBot(config)
    bot.client.user_id = "@bot:hs"  # as after login (no server here)
    await bot.app.prepare()
    bot.transport._app = bot.app
    return bot


async def handle_sync(bot: MatrixBot, resp: SyncResponse, skip_history: bool) -> None:
    """One sync round as the runner handles it: the transport's events, each to the dispatcher."""
    for event in await bot.transport._collect(resp, skip_history=skip_history):
        if await bot.app.handle(event):
            bot.handled += 1


async def test_out_of_order_timestamps_across_syncs_are_not_dropped(tmp_path):
    bot = await make_bot(tmp_path)
    try:
        await handle_sync(bot, sync("s1", [ping("$late-stamp", 2_000)]), skip_history=False)
        # persisted after, but created (stamped) a little before by another sender
        await handle_sync(bot, sync("s2", [ping("$early-stamp", 1_990)]), skip_history=False)
        assert bot.handled == 2
        # a redelivery (restart before the token was saved) is not applied twice
        await handle_sync(bot, sync("s2", [ping("$early-stamp", 1_990)]), skip_history=False)
        assert bot.handled == 2
    finally:
        await bot.stop()


async def test_first_sync_skips_history_and_own_join_cuts_earlier_events(tmp_path):
    bot = await make_bot(tmp_path)
    try:
        await handle_sync(bot, sync("s1", [ping("$old", 1_000)]), skip_history=True)
        assert bot.handled == 0
        join = {"type": "m.room.member", "event_id": "$join", "sender": "@bot:hs", "state_key": "@bot:hs",
                "origin_server_ts": 3_000, "content": {"membership": "join"}}
        await handle_sync(bot, sync("s2", [ping("$before-join", 2_500), join, ping("$after-join", 3_100)]),
                               skip_history=False)
        assert bot.handled == 1
    finally:
        await bot.stop()


async def run_loop_over(bot: MatrixBot, responses: list[SyncResponse], log: list[str]) -> None:
    """Feed ``responses`` to the sync loop one by one (then no more: the next sync waits forever) and
    record, in ``log``, each reply sent and the scheduler's start."""
    import asyncio

    queue = list(responses)

    async def fake_sync(**kwargs):
        if not queue:
            await asyncio.Event().wait()
        return queue.pop(0)

    async def fake_send(out, txn_id: str) -> str:
        log.append(f"reply:{out.reply_to}")
        return f"$sent-{len(log)}"

    scheduler_start = bot.app.scheduler.start

    async def start() -> None:
        log.append("scheduler")
        await scheduler_start()

    bot.client.sync = fake_sync
    bot.transport.send = fake_send
    bot.app.scheduler.start = start
    bot._started_at = bot.clock.monotonic()
    bot._spawn("sync", bot._consume, restart=False)


async def test_commands_waiting_at_a_first_start_are_answered_before_the_scheduler_starts(tmp_path):
    """The scheduler's library is slow to load: a first start answers the commands sent while it was
    starting (the round after the first sync) before the scheduler starts."""
    import asyncio

    bot = await make_bot(tmp_path)
    log: list[str] = []
    try:
        await run_loop_over(bot, [sync("s1", [ping("$history", 1_000)]),
                                  sync("s2", [ping("$during-start-1", 2_000), ping("$during-start-2", 2_001)])], log)
        for _ in range(200):
            if bot.app.scheduler.started:
                break
            await asyncio.sleep(0.01)
        assert log == ["reply:$during-start-1", "reply:$during-start-2", "scheduler"]
        assert bot.caught_up.is_set() and bot.app.scheduler.started
    finally:
        await bot.stop()


async def test_the_scheduler_starts_after_a_grace_when_no_message_comes(tmp_path, monkeypatch):
    import asyncio

    bot = await make_bot(tmp_path)
    monkeypatch.setattr(bot.transport, "scheduler_grace", 0.2)
    log: list[str] = []
    try:
        await run_loop_over(bot, [sync("s1", [])], log)
        await asyncio.wait_for(bot.first_sync.wait(), 5)
        assert log == []  # not at once
        for _ in range(300):
            if bot.app.scheduler.started:
                break
            await asyncio.sleep(0.01)
        assert log == ["scheduler"] and not bot.caught_up.is_set()
    finally:
        await bot.stop()

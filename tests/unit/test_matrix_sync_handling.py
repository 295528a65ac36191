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
    return bot


async def test_out_of_order_timestamps_across_syncs_are_not_dropped(tmp_path):
    bot = await make_bot(tmp_path)
    try:
        await bot._handle_sync(sync("s1", [ping("$late-stamp", 2_000)]), skip_history=False)
        # persisted after, but created (stamped) a little before by another sender
        await bot._handle_sync(sync("s2", [ping("$early-stamp", 1_990)]), skip_history=False)
        assert bot.handled == 2
        # a redelivery (restart before the token was saved) is not applied twice
        await bot._handle_sync(sync("s2", [ping("$early-stamp", 1_990)]), skip_history=False)
        assert bot.handled == 2
    finally:
        await bot.stop()


async def test_first_sync_skips_history_and_own_join_cuts_earlier_events(tmp_path):
    bot = await make_bot(tmp_path)
    try:
        await bot._handle_sync(sync("s1", [ping("$old", 1_000)]), skip_history=True)
        assert bot.handled == 0
        join = {"type": "m.room.member", "event_id": "$join", "sender": "@bot:hs", "state_key": "@bot:hs",
                "origin_server_ts": 3_000, "content": {"membership": "join"}}
        await bot._handle_sync(sync("s2", [ping("$before-join", 2_500), join, ping("$after-join", 3_100)]),
                               skip_history=False)
        assert bot.handled == 1
    finally:
        await bot.stop()

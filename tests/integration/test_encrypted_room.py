"""An end-to-end encrypted room: a real E2EE client (matrix-nio with vodozemac) talks to the bot."""

from __future__ import annotations

import asyncio

import pytest
from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomCreateResponse, RoomMessageNotice

from tests.harness import fresh_user

pytestmark = pytest.mark.integration


async def wait_until(predicate, timeout=30.0, step=0.2):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


async def test_encrypted_room_round_trip(bot_runner, synapse, tmp_path):
    user_id, token, device_id = await synapse.register_user_async(fresh_user("chiffre"), password="pw")
    store = tmp_path / "alice-store"
    store.mkdir()
    alice = AsyncClient(synapse.base_url, user_id, store_path=str(store),
                        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True))
    alice.restore_login(user_id, device_id, token)
    notices: list = []
    undecryptable: list = []

    async def on_notice(room, event):
        notices.append(event)

    async def on_megolm(room, event):
        undecryptable.append(event)

    alice.add_event_callback(on_notice, RoomMessageNotice)
    alice.add_event_callback(on_megolm, MegolmEvent)
    bot_runner.members = [(user_id, "bge-fc", "advisor")]
    await bot_runner.start()
    syncer = asyncio.create_task(alice.sync_forever(timeout=1000, full_state=True))
    try:
        resp = await alice.room_create(name="Salon chiffré", invite=[bot_runner.user_id], initial_state=[
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
        assert isinstance(resp, RoomCreateResponse)
        room_id = resp.room_id
        await wait_until(lambda: room_id in alice.rooms and bot_runner.user_id in alice.rooms[room_id].users)
        assert alice.rooms[room_id].encrypted
        await alice.keys_query() if alice.should_query_keys else None
        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "!ping"},
                                     ignore_unverified_devices=True)
        await wait_until(lambda: any(n.sender == bot_runner.user_id for n in notices))
        reply = next(n for n in notices if n.sender == bot_runner.user_id)
        assert reply.decrypted, "the bot's reply was not encrypted"
        assert reply.body.startswith("🏓 Pong ! ess-bot")
        assert reply.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == sent.event_id
        assert not [e for e in undecryptable if e.sender == bot_runner.user_id]
    finally:
        syncer.cancel()
        await asyncio.gather(syncer, return_exceptions=True)
        await alice.close()

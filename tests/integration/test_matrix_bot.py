"""The bot on a real Synapse: joining, replying, exactly-once across restarts, bursts, outages."""

from __future__ import annotations

import asyncio
import time

import pytest

from ess_bot.framework.command import Command
from tests.harness.matrix_client import match

pytestmark = pytest.mark.integration


async def setup_room(bot_runner, make_user, *, role="advisor", extra_members=()):
    """A member creates a room and invites the bot; the bot is started and joins."""
    alice = await make_user("alice")
    bot_runner.members = [(alice.user_id, "bge-fc", role), *extra_members]
    bot = await bot_runner.start()
    room = await alice.create_room(name="Salon de test", invite=[bot_runner.user_id])
    await alice.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"))
    return bot, alice, room


async def assert_no_more_from(user, room, sender, seconds=1.5):
    extra = await user.collect(room, match(sender=sender, type="m.room.message"), 1, timeout=seconds, allow_fewer=True)
    assert extra == [], f"unexpected extra message: {extra[0]['content'].get('body')!r}"


def is_reply_to(event_id):
    def pred(ev):
        rel = (ev.get("content") or {}).get("m.relates_to") or {}
        return (rel.get("m.in_reply_to") or {}).get("event_id") == event_id
    return pred


async def test_joins_on_invite_and_answers_aide_and_ping_as_notices(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)
    cmd = await alice.send_text(room, "!aide")
    reply = await alice.wait_for(room, is_reply_to(cmd))
    content = reply["content"]
    assert reply["sender"] == bot_runner.user_id
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html" and "<strong>" in content["formatted_body"]
    assert "!ping" in content["body"] and "Général" in content["body"]
    assert "m.mentions" in content  # always present so that nobody is pinged by accident

    cmd = await alice.send_text(room, "!Ping")
    reply = await alice.wait_for(room, is_reply_to(cmd))
    assert reply["content"]["body"].startswith("🏓 Pong ! ess-bot 0.1.0 — en service depuis")
    assert "Matrix" in reply["content"]["body"]


async def test_non_member_invite_is_declined_and_non_member_command_refused(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)
    mallory = await make_user("mallory")
    other = await mallory.create_room(name="Inconnu", invite=[bot_runner.user_id])
    ev = await mallory.wait_for(other, match(type="m.room.member", state_key=bot_runner.user_id))
    if ev["content"]["membership"] == "invite":
        ev = await mallory.wait_for(other, match(type="m.room.member", state_key=bot_runner.user_id))
    assert ev["content"]["membership"] == "leave"  # declined, never joined

    await alice.invite(room, mallory.user_id)
    await mallory.join(room)
    cmd = await mallory.send_text(room, "!aide")
    reply = await mallory.wait_for(room, is_reply_to(cmd))
    assert "Je ne vous trouve pas parmi les membres du réseau" in reply["content"]["body"]
    assert alice.user_id in reply["content"]["body"] or "administrateur" in reply["content"]["body"]


async def test_unknown_command_gets_a_suggestion_and_own_notices_are_ignored(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)
    cmd = await alice.send_text(room, "!pnig")
    reply = await alice.wait_for(room, is_reply_to(cmd))
    assert "Vouliez-vous dire !ping ?" in reply["content"]["body"]
    # a notice that looks like a command is not answered (bots must never answer notices)
    await alice.send_text(room, "!ping", msgtype="m.notice")
    marker = await alice.send_text(room, "!aide ping")
    reply = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    assert is_reply_to(marker)(reply), "the notice was answered"


async def test_reply_stays_in_thread(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)
    root = await alice.send_text(room, "Fil de discussion")
    cmd = await alice.send_text(room, "!ping", thread_root=root)
    reply = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    rel = reply["content"]["m.relates_to"]
    assert rel["rel_type"] == "m.thread" and rel["event_id"] == root
    assert rel["m.in_reply_to"]["event_id"] == cmd and rel["is_falling_back"] is True


async def test_first_start_skips_history(bot_runner, make_user):
    alice = await make_user("alice")
    bot_runner.members = [(alice.user_id, "bge-fc", "advisor")]
    # the bot account is in the room before its very first start; commands were sent meanwhile
    room = await alice.create_room(name="Historique", invite=[bot_runner.user_id])
    from tests.harness.matrix_client import TestUser
    uid, token, dev = bot_runner.synapse.login(bot_runner.user_id.split(":")[0][1:], bot_runner.password)
    bot_client = TestUser(bot_runner.synapse.base_url, uid, token, dev)
    await bot_client.join(room)
    await bot_client.close()
    for i in range(3):
        await alice.send_text(room, f"!ping ancien {i}")
    await bot_runner.start()
    cmd = await alice.send_text(room, "!ping nouveau")
    reply = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    assert is_reply_to(cmd)(reply), "an old command was answered"
    await assert_no_more_from(alice, room, bot_runner.user_id)


async def test_restart_neither_replays_nor_loses_commands(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)
    first = await alice.send_text(room, "!ping avant")
    await alice.wait_for(room, is_reply_to(first))
    await bot_runner.stop()
    during = await alice.send_text(room, "!ping pendant l'arrêt")
    await bot_runner.start()
    reply = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    assert is_reply_to(during)(reply)
    after = await alice.send_text(room, "!ping après")
    reply = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    assert is_reply_to(after)(reply), "a command was replayed after the restart"


async def test_burst_sent_while_stopped_is_answered_exactly_once(bot_runner, make_user, caplog):
    bot_runner.matrix_overrides = {"timeline_limit": 20}  # force limited syncs and paging back
    caplog.set_level("INFO", logger="ess_bot")
    bot, alice, room = await setup_room(bot_runner, make_user)
    await bot_runner.stop()
    sent = [await alice.send_text(room, f"!ping {i}") for i in range(300)]
    await bot_runner.start()
    replies = await alice.collect(room, match(sender=bot_runner.user_id, type="m.room.message"), 300, timeout=120)
    targets = [r["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] for r in replies]
    assert sorted(targets) == sorted(sent)
    assert targets == sent  # answered in order
    assert "paged back" in caplog.text  # the gap of the limited sync was fetched
    await assert_no_more_from(alice, room, bot_runner.user_id)


async def test_rate_limited_bot_retries_after_retry_after_ms(bot_runner, make_user, synapse):
    admin = await make_user("admin", admin=True)
    bot, alice, room = await setup_room(bot_runner, make_user)
    await admin.request("POST", f"/_synapse/admin/v1/users/{bot_runner.user_id}/override_ratelimit",
                        json_body={"messages_per_second": 2, "burst_count": 2})
    try:
        sent = [await alice.send_text(room, f"!ping {i}") for i in range(12)]
        replies = await alice.collect(room, match(sender=bot_runner.user_id, type="m.room.message"), 12, timeout=60)
        assert sorted(r["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] for r in replies) == sorted(sent)
    finally:
        await admin.request("DELETE", f"/_synapse/admin/v1/users/{bot_runner.user_id}/override_ratelimit")


async def test_homeserver_down_then_back(tmp_path, caplog):
    """A dedicated homeserver is stopped (connections refused) and restarted: the bot retries with
    backoff, resumes, and answers the next command."""
    from tests.harness import SynapseServer, TestUser, fresh_user
    from tests.integration.conftest import BotRunner

    hs = SynapseServer(tmpdir=tmp_path / "hs").start()
    runner = None
    alice = None
    try:
        bot_id, _, _ = await hs.register_user_async(fresh_user("essbot"), password="pw")
        alice_id, token, device = await hs.register_user_async(fresh_user("alice"))
        runner = BotRunner(synapse=hs, workdir=tmp_path / "bot", user_id=bot_id, password="pw",
                           members=[(alice_id, "bge-fc", "advisor")])
        runner.workdir.mkdir()
        await runner.start()
        alice = TestUser(hs.base_url, alice_id, token, device)
        await alice.start_listening()
        room = await alice.create_room(name="Panne", invite=[bot_id])
        await alice.wait_for(room, match(type="m.room.member", state_key=bot_id, membership="join"))
        hs.stop()
        await asyncio.sleep(4)
        # the bot noticed, says so once (not once per attempt), and /healthz would say it too
        assert caplog.text.count("homeserver unavailable") == 1 and "Timed out" not in caplog.text
        assert runner.bot.app.health.degraded("homeserver")
        hs.start()
        await alice.close()
        alice = TestUser(hs.base_url, alice_id, token, device)
        await alice.start_listening()
        cmd = await alice.send_text(room, "!ping après la panne")
        sent = time.monotonic()
        reply = await alice.wait_for(room, is_reply_to(cmd), timeout=60)
        assert reply["content"]["body"].startswith("🏓 Pong")
        assert time.monotonic() - sent < 5  # retries are at most 3 s apart
        assert not runner.bot.app.health.degraded("homeserver") and "homeserver available again" in caplog.text
    finally:
        if alice is not None:
            await alice.close()
        if runner is not None:
            await runner.stop()
        hs.stop()


async def test_files_are_uploaded_and_sent(bot_runner, make_user):
    bot, alice, room = await setup_room(bot_runner, make_user)

    async def fichier(ctx, args):
        ctx.reply_file("rapport.csv", "partenaire;heures\nbge-fc;12\n".encode(), "text/csv")
        ctx.reply_file("graphique.png", b"\x89PNG\r\n\x1a\nfake", "image/png", image=True)

    bot.app.registry.add(Command(name="fichier", handler=fichier, group="Test", summary="s", usage="!fichier"))
    cmd = await alice.send_text(room, "!fichier")
    csv_ev, png_ev = await alice.collect(room, match(sender=bot_runner.user_id, type="m.room.message"), 2)
    assert csv_ev["content"]["msgtype"] == "m.file" and csv_ev["content"]["body"] == "rapport.csv"
    assert csv_ev["content"]["info"]["mimetype"] == "text/csv"
    assert is_reply_to(cmd)(csv_ev)
    assert await alice.download(csv_ev["content"]["url"]) == "partenaire;heures\nbge-fc;12\n".encode()
    assert png_ev["content"]["msgtype"] == "m.image"


async def test_scheduled_message_is_sent_after_first_sync_even_if_missed(bot_runner, make_user):
    from datetime import timedelta
    from ess_bot.scheduler import schedule

    bot, alice, room = await setup_room(bot_runner, make_user)
    await bot_runner.stop()
    # a reminder that fell due while the bot was down
    from ess_bot.storage.db import Database
    db = Database(bot_runner.config().database.url)
    async with db.sessions.begin() as s:
        from ess_bot.clock import Clock
        now = Clock(bot_runner.config().bot.tz).now()
        schedule(s, "message", now - timedelta(hours=2), {"room_id": room, "markdown": "**Rappel** de test",
                                                          "mentions": [alice.user_id]}, key="t1", now=now)
    await db.dispose()
    await bot_runner.start()
    ev = await alice.wait_for(room, match(sender=bot_runner.user_id, type="m.room.message"))
    content = ev["content"]
    assert content["msgtype"] == "m.text"
    assert content["m.mentions"] == {"user_ids": [alice.user_id]}
    assert "envoyé en retard" in content["body"] and "<strong>Rappel</strong>" in content["formatted_body"]


async def test_concurrent_senders_in_one_room_are_all_answered_once(bot_runner, make_user):
    """Several people typing at once: timestamps interleave out of order in the timeline; none is lost."""
    alice = await make_user("alice")
    others = [await make_user(f"conseil{i}") for i in range(4)]
    bot_runner.members = [(u.user_id, "bge-fc", "advisor") for u in [alice, *others]]
    await bot_runner.start()
    room = await alice.create_room(name="Rafale", invite=[bot_runner.user_id, *(u.user_id for u in others)])
    for u in others:
        await u.join(room)
    await alice.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"))
    await alice.start_listening()
    sent: list[str] = []

    async def send(user, n):
        for i in range(n):
            sent.append(await user.send_text(room, f"!ping {user.user_id} {i}"))

    await asyncio.gather(*(send(u, 40) for u in [alice, *others]))
    replies = await alice.collect(room, match(sender=bot_runner.user_id, type="m.room.message"), len(sent),
                                  timeout=120)
    assert sorted(r["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] for r in replies) == sorted(sent)
    await assert_no_more_from(alice, room, bot_runner.user_id)


async def test_calendar_feed_runs_with_the_bot(bot_runner, make_user):
    import aiohttp
    from icalendar import Calendar
    from tests.harness.synapse import free_port

    port = free_port()
    bot_runner.extra_config = {"http": {"listen": f"127.0.0.1:{port}", "token": "jeton-de-test-0123456789"}}
    await setup_room(bot_runner, make_user)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with http.get(f"http://127.0.0.1:{port}/agenda.ics?token=jeton-de-test-0123456789") as resp:
            assert resp.status == 200 and resp.content_type == "text/calendar"
            assert Calendar.from_ical(await resp.read()).name == "VCALENDAR"
        async with http.get(f"http://127.0.0.1:{port}/agenda.ics?token=faux") as resp:
            assert resp.status == 403
    await bot_runner.stop()
    async with aiohttp.ClientSession() as http:  # stopped with the bot
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                raise AssertionError(f"feed still answering: {resp.status}")
        except aiohttp.ClientConnectionError:
            pass


async def test_access_token_login_keeps_the_device(bot_runner, make_user):
    """An administrator may give an access token instead of a password: the bot uses its device."""
    user_id, token, device = bot_runner.synapse.login(bot_runner.user_id, bot_runner.password)
    bot_runner.password = ""
    bot_runner.matrix_overrides = {"access_token": token}
    bot, alice, room = await setup_room(bot_runner, make_user)
    assert bot.client.device_id == device
    cmd = await alice.send_text(room, "!ping")
    reply = await alice.wait_for(room, is_reply_to(cmd))
    assert reply["content"]["body"].startswith("🏓 Pong")

"""Events, reminders and the calendar feed on a real Synapse with the real bot (MatrixBot)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import aiohttp
import pytest
from icalendar import Calendar

from ess_bot.clock import Clock
from ess_bot.config import HttpSettings
from ess_bot.http import start_http, stop_http
from tests.harness.matrix_client import match
from tests.harness.synapse import free_port
from tests.support import PARIS

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
ADD = ('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon" '
       'lien=https://pixel.example/inscription public=porteurs #mois-ess')
TOKEN = "feed-token-0123456789"


async def network(bot_runner, make_user, clock):
    """A coordinator, an announcements room and two partner rooms, the bot invited to all three."""
    alice = await make_user("alice")
    rooms = {name: await alice.create_room(name=name, invite=[bot_runner.user_id])
             for name in ("Annonces", "BGE", "URSCOP")}
    bot_runner.members = [(alice.user_id, "bge-fc", "coordinator")]
    bot_runner.rooms = {"announcements": [rooms["Annonces"]]}
    bot_runner.partner_rooms = {"bge-fc": rooms["BGE"], "urscop": rooms["URSCOP"]}
    bot_runner.matrix_overrides = {"broadcast_interval_ms": 50}
    bot = await bot_runner.start(clock=clock)
    for room in rooms.values():
        await alice.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"))
    return bot, alice, rooms


def from_bot(bot_runner, msgtype=None):
    return match(sender=bot_runner.user_id, type="m.room.message", msgtype=msgtype)


async def card_and_ics(alice, bot_runner, room):
    card = await alice.wait_for(room, from_bot(bot_runner, "m.text"), timeout=30)
    ics = await alice.wait_for(room, from_bot(bot_runner, "m.file"), timeout=30)
    [vevent] = Calendar.from_ical(await alice.download(ics["content"]["url"])).walk("VEVENT")
    return card["content"], ics["content"], vevent


async def test_event_announced_in_three_rooms_with_ics_then_reminded(bot_runner, make_user):
    clock = Clock(PARIS, frozen_at=NOW)
    bot, alice, rooms = await network(bot_runner, make_user, clock)
    cmd = await alice.send_text(rooms["BGE"], ADD)
    for name in ("Annonces", "BGE", "URSCOP"):
        card, ics, vevent = await card_and_ics(alice, bot_runner, rooms[name])
        assert card["body"].startswith("📅 Nouvel événement : Inauguration du Pixel")
        assert "<strong>Quand :</strong> vendredi 15 janvier 2027, de 18 h à 21 h" in card["formatted_body"]
        assert '<a href="https://pixel.example/inscription">' in card["formatted_body"]
        assert card["m.mentions"] == {}
        assert ics["body"] == "inauguration-du-pixel-1.ics" and ics["info"]["mimetype"] == "text/calendar"
        assert str(vevent["UID"]) == "event-1@ess-bot" and int(vevent["SEQUENCE"]) == 0
        assert vevent.decoded("DTSTART") == datetime(2027, 1, 15, 18, 0, tzinfo=PARIS)
        assert vevent["DTSTART"].params["TZID"] == "Europe/Paris"
    reply = await alice.wait_for(rooms["BGE"], match(sender=bot_runner.user_id, relates_to=cmd))
    assert reply["content"]["msgtype"] == "m.notice"
    assert "Annoncé dans 3 salons" in reply["content"]["body"]

    # J-1 at 9:00: the reminder goes to the three rooms, in reply to each announcement
    clock.set(datetime(2027, 1, 14, 9, 0, tzinfo=PARIS))
    await bot.app.scheduler.run_due()
    for name in ("Annonces", "BGE", "URSCOP"):
        card, ics, vevent = await card_and_ics(alice, bot_runner, rooms[name])
        assert card["body"].startswith("⏰ Rappel : Inauguration du Pixel") and "C'est demain à 18 h." in card["body"]
        assert "m.in_reply_to" in card["m.relates_to"]
        assert str(vevent["UID"]) == "event-1@ess-bot"


async def test_missed_reminder_is_sent_late_after_a_restart_and_cancellation_stops_the_next(bot_runner, make_user):
    bot, alice, rooms = await network(bot_runner, make_user, Clock(PARIS, frozen_at=NOW))
    await alice.send_text(rooms["BGE"], ADD)
    for room in rooms.values():
        await card_and_ics(alice, bot_runner, room)
    await bot_runner.stop()
    # back three hours after J-7's reminder was due: it is sent at start, saying it is late
    clock = Clock(PARIS, frozen_at=datetime(2027, 1, 8, 12, 0, tzinfo=PARIS))
    bot = await bot_runner.start(clock=clock)
    card, _, _ = await card_and_ics(alice, bot_runner, rooms["Annonces"])
    assert "C'est dans 7 jours" in card["body"]
    assert "(Rappel prévu le vendredi 8 janvier 2027 à 9 h, envoyé en retard : le bot était indisponible.)" \
        in card["body"]
    for name in ("BGE", "URSCOP"):
        await card_and_ics(alice, bot_runner, rooms[name])
    # cancelled: a notice with STATUS:CANCELLED, and no J-1 reminder
    await alice.send_text(rooms["BGE"], '!evenement annuler 1 "salle indisponible"')
    card, _, vevent = await card_and_ics(alice, bot_runner, rooms["URSCOP"])
    assert card["body"].startswith("❌ Événement annulé") and "Raison : salle indisponible" in card["body"]
    assert str(vevent["STATUS"]) == "CANCELLED" and int(vevent["SEQUENCE"]) == 1
    clock.set(datetime(2027, 1, 14, 9, 0, tzinfo=PARIS))
    assert await bot.app.scheduler.run_due() == []
    extra = await alice.collect(rooms["URSCOP"], from_bot(bot_runner), 1, timeout=2, allow_fewer=True)
    assert extra == []


async def test_calendar_feed_over_http(bot_runner, make_user):
    bot, alice, rooms = await network(bot_runner, make_user, Clock(PARIS, frozen_at=NOW))
    await alice.send_text(rooms["BGE"], ADD)
    await alice.send_text(rooms["BGE"], '!evenement ajouter "Café ESS" 2/12 9h')
    announced = {}
    for room in rooms.values():
        for _ in range(2):
            _, _, vevent = await card_and_ics(alice, bot_runner, room)
            announced[str(vevent["UID"])] = vevent
    port = free_port()
    config = dataclasses.replace(bot.config, http=HttpSettings(listen=f"127.0.0.1:{port}", token=TOKEN))
    runner = await start_http(config, bot.app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/agenda.ics", params={"token": TOKEN}) as resp:
                assert resp.status == 200 and resp.content_type == "text/calendar"
                cal = Calendar.from_ical(await resp.read())
            async with session.get(f"http://127.0.0.1:{port}/agenda.ics", params={"token": "mauvais"}) as resp:
                assert resp.status == 403
                assert b"VCALENDAR" not in await resp.read()
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert (await resp.json())["status"] == "ok"
    finally:
        await stop_http(runner)
    events = cal.walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Café ESS", "Inauguration du Pixel"]
    for e in events:  # the feed's VEVENT is the announcement's, DTSTAMP aside
        assert {k: e[k].to_ical() for k in e if k != "DTSTAMP"} == \
            {k: announced[str(e["UID"])][k].to_ical() for k in announced[str(e["UID"])] if k != "DTSTAMP"}
    assert all("ATTENDEE" not in e for e in events)
    assert alice.user_id.encode() not in cal.to_ical()


async def test_tool_added_by_replying_to_a_file_is_sent_again_without_upload(bot_runner, make_user):
    bot, alice, rooms = await network(bot_runner, make_user, Clock(PARIS))
    data = "Rubrique;Montant\nChiffre d'affaires;0\n".encode()
    mxc = await alice.upload(data, "text/csv", "previsionnel.csv")
    file_event = await alice.send_event(rooms["BGE"], "m.room.message", {
        "msgtype": "m.file", "body": "previsionnel.csv", "url": mxc, "info": {"mimetype": "text/csv",
                                                                            "size": len(data)}})
    cmd = await alice.send_text(rooms["BGE"], '!outil ajouter "Prévisionnel sur trois ans" #finances type=tableur',
                                reply_to=file_event)
    reply = await alice.wait_for(rooms["BGE"], match(sender=bot_runner.user_id, relates_to=cmd))
    assert "Outil n°1 « Prévisionnel sur trois ans » partagé (tableur, fichier)" in reply["content"]["body"]
    # asked for in another room: the card, then the very same media (same mxc, no new upload)
    ask = await alice.send_text(rooms["URSCOP"], "!outil previsionel")
    card, sent = await alice.collect(rooms["URSCOP"], match(sender=bot_runner.user_id, relates_to=ask), 2)
    assert card["content"]["body"].startswith("📎 Prévisionnel sur trois ans — outil n°1 (tableur)")
    assert sent["content"]["msgtype"] == "m.file" and sent["content"]["url"] == mxc
    assert sent["content"]["body"] == "previsionnel.csv" and sent["content"]["info"]["mimetype"] == "text/csv"
    assert await alice.download(sent["content"]["url"]) == data

"""!reunion on a real Synapse: a poll answered by reactions (changed, removed), text and native poll
answers, the state, the close with announcements and .ics in both rooms, the reminder to non-voters
and the automatic close with a frozen clock moved forward, and a restart in between."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from icalendar import Calendar

from ess_bot.clock import Clock
from tests.harness.matrix_client import match
from tests.support import PARIS

pytestmark = pytest.mark.integration

NOW = datetime(2026, 2, 2, 10, 0, tzinfo=PARIS)
PROPOSE = '!reunion proposer "Rencontre du réseau" 10/03 14h, 12/03 14h, 18/03 9h30 limite=20/02'
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"


def is_reply_to(event_id):
    def pred(ev):
        rel = (ev.get("content") or {}).get("m.relates_to") or {}
        return (rel.get("m.in_reply_to") or {}).get("event_id") == event_id
    return pred


def body_starts(prefix):
    return lambda ev: str((ev.get("content") or {}).get("body", "")).startswith(prefix)


class Network:
    def __init__(self, bot_runner, claire, karim, marc, coord, annonces):
        self.runner, self.claire, self.karim, self.marc = bot_runner, claire, karim, marc
        self.coord, self.annonces = coord, annonces

    @property
    def bot_id(self):
        return self.runner.user_id

    async def command(self, user, text, room=None):
        room = room or self.coord
        cmd = await user.send_text(room, text)
        return (await user.wait_for(room, is_reply_to(cmd), timeout=30))["content"]["body"]

    async def propose(self):
        """Claire proposes three dates; returns {n: option event id} and the native poll's event id."""
        await self.claire.send_text(self.coord, PROPOSE)
        bot = self.bot_id
        options = {}
        for n in (1, 2, 3):
            ev = await self.karim.wait_for(self.coord, lambda e, n=n: e["sender"] == bot and
                                           e["type"] == "m.room.message" and body_starts(f"{n}. ")(e), timeout=30)
            options[n] = ev["event_id"]
        poll = await self.karim.wait_for(self.coord, match(sender=bot, type=POLL_START), timeout=30)
        # the bot put ✅ 🤔 ❌ on every date
        reactions = await self.karim.collect(self.coord, match(sender=bot, type="m.reaction"), 9, timeout=30)
        keys = {(r["content"]["m.relates_to"]["event_id"], r["content"]["m.relates_to"]["key"]) for r in reactions}
        assert keys == {(options[n], k) for n in options for k in ("✅", "🤔", "❌")}
        return options, poll["event_id"]


@pytest.fixture
async def network(bot_runner, make_user):
    claire = await make_user("claire")
    karim = await make_user("karim")
    marc = await make_user("marc")
    invite = [bot_runner.user_id, karim.user_id, marc.user_id]
    coord = await claire.create_room(name="Coordination du réseau", invite=invite)
    annonces = await claire.create_room(name="Annonces du réseau", invite=invite)
    for user in (karim, marc):
        await user.join(coord)
        await user.join(annonces)
    bot_runner.members = [(claire.user_id, "bge-fc", "coordinator"), (karim.user_id, "bge-fc", "advisor"),
                          (marc.user_id, "urscop", "advisor")]
    bot_runner.rooms = {"coordination": coord, "announcements": [annonces]}
    bot_runner.matrix_overrides = {"broadcast_interval_ms": 50}
    await bot_runner.start(clock=Clock(PARIS, frozen_at=NOW))
    for room in (coord, annonces):
        await claire.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"),
                              timeout=30)
    return Network(bot_runner, claire, karim, marc, coord, annonces)


async def announcement_and_ics(user, room, bot_id):
    text = await user.wait_for(room, lambda e: e["sender"] == bot_id and e["type"] == "m.room.message" and
                               e["content"].get("msgtype") == "m.text" and
                               "la date est fixée" in e["content"].get("body", ""), timeout=30)
    file = await user.wait_for(room, match(sender=bot_id, type="m.room.message", msgtype="m.file"), timeout=30)
    assert file["content"]["info"]["mimetype"] == "text/calendar"
    cal = Calendar.from_ical(await user.download(file["content"]["url"]))
    (event,) = cal.walk("VEVENT")
    return text["content"], cal, event


async def test_poll_by_reactions_state_and_close(network):
    n = network
    options, poll_id = await n.propose()
    # Karim: yes to 1, if needed to 2. Marc: yes to 1, then changes to no. Claire: yes to 3, then removes it.
    await n.karim.react(n.coord, options[1], "✅")
    await n.karim.react(n.coord, options[2], "🤔")
    await n.marc.react(n.coord, options[1], "✅")
    await n.marc.react(n.coord, options[1], "❌")
    claire_yes = await n.claire.react(n.coord, options[3], "✅")
    await n.claire.react(n.coord, options[2], "✅")
    await n.claire.redact(n.coord, claire_yes)
    text = await n.command(n.marc, "!reunion etat")
    lines = text.splitlines()
    assert lines[0].startswith("📊 Sondage n°1 — Rencontre du réseau — réponses jusqu'au vendredi 20 février 2026")
    k, m, c = (u.user_id.split(":")[0][1:] for u in (n.karim, n.marc, n.claire))
    assert lines[1] == f"1. mardi 10 mars 2026 à 14 h — ✅ 1 ({k}) · 🤔 0 · ❌ 1 ({m}) · sans réponse : 1 ({c})"
    assert lines[2] == f"2. jeudi 12 mars 2026 à 14 h — ✅ 1 ({c}) · 🤔 1 ({k}) · ❌ 0 · sans réponse : 1 ({m})"
    assert lines[3].startswith("3. mercredi 18 mars 2026 à 9 h 30 — ✅ 0 · 🤔 0 · ❌ 0 · sans réponse : 3")
    assert "Tout le monde a répondu" in text
    assert "Meilleure date pour l'instant : n°2, jeudi 12 mars 2026 à 14 h (1 oui, 1 si besoin, 0 non)" in text

    # an advisor may not close; the coordinator closes in the coordination room
    assert "réservé aux coordinateur" in await n.command(n.karim, "!reunion clore")
    await n.claire.send_text(n.coord, "!reunion clore")
    end = await n.karim.wait_for(n.coord, match(sender=n.bot_id, type=POLL_END), timeout=30)
    assert end["content"]["m.relates_to"] == {"rel_type": "m.reference", "event_id": poll_id}
    for user, room in ((n.karim, n.coord), (n.marc, n.annonces)):
        content, cal, event = await announcement_and_ics(user, room, n.bot_id)
        assert "jeudi 12 mars 2026 à 14 h (3 h), Besançon" in content["body"]
        assert sorted(content["m.mentions"]["user_ids"]) == sorted(u.user_id for u in (n.claire, n.karim, n.marc))
        assert "https://matrix.to/#/" + n.karim.user_id in content["formatted_body"]
        assert str(cal["method"]) == "PUBLISH" and str(event["uid"]) == "meeting-1@ess-bot"
        assert event.decoded("dtstart") == datetime(2026, 3, 12, 14, 0, tzinfo=PARIS)
        assert event["dtstart"].params["TZID"] == "Europe/Paris" and cal.walk("VTIMEZONE")
        assert str(event["location"]) == "Besançon" and int(event["sequence"]) == 0

    # after the close, reactions no longer count
    await n.marc.react(n.coord, options[3], "✅")
    assert "clos ; date retenue : n°2" in await n.command(n.marc, "!reunion etat 1")
    text = await n.command(n.karim, "!reunion prochaine", room=n.annonces)
    assert "n'est pas disponible dans un salon d'annonces" in text   # announcement rooms take no commands
    text = await n.command(n.karim, "!reunion prochaine")
    assert text.startswith("📅 Prochaine rencontre du réseau : jeudi 12 mars 2026 à 14 h, Besançon — dans 38 jours.")


async def test_reminder_deadline_close_and_restart(network):
    n = network
    options, _ = await n.propose()
    await n.karim.react(n.coord, options[2], "✅")
    assert "✅ 1" in (await n.command(n.karim, "!reunion etat")).splitlines()[2]
    await n.runner.stop()
    # while the bot is down, Marc answers
    await n.marc.react(n.coord, options[1], "❌")
    await n.marc.react(n.coord, options[3], "🤔")
    bot = await n.runner.start(clock=Clock(PARIS, frozen_at=NOW))
    text = await n.command(n.marc, "!reunion etat")
    assert "Pas encore répondu : " + n.claire.user_id.split(":")[0][1:] + "." in text   # nothing lost

    # two days before the deadline: the members without an answer are reminded
    bot.app.clock.set(datetime(2026, 2, 18, 9, 0, tzinfo=PARIS))
    await bot.app.scheduler.run_due()
    reminder = await n.karim.wait_for(n.coord, lambda e: e["sender"] == n.bot_id and
                                      body_starts("⏳ Sondage n°1")(e), timeout=30)
    assert reminder["content"]["msgtype"] == "m.text"
    assert reminder["content"]["m.mentions"] == {"user_ids": [n.claire.user_id]}
    assert "plus que 2 jours pour répondre" in reminder["content"]["body"]

    # at the deadline the poll closes by itself: the best date (fewest no) is announced in both rooms
    bot.app.clock.set(datetime(2026, 2, 20, 18, 0, tzinfo=PARIS))
    await bot.app.scheduler.run_due()
    await n.karim.wait_for(n.coord, match(sender=n.bot_id, type=POLL_END), timeout=30)
    for user, room in ((n.karim, n.coord), (n.marc, n.annonces)):
        content, _, event = await announcement_and_ics(user, room, n.bot_id)
        assert "Sondage clos à la date limite" in content["body"]
        assert event.decoded("dtstart").astimezone(timezone.utc) == datetime(2026, 3, 12, 13, 0, tzinfo=timezone.utc)

    # J-1 reminder, after another restart with the clock past its time: sent late, saying so
    await n.runner.stop()
    bot = await n.runner.start(clock=Clock(PARIS, frozen_at=datetime(2026, 3, 11, 11, 0, tzinfo=PARIS)))
    late = await n.karim.wait_for(n.coord, lambda e: e["sender"] == n.bot_id and body_starts("⏰ Rappel")(e),
                                  timeout=30)
    assert "demain" in late["content"]["body"] and "envoyé en retard" in late["content"]["body"]


async def test_native_poll_answers_and_text_answers_count(network):
    n = network
    options, poll_id = await n.propose()
    # unstable response type, then the stable one (m.selections)
    await n.karim.send_event(n.coord, "org.matrix.msc3381.poll.response", {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id},
        "org.matrix.msc3381.poll.response": {"answers": ["3"]}})
    await n.marc.send_event(n.coord, "m.poll.response", {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id}, "m.selections": ["3"]})
    text = await n.command(n.claire, "!reunion dispo 1=non 2=si besoin 3=oui")
    assert "C'est noté" in text
    text = await n.command(n.claire, "!reunion etat")
    lines = text.splitlines()
    assert lines[3].startswith("3. mercredi 18 mars 2026 à 9 h 30 — ✅ 3 (")
    assert lines[1].startswith("1. mardi 10 mars 2026 à 14 h — ✅ 0 · 🤔 0 · ❌ 1 (")
    # Karim changes his native answer: the latest one counts
    await n.karim.send_event(n.coord, "org.matrix.msc3381.poll.response", {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id},
        "org.matrix.msc3381.poll.response": {"answers": ["2"]}})
    lines = (await n.command(n.claire, "!reunion etat")).splitlines()
    assert lines[3].startswith("3. mercredi 18 mars 2026 à 9 h 30 — ✅ 2 (")
    assert lines[2].startswith("2. jeudi 12 mars 2026 à 14 h — ✅ 1 (")

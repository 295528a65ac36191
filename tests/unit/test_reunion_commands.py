"""!reunion end to end through the dispatcher: real SQLite database, frozen clock, drained outbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from icalendar import Calendar
from sqlalchemy import select

from ess_bot.storage.models import OutboxMessage, ScheduledJob
from tests.support import PARIS, Harness, started_harness

COORD, ANNONCES, BGE, URSCOP = "!coord:test", "!annonces:test", "!bge:test", "!urscop:test"
CLAIRE, KARIM, MARC, ADMIN = "@claire:test", "@karim:test", "@marc:test", "@admin:test"
VOTERS = [CLAIRE, KARIM, MARC]                        # advisors and coordinators: the admin is a technical account
NOW = datetime(2026, 2, 2, 10, 0, tzinfo=PARIS)      # a Monday, out of school holidays
EXPLICIT = '!reunion proposer "Rencontre du réseau" 10/03 14h, 12/03 14h, 18/03 9h30 limite=20/02'


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, NOW) as harness:
        yield harness


def texts(outs, kind=None, room=None) -> list[str]:
    return [o.body for o in outs if (kind is None or o.kind == kind) and (room is None or o.room_id == room)]


def reply(outs) -> str:
    notices = texts(outs, "notice")
    assert len(notices) == 1, [o.body for o in outs]
    return notices[0]


async def event_id(h: Harness, tag: str) -> str:
    async with h.app.db.sessions() as s:
        return await s.scalar(select(OutboxMessage.event_id).where(OutboxMessage.tag == tag))


async def jobs(h: Harness, status: str | None = "pending") -> dict[str, ScheduledJob]:
    async with h.app.db.sessions() as s:
        q = select(ScheduledJob).order_by(ScheduledJob.id)
        if status:
            q = q.where(ScheduledJob.status == status)
        return {j.key: j for j in (await s.scalars(q)).all()}


async def propose(h: Harness, command: str = EXPLICIT) -> list:
    return await h.say(command, sender=CLAIRE, room=COORD)


async def react(h: Harness, sender: str, tag: str, key: str) -> str:
    eid = f"$react-{sender[1:4]}-{tag.rsplit(':', 1)[-1]}-{h._n}"
    await h.event(event_id=eid, kind="reaction", room_id=COORD, sender=sender, relates_to=await event_id(h, tag),
                  key=key)
    return eid


def ics_event(data: bytes):
    cal = Calendar.from_ical(data)
    (ev,) = cal.walk("VEVENT")
    return cal, ev


# -- proposing ------------------------------------------------------------------------------------------------

async def test_proposal_posts_a_poll_with_reactions_and_a_native_poll(h):
    outs = await propose(h, '!reunion proposer "Rencontre du réseau"')
    intro = outs[0]
    assert intro.kind == "text" and intro.room_id == COORD and intro.tag == "meeting:1:intro"
    assert sorted(intro.mentions) == sorted(VOTERS) and "admin" not in intro.body
    assert "https://matrix.to/#/@karim:test" in intro.html and "✅ oui · 🤔 si besoin · ❌ non" in intro.body
    options = [o for o in outs if o.tag and ":option:" in o.tag]
    assert [o.tag for o in options] == [f"meeting:1:option:{n}" for n in (1, 2, 3, 4)]
    assert all(o.kind == "text" and o.mentions == [] for o in options)
    assert "hors vacances" in options[0].body
    reactions = [o for o in outs if o.kind == "reaction"]
    assert len(reactions) == 12 and [r.key for r in reactions[:3]] == ["✅", "🤔", "❌"]
    first_option_id = await event_id(h, "meeting:1:option:1")
    assert {r.reacts_to for r in reactions[:3]} == {first_option_id}   # tag resolved at send time
    (poll,) = [o for o in outs if o.kind == "poll"]
    start = poll.extra["org.matrix.msc3381.poll.start"]
    assert poll.event_type == "org.matrix.msc3381.poll.start" and poll.tag == "meeting:1:poll"
    assert start["kind"] == "org.matrix.msc3381.poll.disclosed" and start["max_selections"] == 1
    assert [a["id"] for a in start["answers"]] == ["1", "2", "3", "4"]
    assert start["question"]["org.matrix.msc1767.text"].startswith("Quelle date vous convient le mieux ?")
    assert poll.extra["org.matrix.msc1767.text"].startswith("Quelle date vous convient le mieux ?\n1. ")
    text = reply(outs)
    assert text.startswith("✅ Sondage n°1 ouvert ci-dessous : 4 dates, réponses jusqu'au lundi 16 février 2026 à 18 h")
    assert "Dates choisies entre le" in text
    pending = await jobs(h)
    assert pending["meeting:1:poll:close"].run_at == datetime(2026, 2, 16, 17, 0, tzinfo=timezone.utc)
    assert pending["meeting:1:poll:reminder"].run_at == datetime(2026, 2, 13, 8, 0, tzinfo=timezone.utc)  # a Friday
    # automatic dates: weekdays, at least a week after the close, out of the winter break (7–22 Feb)
    async with h.app.db.sessions() as s:
        view = await h.app.services.meetings.get(s, 1)
    for o in view.options:
        assert o.starts_at.date() >= datetime(2026, 2, 23).date() and o.starts_at.weekday() < 5


async def test_explicit_dates_are_accepted_with_warnings(h):
    outs = await propose(h, '!reunion proposer "Rencontre d\'été" 14/07 9h30, 15/05, jeudi 12 mars à 14h n=1'
                         .replace(" n=1", ""))
    text = reply(outs)
    assert "⚠️ Attention" in text and "jour férié (Fête nationale)" in text and "pont (lendemain de : Ascension)" in text
    options = [o.body for o in outs if o.tag and ":option:" in o.tag]
    assert options[0].startswith("1. jeudi 12 mars 2026 à 14 h") and "⚠️" not in options[0]
    assert options[1].startswith("2. vendredi 15 mai 2026 à 9 h 30 — ⚠️ pont")
    assert options[2].startswith("3. mardi 14 juillet 2026 à 9 h 30 — ⚠️ jour férié (Fête nationale)")


@pytest.mark.parametrize("command, sender, room, expected", [
    (EXPLICIT, KARIM, COORD, "réservé aux coordinateur"),
    (EXPLICIT, CLAIRE, BGE, "salon de coordination"),
    ('!reunion proposer "R" 31/02 14h', CLAIRE, COORD, "La date « 31/02 » n'existe pas"),
    ('!reunion proposer "R" 12/03 25h', CLAIRE, COORD, "L'heure « 25h » n'existe pas"),
    ('!reunion proposer "R" foo=3', CLAIRE, COORD, "Option inconnue : « foo= »"),
    ('!reunion proposer "R" n=40', CLAIRE, COORD, "« 40 » doit être un nombre de 1 à 10"),
    ('!reunion proposer "R" durée=beaucoup', CLAIRE, COORD, "Durée illisible : « beaucoup »"),
    ('!reunion proposer "R" entre 1/03 et 15/04 12/03 14h', CLAIRE, COORD, "soit des dates précises, soit une fenêtre"),
    ("!reunion proposer Rencontre du réseau 12/03", CLAIRE, COORD,
     "Je n'ai pas compris « du réseau ». Si c'est le titre, mettez-le entre guillemets"),
    ('!reunion proposer "R" entre 1/03', CLAIRE, COORD, "Fenêtre incomplète après « entre »"),
    ('!reunion proposer "R" jeudi 10/03 14h', CLAIRE, COORD, "est un mardi, pas un jeudi (« jeudi 10/03 »)"),
    ('!reunion proposer "R" 12/03 14h limite=20/03', CLAIRE, COORD,
     "La date limite des réponses (vendredi 20 mars 2026 à 18 h) doit précéder la première date proposée"),
    ('!reunion proposer "R" 03/02 14h', CLAIRE, COORD,
     "La première date (mardi 3 février 2026 à 14 h) est trop proche pour laisser le temps de répondre"),
    ('!reunion proposer "R" entre 1/02 et 4/02', CLAIRE, COORD,
     "La fenêtre se termine le mercredi 4 février 2026 : c'est trop tôt pour laisser le temps de répondre"),
    ('!reunion proposer "R" entre 3/03 et 4/03 limite=10/03', CLAIRE, COORD,
     "La fenêtre se termine le mercredi 4 mars 2026 : c'est trop tôt"),
])
async def test_proposal_refusals_are_french_and_name_the_value(h, command, sender, room, expected):
    text = reply(await h.say(command, sender=sender, room=room))
    assert expected in text
    if "réservé" not in text and "salon" not in text:
        assert text.count("Exemple") == 1, text          # exactly one example, never two
    assert await jobs(h) == {}


async def test_window_proposal_stays_in_the_window(h):
    outs = await propose(h, '!reunion proposer "Printemps" entre le 1er mars et le 15 avril n=3 durée=2h '
                            'lieu="Maison de l\'ESS, Dijon" limite=20/02')
    async with h.app.db.sessions() as s:
        view = await h.app.services.meetings.get(s, 1)
    assert len(view.options) == 3 and view.duration_minutes == 120 and view.location == "Maison de l'ESS, Dijon"
    assert all(datetime(2026, 3, 1, tzinfo=PARIS) <= o.starts_at <= datetime(2026, 4, 16, tzinfo=PARIS)
               for o in view.options)
    assert view.deadline == datetime(2026, 2, 20, 18, 0, tzinfo=PARIS)
    assert "Dates choisies entre le dimanche 1er mars 2026 et le mercredi 15 avril 2026" in reply(outs)


# -- answering -----------------------------------------------------------------------------------------------

async def test_reactions_vote_change_and_redaction_unvotes(h):
    await propose(h)
    await react(h, KARIM, "meeting:1:option:1", "✅")
    await react(h, KARIM, "meeting:1:option:2", "🤔")
    await react(h, MARC, "meeting:1:option:1", "✅")
    await react(h, MARC, "meeting:1:option:1", "❌")            # changes his mind: the latest wins
    claire = await react(h, CLAIRE, "meeting:1:option:3", "✅️")  # with a variation selector
    await h.event(kind="redaction", room_id=COORD, sender=CLAIRE, relates_to=claire)   # removes it
    await react(h, CLAIRE, "meeting:1:option:2", "👀")           # not an answer: ignored
    await react(h, "@stranger:test", "meeting:1:option:2", "✅")  # not a member: ignored
    await h.event(kind="reaction", room_id=COORD, sender=KARIM, relates_to="$elsewhere", key="✅")  # not a poll
    text = reply(await h.say("!reunion etat", sender=KARIM, room=BGE))
    lines = text.splitlines()
    assert lines[0] == "📊 Sondage n°1 — Rencontre du réseau — réponses jusqu'au vendredi 20 février 2026 à 18 h"
    assert lines[1] == ("1. mardi 10 mars 2026 à 14 h — ✅ 1 (Karim) · 🤔 0 · ❌ 1 (Marc) · "
                        "sans réponse : 1 (Claire)")
    assert lines[2].startswith("2. jeudi 12 mars 2026 à 14 h — ✅ 0 · 🤔 1 (Karim) · ❌ 0 · sans réponse : 2")
    assert lines[3].startswith("3. mercredi 18 mars 2026 à 9 h 30 — ✅ 0 · 🤔 0 · ❌ 0 · sans réponse : 3")
    assert "Pas encore répondu : Claire." in text and "admin" not in text
    assert "Meilleure date pour l'instant : n°2, jeudi 12 mars 2026 à 14 h (0 oui, 1 si besoin, 0 non)" in text


@pytest.mark.parametrize("command, expected", [
    ("!reunion dispo 1=oui 2=sibesoin 3=non", {1: "oui", 2: "sibesoin", 3: "non"}),
    ("!reunion dispo 1 1=o 2=peut-être 3=n", {1: "oui", 2: "sibesoin", 3: "non"}),
    ("!reunion dispo 2 si besoin", {2: "sibesoin"}),
    ("!reunion dispo 1 2 oui 3 non", {2: "oui", 3: "non"}),
    ("!reunion dispo 1,3=oui", {1: "oui", 3: "oui"}),
    ("!reunion dispo tout=non 2=Oui", {1: "non", 2: "oui", 3: "non"}),
    ('!reunion dispo 1="si besoin"', {1: "sibesoin"}),
])
async def test_text_answers(h, command, expected):
    await propose(h)
    text = reply(await h.say(command, sender=MARC, room=URSCOP))
    assert text.startswith("✅ C'est noté, Marc — sondage n°1 « Rencontre du réseau »")
    async with h.app.db.sessions() as s:
        assert await h.app.services.meetings.answers_of(s, 1, MARC) == expected


@pytest.mark.parametrize("command, expected", [
    ("!reunion dispo 5=oui", "n'a pas de date n°5"),
    ("!reunion dispo 1=bof2", "Réponse inconnue : « bof2 »"),
    ("!reunion dispo 2", "j'attendais oui, si besoin ou non"),
    ("!reunion dispo oui", "J'attendais un numéro de date à la place de « oui »"),
    ("!reunion dispo 9 1=oui", "Je ne trouve pas de rencontre n°9"),
])
async def test_text_answer_errors(h, command, expected):
    await propose(h)
    text = reply(await h.say(command, sender=MARC, room=URSCOP))
    assert expected in text and "Exemple" in text


async def test_text_answers_need_a_number_when_several_polls_are_open(h):
    text = reply(await h.say("!reunion dispo 1=oui", sender=MARC))
    assert "Aucun sondage de date n'est ouvert" in text
    await propose(h)
    await propose(h)
    text = reply(await h.say("!reunion dispo 1=oui", sender=MARC))
    assert "Plusieurs sondages sont ouverts (n°1, n°2)" in text and "!reunion dispo 2 1=oui" in text
    text = reply(await h.say("!reunion dispo", sender=MARC))
    assert "Plusieurs sondages" in text
    text = reply(await h.say("!reunion dispo 2 1=oui", sender=MARC))
    assert "sondage n°2" in text
    text = reply(await h.say("!reunion dispo 2", sender=MARC))   # "2" alone: the poll number is missing an answer
    assert "j'attendais oui" in text


async def test_native_poll_answers_count_unless_answered_explicitly(h):
    await propose(h)
    poll_id = await event_id(h, "meeting:1:poll")
    await h.event(kind="poll_response", room_id=COORD, sender=KARIM, relates_to=poll_id, answers=("2",))
    await h.event(kind="poll_response", room_id=COORD, sender=MARC, relates_to=poll_id, answers=("1",))
    await h.event(kind="poll_response", room_id=COORD, sender=MARC, relates_to=poll_id, answers=("3",))  # latest wins
    await h.event(kind="poll_response", room_id=COORD, sender=CLAIRE, relates_to=poll_id, answers=("1",))
    await h.event(kind="poll_response", room_id=COORD, sender=CLAIRE, relates_to=poll_id, answers=())   # un-votes
    await react(h, KARIM, "meeting:1:option:2", "❌")          # explicit answer wins over the native one
    async with h.app.db.sessions() as s:
        t = await h.app.services.meetings.tally(s, 1)
    assert [o.counts for o in t.options] == [(0, 0, 0), (0, 0, 1), (1, 0, 0)]
    assert t.not_answered == (CLAIRE,)
    await h.say("!reunion clore", sender=CLAIRE, room=COORD)
    await h.event(kind="poll_response", room_id=COORD, sender=ADMIN, relates_to=poll_id, answers=("1",))  # after end
    async with h.app.db.sessions() as s:
        assert await h.app.services.meetings.answers_of(s, 1, ADMIN) == {}


# -- closing and after -------------------------------------------------------------------------------------

async def test_close_announces_in_both_rooms_with_ics_and_plans_reminders(h):
    await propose(h)
    await h.say("!reunion dispo 1=non 2=oui 3=oui", sender=KARIM)
    await h.say("!reunion dispo 1=oui 2=oui 3=sibesoin", sender=MARC)
    outs = await h.say("!reunion clore", sender=CLAIRE, room=COORD)
    (end,) = [o for o in outs if o.kind == "poll_end"]
    assert end.event_type == "org.matrix.msc3381.poll.end" and end.room_id == COORD
    assert end.extra["m.relates_to"] == {"rel_type": "m.reference", "event_id": await event_id(h, "meeting:1:poll")}
    assert "org.matrix.msc3381.poll.end" in end.extra
    announcements = [o for o in outs if o.kind == "text"]
    assert [o.room_id for o in announcements] == [COORD, ANNONCES]
    body = announcements[0].body
    assert body.startswith("📅 Rencontre du réseau : la date est fixée !\njeudi 12 mars 2026 à 14 h (3 h), Besançon.")
    assert "Date choisie par Claire ; réponses pour cette date : 2 oui, 0 si besoin, 0 non." in body
    assert "Rappels prévus : J-7 et J-1." in body
    assert sorted(announcements[1].mentions) == sorted(VOTERS)
    files = [o for o in outs if o.kind == "file"]
    assert [f.room_id for f in files] == [COORD, ANNONCES] and files[0].mimetype == "text/calendar"
    cal, ev = ics_event(files[1].data)
    assert str(cal["method"]) == "PUBLISH" and str(ev["uid"]) == "meeting-1@ess-bot"
    assert ev.decoded("dtstart") == datetime(2026, 3, 12, 14, 0, tzinfo=PARIS) and str(ev["location"]) == "Besançon"
    pending = await jobs(h)
    assert set(pending) == {"meeting:1:reminder:7:s0", "meeting:1:reminder:1:s0"}
    assert pending["meeting:1:reminder:1:s0"].run_at == datetime(2026, 3, 11, 8, 0, tzinfo=timezone.utc)
    assert (await jobs(h, "cancelled")).keys() == {"meeting:1:poll:close", "meeting:1:poll:reminder"}
    assert "clos ; date retenue : n°2" in reply(await h.say("!reunion etat 1", sender=MARC))
    text = reply(await h.say("!reunion dispo 1 1=oui", sender=MARC))
    assert "Le sondage n°1 « Rencontre du réseau » est déjà clos : date retenue n°2, jeudi 12 mars 2026 à 14 h" in text


async def test_close_with_a_chosen_date_and_refusals(h):
    await propose(h)
    assert "réservé aux coordinateur" in reply(await h.say("!reunion clore", sender=KARIM, room=COORD))
    assert "salon de coordination" in reply(await h.say("!reunion clore", sender=CLAIRE, room=BGE))
    assert "n'a pas de date n°7" in reply(await h.say("!reunion clore 1 date=7", sender=CLAIRE, room=COORD))
    outs = await h.say("!reunion clore 1 date=3", sender=CLAIRE, room=COORD)
    assert "mercredi 18 mars 2026 à 9 h 30" in texts(outs, "text")[0]


async def test_deadline_reminder_to_non_voters_then_automatic_close(h):
    await propose(h)
    await react(h, KARIM, "meeting:1:option:2", "✅")
    await h.say("!reunion dispo 1=non", sender=MARC)
    h.clock.set(datetime(2026, 2, 18, 9, 0, tzinfo=PARIS))       # two days before the deadline
    await h.app.scheduler.run_due()
    outs = await h.flush()
    (reminder,) = outs
    assert reminder.kind == "text" and reminder.room_id == COORD
    assert reminder.mentions == [CLAIRE]
    assert reminder.body.startswith("⏳ Sondage n°1 — Rencontre du réseau : plus que 2 jours pour répondre")
    assert "Claire (https://matrix.to/#/@claire:test)" in reminder.body and "Karim" not in reminder.body
    assert "admin" not in reminder.body
    h.clock.set(datetime(2026, 2, 20, 18, 0, tzinfo=PARIS))
    await h.app.scheduler.run_due()
    outs = await h.flush()
    assert [o.kind for o in outs] == ["poll_end", "text", "file", "text", "file"]
    assert "Sondage clos à la date limite ; réponses pour cette date : 1 oui, 0 si besoin, 0 non." in outs[1].body
    assert "jeudi 12 mars 2026 à 14 h" in outs[1].body
    done = await jobs(h, None)
    assert done["meeting:1:poll:close"].status == "done" and done["meeting:1:poll:reminder"].status == "done"


async def test_nobody_to_remind_skips_the_reminder(h):
    await propose(h)
    for who in VOTERS:
        await h.say("!reunion dispo 1=oui", sender=who)
    h.clock.set(datetime(2026, 2, 18, 9, 0, tzinfo=PARIS))
    await h.app.scheduler.run_due()
    assert await h.flush() == []
    assert (await jobs(h, "skipped"))["meeting:1:poll:reminder"].note == "everybody answered"


async def test_restart_between_proposal_and_deadline_loses_nothing(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    first = await Harness(url, NOW).start()
    try:
        await propose(first)
        await react(first, KARIM, "meeting:1:option:3", "✅")
    finally:
        await first.close()
    # the bot was down during the deadline: it closes the poll at start, saying it is late
    second = Harness(url, datetime(2026, 2, 21, 8, 0, tzinfo=PARIS))
    second._n = 100
    await second.start()
    try:
        outs = await second.flush()
        texts_ = [o.body for o in outs if o.kind == "text"]
        assert texts_[0].startswith("⏳ Sondage n°1") is False  # the poll reminder is skipped: deadline passed
        assert any("Sondage clos à la date limite (avec retard : le bot était indisponible)" in t for t in texts_)
        assert any("mercredi 18 mars 2026 à 9 h 30" in t for t in texts_)
        done = await jobs(second, None)
        assert done["meeting:1:poll:reminder"].status == "skipped"
        assert done["meeting:1:poll:close"].status == "late"
    finally:
        await second.close()


async def test_votes_after_a_restart_still_map_to_the_poll(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    first = await Harness(url, NOW).start()
    await propose(first)
    await first.close()
    second = await Harness(url, NOW + timedelta(days=1)).start()
    second._n = 100
    try:
        await react(second, MARC, "meeting:1:option:1", "❌")
        poll_id = await event_id(second, "meeting:1:poll")
        await second.event(kind="poll_response", room_id=COORD, sender=KARIM, relates_to=poll_id, answers=("2",))
        async with second.app.db.sessions() as s:
            t = await second.app.services.meetings.tally(s, 1)
        assert [o.counts for o in t.options] == [(0, 0, 1), (1, 0, 0), (0, 0, 0)]
    finally:
        await second.close()


async def test_meeting_reminders_late_or_skipped(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    first = await Harness(url, NOW).start()
    await propose(first)
    await first.say("!reunion clore 1 date=2", sender=CLAIRE, room=COORD)   # Thursday 12 March, 14 h
    await first.close()
    # down from before J-7 until after J-1's time: only the latest one is sent, late, saying so
    second = await Harness(url, datetime(2026, 3, 11, 15, 0, tzinfo=PARIS)).start()
    second._n = 100
    try:
        (out,) = await second.flush()
        assert out.room_id == COORD and out.kind == "text" and sorted(out.mentions) == sorted(VOTERS)
        assert out.body.startswith("⏰ Rappel : Rencontre du réseau demain, jeudi 12 mars 2026 à 14 h (3 h), Besançon.")
        assert "Rappel prévu le mercredi 11 mars 2026 à 9 h, envoyé en retard : le bot était indisponible" in out.body
        done = await jobs(second, None)
        assert done["meeting:1:reminder:7:s0"].status == "skipped"
        assert done["meeting:1:reminder:7:s0"].note == "a later reminder is due as well"
        assert done["meeting:1:reminder:1:s0"].status == "late"
    finally:
        await second.close()

    third = await Harness(url, NOW).start()   # another run: moved, then the bot is down past the meeting
    third._n = 200                            # fresh event ids (the first run's were handled already)
    try:
        await third.say("!reunion deplacer 1 19/03", sender=CLAIRE, room=COORD)
        third.clock.set(datetime(2026, 3, 20, 9, 0, tzinfo=PARIS))
        await third.app.scheduler.run_due()
        assert await third.flush() == []
        skipped = {k: j for k, j in (await jobs(third, "skipped")).items() if k.endswith(":s1")}
        assert set(skipped) == {"meeting:1:reminder:7:s1", "meeting:1:reminder:1:s1"}
        assert all(j.note == "the meeting has already begun" for j in skipped.values())
    finally:
        await third.close()


async def test_a_single_missed_reminder_is_sent_late(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    first = await Harness(url, NOW).start()
    await propose(first)
    await first.say("!reunion clore 1 date=2", sender=CLAIRE, room=COORD)   # Thursday 12 March, 14 h
    await first.close()
    second = await Harness(url, datetime(2026, 3, 6, 8, 30, tzinfo=PARIS)).start()   # J-7 was yesterday 9 h
    try:
        (out,) = await second.flush()
        assert out.body.startswith("⏰ Rappel : Rencontre du réseau dans 6 jours, jeudi 12 mars 2026 à 14 h")
        assert "Rappel prévu le jeudi 5 mars 2026 à 9 h, envoyé en retard" in out.body
        second.clock.set(datetime(2026, 3, 11, 9, 0, tzinfo=PARIS))                  # J-1, on time
        await second.app.scheduler.run_due()
        (out,) = await second.flush()
        assert out.body.startswith("⏰ Rappel : Rencontre du réseau demain") and "retard" not in out.body
    finally:
        await second.close()


async def test_reminders_across_dst(h):
    await propose(h, '!reunion proposer "Printemps" 31/03 14h, 30/03 14h limite=20/02')
    outs = await h.say("!reunion clore 1 date=2", sender=CLAIRE, room=COORD)   # Tuesday 31 March, after the change
    assert "mardi 31 mars 2026 à 14 h" in outs[1].body
    pending = await jobs(h)
    assert pending["meeting:1:reminder:1:s0"].run_at == datetime(2026, 3, 30, 7, 0, tzinfo=timezone.utc)  # 9 h CEST
    assert pending["meeting:1:reminder:7:s0"].run_at == datetime(2026, 3, 24, 8, 0, tzinfo=timezone.utc)  # 9 h CET
    ev = ics_event([o for o in outs if o.kind == "file"][0].data)[1]
    assert ev.decoded("dtstart").astimezone(timezone.utc) == datetime(2026, 3, 31, 12, 0, tzinfo=timezone.utc)


async def test_move_and_cancel(h):
    await propose(h)
    assert "n'a pas encore de date" in reply(await h.say("!reunion deplacer 1 19/03", sender=CLAIRE, room=COORD))
    await h.say("!reunion clore 1 date=2", sender=CLAIRE, room=COORD)
    outs = await h.say("!reunion deplacer 1 14/07 9h30", sender=CLAIRE, room=COORD)
    moved = [o for o in outs if o.kind == "text"]
    assert [o.room_id for o in moved] == [COORD, ANNONCES]
    assert moved[0].body.startswith("🔁 Rencontre du réseau change de date : elle aura lieu le mardi 14 juillet 2026 "
                                    "à 9 h 30 (3 h), Besançon, au lieu du jeudi 12 mars 2026 à 14 h.")
    assert "<strong>mardi 14 juillet 2026 à 9 h 30</strong>" in moved[1].html
    assert "⚠️ jour férié (Fête nationale)" in reply(outs)          # warned, but done
    ev = ics_event([o for o in outs if o.kind == "file"][0].data)[1]
    assert int(ev["sequence"]) == 1 and str(ev["uid"]) == "meeting-1@ess-bot"
    assert set(await jobs(h)) == {"meeting:1:reminder:7:s1", "meeting:1:reminder:1:s1"}
    assert set(await jobs(h, "cancelled")) >= {"meeting:1:reminder:7:s0", "meeting:1:reminder:1:s0"}
    outs = await h.say("!reunion deplacer 1 jeudi 12 mars", sender=CLAIRE, room=COORD)    # keeps 9 h 30
    assert "elle aura lieu le jeudi 12 mars 2026 à 9 h 30" in texts(outs, "text")[0]
    assert set(await jobs(h)) == {"meeting:1:reminder:7:s2", "meeting:1:reminder:1:s2"}
    outs = await h.say('!reunion annuler 1 "grève des transports"', sender=CLAIRE, room=COORD)
    cancelled = [o for o in outs if o.kind == "text"]
    assert [o.room_id for o in cancelled] == [COORD, ANNONCES]
    assert cancelled[0].body.startswith("❌ Rencontre du réseau du jeudi 12 mars 2026 à 9 h 30, Besançon est annulée.")
    assert "Raison : grève des transports" in cancelled[0].body
    ev = ics_event([o for o in outs if o.kind == "file"][0].data)[1]
    assert str(ev["status"]) == "CANCELLED" and int(ev["sequence"]) == 3
    assert await jobs(h) == {}
    assert "déjà annulée" in reply(await h.say("!reunion annuler 1", sender=CLAIRE, room=COORD))
    assert "annulée" in reply(await h.say("!reunion deplacer 1 19/03", sender=CLAIRE, room=COORD))
    text = reply(await h.say("!reunion annuler demain", sender=CLAIRE, room=COORD))
    assert "Numéro de rencontre attendu" in text and "(reçu : « demain »)" in text and "!reunion annuler 3" in text


async def test_cancelling_an_open_poll_ends_it(h):
    await propose(h)
    outs = await h.say("!reunion annuler 1", sender=CLAIRE, room=COORD)
    assert [o.kind for o in outs] == ["poll_end", "text"]
    assert outs[1].body.startswith("❌ Le sondage n°1 « Rencontre du réseau » est annulé par Claire")
    assert await jobs(h) == {}
    await react(h, KARIM, "meeting:1:option:1", "✅")   # ignored: the poll is closed
    async with h.app.db.sessions() as s:
        assert await h.app.services.meetings.answers_of(s, 1, KARIM) == {}


# -- reading ------------------------------------------------------------------------------------------------

async def test_prochaine_and_liste(h):
    text = reply(await h.say("!reunion prochaine", sender=MARC, room=URSCOP))
    assert "Aucune rencontre du réseau n'est prévue" in text and "(Claire)" in text and "!reunion proposer" in text
    assert "Aucune rencontre ni sondage" in reply(await h.say("!reunion liste", sender=MARC))
    await propose(h)
    text = reply(await h.say("!reunion prochaine", sender=MARC, room=URSCOP))
    assert text.startswith("Aucune date n'est encore fixée.\nSondage n°1 « Rencontre du réseau » en cours : "
                           "réponses jusqu'au vendredi 20 février 2026 à 18 h")
    await h.say("!reunion clore 1 date=2", sender=CLAIRE, room=COORD)
    outs = await h.say("!reunion prochaine", sender=MARC, room="!direct:test", is_direct=True)
    assert texts(outs, "notice")[0].startswith(
        "📅 Prochaine rencontre du réseau : jeudi 12 mars 2026 à 14 h, Besançon — dans 38 jours.")
    (ics,) = [o for o in outs if o.kind == "file"]
    assert ics.filename == "rencontre-reseau-1.ics" and str(ics_event(ics.data)[1]["uid"]) == "meeting-1@ess-bot"
    await propose(h)
    text = reply(await h.say("!reunion liste", sender=KARIM, room=BGE))
    assert text.splitlines() == [
        "Rencontres du réseau",
        "- n°2 — Rencontre du réseau — sondage ouvert (3 dates, réponses jusqu'au vendredi 20 février 2026 à 18 h)",
        "- n°1 — Rencontre du réseau — jeudi 12 mars 2026 à 14 h, Besançon"]


async def test_help_and_unknown_action(h):
    text = reply(await h.say("!aide reunion", sender=KARIM))
    assert "compte comme un « oui » pour la date choisie" in text and "!reunion dispo" in text
    assert "!reunion proposer" not in text     # advisors do not see the coordinators' subcommands
    assert "!reunion proposer" in reply(await h.say("!aide reunion", sender=CLAIRE))
    text = reply(await h.say("!reunion etta", sender=KARIM))
    assert "Action inconnue pour !reunion : « etta »" in text and "Vouliez-vous dire !reunion etat ?" in text
    assert "Sous-commandes" in reply(await h.say("!rencontre", sender=KARIM))


async def test_poll_end_refers_to_the_poll_even_before_it_was_sent(h):
    """Closed before the outbox sent the poll: the end carries ``tag:meeting:1:poll``, resolved at send time."""
    from ess_bot.framework.messages import Incoming
    for n, body in enumerate([EXPLICIT, "!reunion clore"]):
        await h.app.handle(Incoming(event_id=f"$quick{n}", room_id=COORD, sender=CLAIRE, body=body,
                                    timestamp=h.clock.now()))
    outs = await h.flush()
    (poll,) = [o for o in outs if o.kind == "poll"]
    (end,) = [o for o in outs if o.kind == "poll_end"]
    poll_event = await event_id(h, "meeting:1:poll")
    assert poll_event == f"$sent-{outs.index(poll) + 1}"
    assert end.extra["m.relates_to"] == {"rel_type": "m.reference", "event_id": poll_event}

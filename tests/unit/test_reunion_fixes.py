"""!reunion: regressions from QA and code review (each test failed before its fix).

Through the dispatcher with a real SQLite database, a frozen clock and a drained outbox, like
test_reunion_commands.py. The race between ``clore`` and the deadline job is tested on both backends
in tests/storage/test_meetings_service.py.
"""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

import commands._reunion as helpers
from ess_bot.parsing import parse_duration
from ess_bot.storage.models import OutboxMessage, ScheduledJob
from tests.support import PARIS, Harness, started_harness

COORD, ANNONCES, BGE, URSCOP = "!coord:test", "!annonces:test", "!bge:test", "!urscop:test"
CLAIRE, KARIM, MARC, ADMIN = "@claire:test", "@karim:test", "@marc:test", "@admin:test"
VOTERS = [CLAIRE, KARIM, MARC]
NOW = datetime(2026, 2, 2, 10, 0, tzinfo=PARIS)      # a Monday
EXPLICIT = '!reunion proposer "Rencontre du réseau" 10/03 14h, 12/03 14h, 18/03 9h30 limite=20/02'
DEADLINE = datetime(2026, 2, 20, 18, 0, tzinfo=PARIS)
HUGE = "99999999999999999999"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, NOW) as harness:
        yield harness


def reply(outs) -> str:
    notices = [o.body for o in outs if o.kind == "notice"]
    assert len(notices) == 1, [o.body for o in outs]
    return notices[0]


async def jobs(h: Harness, status: str | None = "pending") -> dict[str, ScheduledJob]:
    async with h.app.db.sessions() as s:
        q = select(ScheduledJob).order_by(ScheduledJob.id)
        if status:
            q = q.where(ScheduledJob.status == status)
        return {j.key: j for j in (await s.scalars(q)).all()}


async def meeting(h: Harness, meeting_id: int):
    async with h.app.db.sessions() as s:
        return await h.app.services.meetings.get(s, meeting_id)


async def coord(h: Harness, command: str, sender: str = CLAIRE) -> list:
    return await h.say(command, sender=sender, room=COORD)


# -- 1. numbers too large for an SQL INTEGER ------------------------------------------------------------------

@pytest.mark.parametrize("command, room", [
    (f"!reunion etat {HUGE}", BGE),
    (f"!reunion dispo {HUGE} 1=oui", BGE),
    (f"!reunion dispo {HUGE} 2 oui", BGE),
    (f"!reunion clore {HUGE}", COORD),
    (f"!reunion annuler {HUGE}", COORD),
    (f"!reunion deplacer {HUGE} 19/03 14h", COORD),
    (f"!reunion prolonger {HUGE} 27/02", COORD),
])
async def test_huge_meeting_numbers_are_refused_politely(h, command, room):
    await coord(h, EXPLICIT)
    text = reply(await h.say(command, sender=CLAIRE, room=room))
    assert f"Numéro « {HUGE} » trop grand" in text and "numéro de rencontre" in text
    assert "Par exemple" in text and "E-" not in text


@pytest.mark.parametrize("command, expected", [
    (f"!reunion clore 1 date={HUGE}", f"Numéro « {HUGE} » trop grand : le numéro de date va de 1 à 10"),
    (f"!reunion dispo 1 {HUGE}=oui", f"Numéro « {HUGE} » trop grand : le numéro de date va de 1 à 10"),
    ("!reunion dispo 1 0=oui", "Numéro « 0 » trop petit"),
])
async def test_huge_date_numbers_are_refused_politely(h, command, expected):
    await coord(h, EXPLICIT)
    text = reply(await coord(h, command))
    assert expected in text and text.count("xemple") == 1


# -- 2. a poll nobody answered is not closed at its deadline -------------------------------------------------

async def test_no_answer_at_the_deadline_keeps_the_poll_open_and_tells_the_coordinators(h):
    await coord(h, EXPLICIT)
    h.clock.set(DEADLINE)
    await h.app.scheduler.run_due()
    outs = await h.flush()
    assert [o.kind for o in outs] == ["text"]          # no poll end, no announcement, no .ics
    (note,) = outs
    assert note.room_id == COORD and note.mentions == [CLAIRE]         # the coordinators only
    assert "personne n'a répondu avant la date limite (vendredi 20 février 2026 à 18 h)" in note.body
    assert "le sondage reste ouvert" in note.body
    assert "!reunion clore 1 date=<n°>" in note.body and "!reunion prolonger 1 27/02" in note.body
    assert "1. mardi 10 mars 2026 à 14 h" in note.body
    assert (await meeting(h, 1)).is_poll
    done = await jobs(h, None)
    assert done["meeting:1:poll:close"].status == "done"
    assert done["meeting:1:poll:close"].note == "nobody answered: poll kept open, coordinators told"
    assert "date limite dépassée" in reply(await h.say("!reunion liste", sender=KARIM))
    assert "date limite dépassée" in reply(await h.say("!reunion etat 1", sender=KARIM))

    # a coordinator gives more time: new deadline, reminder and close planned again
    outs = await coord(h, "!reunion prolonger 1 27/02")
    (announce,) = [o for o in outs if o.kind == "text"]
    assert announce.room_id == COORD and sorted(announce.mentions) == sorted(VOTERS)
    assert "la date limite est repoussée au vendredi 27 février 2026 à 18 h" in announce.body
    assert "Je relancerai les membres sans réponse le mercredi 25 février 2026 à 9 h" in reply(outs)
    view = await meeting(h, 1)
    assert view.is_poll and view.deadline == datetime(2026, 2, 27, 18, 0, tzinfo=PARIS)
    pending = await jobs(h)
    assert set(pending) == {"meeting:1:poll:close:202602271800", "meeting:1:poll:reminder:202602271800"}
    assert pending["meeting:1:poll:close:202602271800"].run_at == datetime(2026, 2, 27, 17, 0, tzinfo=timezone.utc)

    await h.say("!reunion dispo 1=non 2=oui 3=oui", sender=KARIM)
    h.clock.set(datetime(2026, 2, 25, 9, 0, tzinfo=PARIS))
    await h.app.scheduler.run_due()
    (reminder,) = await h.flush()
    assert sorted(reminder.mentions) == [CLAIRE, MARC]
    h.clock.set(datetime(2026, 2, 27, 18, 0, tzinfo=PARIS))
    await h.app.scheduler.run_due()
    outs = await h.flush()
    assert [o.kind for o in outs] == ["poll_end", "text", "file", "text", "file"]
    assert "jeudi 12 mars 2026 à 14 h" in outs[1].body
    assert (await meeting(h, 1)).is_fixed


async def test_picking_a_date_anyway_after_a_silent_deadline(h):
    await coord(h, EXPLICIT)
    h.clock.set(DEADLINE)
    await h.app.scheduler.run_due()
    await h.flush()
    outs = await coord(h, "!reunion clore 1 date=3")
    assert "mercredi 18 mars 2026 à 9 h 30" in [o.body for o in outs if o.kind == "text"][0]
    assert (await meeting(h, 1)).chosen_position == 3


@pytest.mark.parametrize("command, sender, expected", [
    ("!reunion prolonger 1 27/02", KARIM, "réservé aux coordinateur"),
    ("!reunion prolonger 1", CLAIRE, "Indiquez le numéro du sondage et sa nouvelle date limite"),
    ("!reunion prolonger 1 1/02", CLAIRE, "La nouvelle date limite (dimanche 1er février 2026 à 18 h) est déjà passée"),
    ("!reunion prolonger 1 15/02", CLAIRE, "doit être après l'actuelle (vendredi 20 février 2026 à 18 h)"),
    ("!reunion prolonger 1 11/03", CLAIRE,
     "doit précéder la première date proposée (mardi 10 mars 2026 à 14 h)"),
    ("!reunion prolonger 1 30/02", CLAIRE, "La date « 30/02 » n'existe pas"),
    ("!reunion prolonger 9 27/02", CLAIRE, "Je ne trouve pas de rencontre n°9"),
])
async def test_prolonger_refusals(h, command, sender, expected):
    await coord(h, EXPLICIT)
    text = reply(await coord(h, command, sender))
    assert expected in text
    if "réservé" not in text:
        assert text.count("xemple") == 1
    assert set(await jobs(h)) == {"meeting:1:poll:close", "meeting:1:poll:reminder"}


async def test_prolonger_on_a_closed_poll_says_which_date(h):
    await coord(h, EXPLICIT)
    await coord(h, "!reunion clore 1 date=2")
    text = reply(await coord(h, "!reunion prolonger 1 27/02"))
    assert "Le sondage n°1 « Rencontre du réseau » est déjà clos : date retenue n°2, jeudi 12 mars 2026 à 14 h" in text


# -- 3. a moved meeting does not take its own day ---------------------------------------------------------------

async def test_moving_a_meeting_does_not_warn_about_itself(h):
    await coord(h, EXPLICIT)
    await coord(h, "!reunion clore 1 date=2")                         # Thursday 12 March
    outs = await coord(h, "!reunion deplacer 1 19/03 14h")
    assert [o for o in outs if o.kind == "notice"] == []              # a clean day: nothing to warn about
    outs = await coord(h, "!reunion deplacer 1 20/03 14h")             # a Friday, one day later: still itself
    assert [o for o in outs if o.kind == "notice"] == []
    # another meeting on the target day still counts
    await coord(h, '!reunion proposer "Autre" 24/03 14h limite=20/02')
    await coord(h, "!reunion clore 2")
    text = reply(await coord(h, "!reunion deplacer 1 24/03 9h30"))
    assert "déjà pris : rencontre du réseau « Autre »" in text and "« Rencontre du réseau »" not in text


# -- 5. messages ------------------------------------------------------------------------------------------------

async def test_a_past_date_is_called_past(h):
    text = reply(await coord(h, '!reunion proposer "Rencontre T2" 20/01/2026 14h'))
    assert "La date « 20/01/2026 14h » (mardi 20 janvier 2026 à 14 h) est déjà passée" in text
    assert "trop proche" not in text and text.count("Exemple") == 1


async def test_dates_without_commas_are_explained(h):
    text = reply(await coord(h, '!reunion proposer "Rencontre T2" 12/03/2026 14h 19/03/2026 9h30'))
    assert "Je vois plusieurs dates dans « 12/03/2026 14h 19/03/2026 9h30 »" in text
    assert "séparez les dates par des virgules" in text
    assert 'Exemple : !reunion proposer "Rencontre T2" 12/03/2026 14h, 19/03/2026 9h30' in text
    assert "Je ne comprends pas la date" not in text and text.count("Exemple") == 1
    assert await jobs(h) == {}


async def test_closing_twice_says_it_is_closed_and_which_date(h):
    await coord(h, EXPLICIT)
    await coord(h, "!reunion clore 1 date=2")
    outs = await coord(h, "!reunion clore 1")
    assert [o.kind for o in outs] == ["notice"]                       # nothing announced a second time
    assert outs[0].body == ("Le sondage n°1 « Rencontre du réseau » est déjà clos : date retenue n°2, "
                            "jeudi 12 mars 2026 à 14 h, Besançon.")
    await coord(h, "!reunion deplacer 1 19/03")
    text = reply(await coord(h, "!reunion clore 1"))
    assert "date retenue n°2, jeudi 12 mars 2026 à 14 h (déplacée depuis au jeudi 19 mars 2026 à 14 h)" in text
    await coord(h, "!reunion annuler 1")
    assert "Le sondage n°1 « Rencontre du réseau » est annulé." in reply(await coord(h, "!reunion clore 1"))


@pytest.mark.parametrize("command", ["!reunion dispo", "!reunion dispo 1=oui", "!reunion etat"])
async def test_dispo_after_closing_gives_the_chosen_date(h, command):
    await coord(h, EXPLICIT)
    await coord(h, "!reunion clore 1 date=2")
    text = reply(await h.say(command, sender=MARC, room=URSCOP))
    assert text.startswith("Aucun sondage de date n'est ouvert en ce moment. Le dernier, n°1 « Rencontre du réseau », "
                           "est clos : la rencontre aura lieu le jeudi 12 mars 2026 à 14 h, Besançon.")
    assert "!reunion prochaine" in text


async def test_without_any_meeting_dispo_points_to_the_list(h):
    text = reply(await h.say("!reunion dispo", sender=MARC))
    assert text == "Aucun sondage de date n'est ouvert en ce moment. Pour voir les rencontres : !reunion liste."


async def test_a_window_written_as_an_option_shows_one_example(h):
    text = reply(await coord(h, '!reunion proposer "R" entre=janvier-mars'))
    assert "« entre=janvier-mars » : une période s'écrit sans « = », avec deux dates" in text
    assert text.count("Exemple") == 1


async def test_coordinators_are_written_one_way(h):
    texts = [reply(await h.say("!aide reunion", sender=CLAIRE)),
             reply(await h.say("!reunion prochaine", sender=MARC)),
             reply(await h.say("!reunion liste", sender=MARC))]
    for text in texts:
        assert "coordinateur·rice·s" in text
        assert "coordinateur·rices" not in text and "coordinateurs" not in text and "coordinatrices" not in text


# -- 6. admins are technical accounts -------------------------------------------------------------------------

async def test_admins_are_not_mentioned_nor_expected(h):
    outs = await coord(h, EXPLICIT)
    intro = outs[0]
    assert sorted(intro.mentions) == sorted(VOTERS) and "admin" not in intro.body
    text = reply(await h.say("!reunion etat", sender=KARIM))
    assert "Pas encore répondu : Claire, Karim et Marc." in text and "admin" not in text
    text = reply(await h.say("!reunion dispo 1=oui", sender=ADMIN))
    assert "compte administrateur·rice (technique)" in text and "ne sont pas comptées" in text
    async with h.app.db.sessions() as s:
        assert (await h.app.services.meetings.tally(s, 1)).answered == 0
    help_text = reply(await h.say("!aide reunion", sender=KARIM))
    assert "Qui répond : les conseiller·ère·s et les coordinateur·rice·s" in help_text
    assert "administrateur·rice du bot sont techniques" in help_text


# -- 7. overlapping open polls --------------------------------------------------------------------------------

async def test_overlapping_polls_are_warned_about_but_accepted(h):
    await coord(h, EXPLICIT)                                            # 10/03, 12/03, 18/03
    text = reply(await coord(h, '!reunion proposer "Atelier" 12/03 9h30, 25/03 14h limite=20/02'))
    assert text.startswith("✅ Sondage n°2 ouvert")
    assert "le sondage n°1 « Rencontre du réseau », encore ouvert, propose aussi le jeudi 12 mars 2026" in text
    text = reply(await coord(h, '!reunion proposer "Bilan" 11/03 14h, 17/03 14h limite=20/02'))
    assert text.startswith("✅ Sondage n°3 ouvert")
    assert ("le sondage n°1 « Rencontre du réseau », encore ouvert, porte sur la même période "
            "(du mardi 10 mars 2026 au mercredi 18 mars 2026)") in text
    assert "le sondage n°2 « Atelier », encore ouvert, porte sur la même période" in text
    text = reply(await coord(h, '!reunion proposer "Juin" 9/06 14h limite=20/02'))
    assert "⚠️" not in text
    await coord(h, "!reunion clore 1 date=1")                          # a closed poll no longer overlaps
    text = reply(await coord(h, '!reunion proposer "Encore" 17/03 9h30 limite=20/02'))
    assert "sondage n°1" not in text
    assert "le sondage n°2 « Atelier », encore ouvert, porte sur la même période" in text
    assert "le sondage n°3 « Bilan », encore ouvert, propose aussi le mardi 17 mars 2026" in text


# -- code review --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["commands/reunion.py", "commands/_reunion.py"])
def test_no_sql_in_the_meeting_commands(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    sql = [m for m in modules if (m.startswith("sqlalchemy") and m != "sqlalchemy.ext.asyncio")   # AsyncSession: a type
           or m == "ess_bot.storage.models"]
    assert sql == []


def test_shared_helpers_are_used():
    assert helpers.parse_duration is parse_duration                    # no copy of the duration parser
    assert helpers.meeting_duration("1,5h") == 90                      # a form only the shared one reads
    assert not hasattr(helpers, "name")                                # Member.display, not a copy


async def test_the_announcement_ics_is_the_feed_entry(h):
    await coord(h, EXPLICIT)
    outs = await coord(h, "!reunion clore 1 date=2")
    (ics,) = [o for o in outs if o.kind == "file" and o.room_id == COORD]
    (sent,) = Calendar.from_ical(ics.data).walk("VEVENT")
    async with h.app.db.sessions() as s:
        feed = await h.app.services.agenda.feed(s)
    (fed,) = [e for e in Calendar.from_ical(feed).walk("VEVENT") if str(e["uid"]) == "meeting-1@ess-bot"]
    for prop in ("UID", "SEQUENCE", "DESCRIPTION", "LOCATION", "SUMMARY", "DTSTART", "DTEND", "STATUS"):
        assert sent[prop].to_ical() == fed[prop].to_ical(), prop


async def test_reactions_still_find_their_date_and_poll(h):
    """The outbox lookups moved into the service: reactions and native answers still map."""
    await coord(h, EXPLICIT)
    async with h.app.db.sessions() as s:
        option = await s.scalar(select(OutboxMessage.event_id).where(OutboxMessage.tag == "meeting:1:option:2"))
        poll = await s.scalar(select(OutboxMessage.event_id).where(OutboxMessage.tag == "meeting:1:poll"))
    await h.event(kind="reaction", room_id=COORD, sender=KARIM, relates_to=option, key="✅")
    await h.event(kind="poll_response", room_id=COORD, sender=MARC, relates_to=poll, answers=("3",))
    async with h.app.db.sessions() as s:
        t = await h.app.services.meetings.tally(s, 1)
    assert [o.counts for o in t.options] == [(0, 0, 0), (1, 0, 0), (1, 0, 0)]

"""Review fixes for !outil and !evenement: quoted values, files of another room, tags added and
removed, personal data refused, weekday dates and warnings, one VEVENT for the announcement and the
feed, raw changes from the services, no SQL in the command helpers."""

import inspect
from datetime import datetime

import pytest
from icalendar import Calendar
from sqlalchemy import select

import commands._events
from ess_bot.config import Member
from ess_bot.services import events as events_service
from ess_bot.services import tools as tools_service
from ess_bot.services.events import EventChanges, NewEvent
from ess_bot.services.tools import NewTool, ToolChanges
from ess_bot.storage.models import ScheduledJob
from tests.support import PARIS, started_harness
from tests.unit.test_events_commands import vevent

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)  # a Tuesday
KARIM = Member("@karim:test", "bge-fc", "advisor", "Karim")


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, NOW) as harness:
        yield harness


async def tools(h):
    async with h.app.db.sessions() as s:
        return await h.app.services.tools.all(s)


async def events(h):
    async with h.app.db.sessions() as s:
        return await h.app.services.events.upcoming(s, h.clock.now(), include_cancelled=True)


async def jobs(h):
    async with h.app.db.sessions() as s:
        return (await s.scalars(select(ScheduledJob))).all()


# -- 1. a quoted token is always a value ------------------------------------------------------------

@pytest.mark.parametrize("title", ["Prix = 0 € : mode d'emploi", "#1 des tiers-lieux", "https://pixel : le guide"])
async def test_quoted_tool_title_is_never_an_option_a_tag_or_a_link(h, title):
    [reply] = await h.say(f'!outil ajouter "{title}" https://exemple.org/t #guide')
    assert f"Outil n°1 « {title} » partagé" in reply.body, reply.body
    [tool] = await tools(h)
    assert (tool.title, tool.link, tool.tags) == (title, "https://exemple.org/t", ("guide",))


@pytest.mark.parametrize("title", ["Atelier : tarif=gratuit", "#MoisESS : le forum", "https://forum-ess", "Demain"])
async def test_quoted_event_title_is_never_an_option_a_tag_a_link_or_a_date(h, title):
    sent = await h.say(f'!evenement ajouter "{title}" 15/01/2027 18h', sender="@karim:test")
    assert len(sent) == 7, sent[-1].body
    [view] = await events(h)
    assert (view.title, view.start, view.link, view.tags) == (title, datetime(2027, 1, 15, 18, tzinfo=PARIS), None, ())


async def test_quoted_option_values_and_unquoted_options_still_work(h):
    await h.say('!outil ajouter "Trame" https://exemple.org/t description="voir https://exemple.org/aide"')
    [tool] = await tools(h)
    assert tool.description == "voir https://exemple.org/aide"


# -- 2. a file is only re-shared from its own room -------------------------------------------------

async def test_a_file_of_another_room_cannot_be_shared(h):
    await h.event(kind="file", event_id="$elsewhere", sender="@marc:test", room_id="!urscop:test", msgtype="m.file",
                  content={"msgtype": "m.file", "body": "statuts.pdf", "url": "mxc://test/statuts"})
    [reply] = await h.say('!outil ajouter "Statuts" #scop', reply_to="$elsewhere", room="!bge:test")
    assert "Je ne retrouve pas le fichier auquel vous répondez dans ce salon" in reply.body
    assert "un fichier d'un autre salon ne peut pas être repartagé d'ici" in reply.body
    assert await tools(h) == []
    [reply] = await h.say('!outil ajouter "Statuts" #scop', reply_to="$elsewhere", room="!urscop:test",
                          sender="@marc:test")
    assert "Outil n°1 « Statuts » partagé" in reply.body


# -- 3. tags: #tag adds, -#tag removes, tags=… replaces ----------------------------------------------

async def test_tool_tags_are_added_removed_or_replaced_and_the_reply_says_what_changed(h):
    await h.say('!outil ajouter "Trame BP" https://exemple.org/bp #businessplan #scop type=trame')
    [reply] = await h.say("!outil modifier 1 type=guide phase=émergence #statuts")
    assert "Type : trame → guide" in reply.body and "Phase : aucune → émergence" in reply.body
    assert "Mots-clés : #businessplan #scop → #businessplan #scop #statuts (ajouté : #statuts)" in reply.body
    [reply] = await h.say("!outil modifier 1 -#scop")
    assert "Mots-clés : #businessplan #scop #statuts → #businessplan #statuts (retiré : #scop)" in reply.body
    [reply] = await h.say("!outil modifier 1 tags=bp,esus")
    assert "(ajoutés : #bp #esus ; retirés : #businessplan #statuts)" in reply.body
    [tool] = await tools(h)
    assert tool.tags == ("bp", "esus")
    [reply] = await h.say("!outil modifier 1 -#zorglub")
    assert "Le mot-clé « #zorglub » n'est pas sur la fiche (mots-clés actuels : #bp #esus)" in reply.body
    assert "Exemple : !outil modifier 3 #statuts -#scop" in reply.body
    [reply] = await h.say("!outil modifier 1 tags=aucun")
    assert "Mots-clés : #bp #esus → aucun" in reply.body


async def test_help_explains_adding_removing_and_replacing_tags(h):
    [reply] = await h.say("!aide outil")
    assert "#mot ajoute, -#mot retire, tags=a,b les remplace tous" in reply.body
    assert "!outil modifier 3 #statuts -#scop" in reply.body


async def test_event_tags_are_added_and_removed_too(h):
    await h.say('!evenement ajouter "Forum" 15/01/2027 18h #mois-ess #forum', sender="@karim:test")
    *_, reply = await h.say("!evenement modifier 1 #cress -#forum", sender="@karim:test")
    assert "Mots-clés : #mois-ess #forum → #mois-ess #cress (ajouté : #cress ; retiré : #forum)" in reply.body
    [view] = await events(h)
    assert view.tags == ("mois-ess", "cress")


# -- 4. personal data (RGPD) ------------------------------------------------------------------------

@pytest.mark.parametrize("command, message", [
    ('!evenement ajouter "Atelier" 15/01/2027 18h lieu="chez marie@mail.fr"',
     "Le lieu contient une adresse e-mail (« marie@mail.fr »)"),
    ('!evenement ajouter "Appeler le 06 12 34 56 78" 15/01/2027 18h', "Le titre contient un numéro de téléphone"),
])
async def test_events_with_contact_details_are_refused_and_never_announced(h, command, message):
    sent = await h.say(command, sender="@karim:test")
    assert len(sent) == 1 and sent[0].kind == "notice", [o.body for o in sent]
    assert message in sent[0].body and "RGPD" in sent[0].body and "Exemple" in sent[0].body
    assert await events(h) == [] and await jobs(h) == []


async def test_event_changes_and_cancel_reasons_are_checked_too(h):
    await h.say('!evenement ajouter "Atelier" 15/01/2027 18h', sender="@karim:test")
    [reply] = await h.say('!evenement modifier 1 lieu="appeler 03 81 00 00 00"', sender="@karim:test")
    assert "Le lieu contient un numéro de téléphone" in reply.body
    [reply] = await h.say('!evenement annuler 1 "malade, écrire à karim@bge.fr"', sender="@karim:test")
    assert "RGPD" in reply.body
    [view] = await events(h)
    assert view.location is None and not view.cancelled


async def test_tools_with_contact_details_are_refused(h):
    [reply] = await h.say('!outil ajouter "Trame" https://exemple.org/t description="écrire à jean.dupont@mail.fr"')
    assert "La description contient une adresse e-mail (« jean.dupont@mail.fr »)" in reply.body
    assert "RGPD" in reply.body
    [reply] = await h.say('!outil ajouter "Trame de Jean 06 12 34 56 78" https://exemple.org/t')
    assert "Le titre contient un numéro de téléphone" in reply.body
    assert await tools(h) == []
    await h.say('!outil ajouter "Trame" https://exemple.org/t')
    [reply] = await h.say('!outil modifier 1 description="contact : jean.dupont@mail.fr"')
    assert "RGPD" in reply.body and (await tools(h))[0].description is None


# -- 5. weekday dates, weekend and holiday warnings, duplicates -------------------------------------

@pytest.mark.parametrize("when, start", [
    ("jeudi 9h", datetime(2026, 11, 26, 9, tzinfo=PARIS)),
    ("jeudi prochain 9h", datetime(2026, 11, 26, 9, tzinfo=PARIS)),
    ("le jeudi à 9h", datetime(2026, 11, 26, 9, tzinfo=PARIS)),
    ("mardi 14h", datetime(2026, 12, 1, 14, tzinfo=PARIS)),   # never today: next week's
    ("jeudi 14/01/2027 9h", datetime(2027, 1, 14, 9, tzinfo=PARIS)),
])
async def test_weekday_dates_are_the_next_such_day(h, when, start):
    sent = await h.say(f'!evenement ajouter "Café ESS" {when}', sender="@karim:test")
    [view] = await events(h)
    assert (view.title, view.start) == ("Café ESS", start), sent[-1].body


async def test_weekday_and_date_must_agree(h):
    [reply] = await h.say('!evenement ajouter "X" mercredi 14/01/2027 9h', sender="@karim:test")
    assert "Le 14 janvier 2027 est un jeudi, pas un mercredi" in reply.body


async def test_weekend_and_public_holidays_are_accepted_with_a_warning(h):
    sent = await h.say('!evenement ajouter "Marché de Noël solidaire" samedi 10h', sender="@karim:test")
    assert len(sent) == 7  # announced all the same
    assert "⚠️ Le samedi 28 novembre 2026 tombe un week-end : vérifiez la date." in sent[-1].body
    sent = await h.say('!evenement ajouter "Permanence" 25/12/2026 10h', sender="@karim:test")
    assert len(sent) == 7
    assert "⚠️ Le vendredi 25 décembre 2026 est un jour férié (Noël) : vérifiez la date." in sent[-1].body
    sent = await h.say('!evenement ajouter "Atelier" 15/01/2027 10h', sender="@karim:test")
    assert "⚠️" not in sent[-1].body
    *_, reply = await h.say("!evenement modifier 3 date=1/05/2027", sender="@karim:test")
    assert "est un jour férié (Fête du Travail)" in reply.body


async def test_same_title_and_start_is_accepted_with_a_warning(h):
    await h.say('!evenement ajouter "Forum ESS" 15/01/2027 18h', sender="@karim:test")
    sent = await h.say('!evenement ajouter "forum ess" 15/01/2027 18h', sender="@claire:test")
    assert len(sent) == 7
    assert ("⚠️ L'événement n°1 « Forum ESS » a déjà ce titre et ce début : s'il s'agit d'un doublon, annulez "
            'l\'un des deux avec !evenement annuler 2 "doublon".') in sent[-1].body
    sent = await h.say('!evenement ajouter "Forum ESS" 15/01/2027 19h', sender="@karim:test")
    assert "doublon" not in sent[-1].body


# -- 7. one VEVENT for the announcement and the feed ------------------------------------------------

def without_stamp(ev):
    return {k: ev[k].to_ical() if hasattr(ev[k], "to_ical") else ev[k] for k in ev if k != "DTSTAMP"}


async def feed_vevents(h):
    async with h.app.db.sessions() as s:
        return {str(e["UID"]): e for e in Calendar.from_ical(await h.app.services.agenda.feed(s)).walk("VEVENT")}


async def test_announcement_vevent_is_the_feed_vevent(h):
    sent = await h.say('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon" '
                       'lien=https://pixel.example/inscription public=porteurs,partenaires #mois-ess',
                       sender="@karim:test")
    announced = vevent(sent[1])
    assert without_stamp(announced) == without_stamp((await feed_vevents(h))["event-1@ess-bot"])
    sent = await h.say('!evenement modifier 1 lieu="Salle des fêtes" heure=18h30', sender="@karim:test")
    announced = vevent(sent[1])
    assert int(announced["SEQUENCE"]) == 1
    assert without_stamp(announced) == without_stamp((await feed_vevents(h))["event-1@ess-bot"])
    card, ics = await h.say("!evenement voir 1")
    assert without_stamp(vevent(ics)) == without_stamp(announced)


# -- rules: raw changes from the services, no SQL in the command helpers, one helper each -------------

async def test_services_return_raw_changes(h):
    async with h.app.db.sessions.begin() as s:
        tool = await h.app.services.tools.add(s, KARIM, NewTool("Trame", "trame", "https://exemple.org/t", ("a",)))
        _, changes = await h.app.services.tools.update(s, KARIM, tool.id, ToolChanges(
            type="guide", phase="emergence", add_tags=("b",), description=""))
        assert [(c.field, c.old, c.new) for c in changes] == [("type", "trame", "guide"), ("phase", None, "emergence"),
                                                              ("tags", ("a",), ("a", "b"))]
        ev = await h.app.services.events.create(s, KARIM, NewEvent("Forum", datetime(2027, 1, 15, 18, tzinfo=PARIS)))
        new_start = datetime(2027, 1, 22, 18, tzinfo=PARIS)
        _, changes = await h.app.services.events.update(s, KARIM, ev.id, EventChanges(
            start=new_start, location="Dijon", audience=("porteurs",)))
        assert [(c.field, c.old, c.new) for c in changes] == [
            ("when", (ev.start, ev.end), (new_start, datetime(2027, 1, 22, 20, tzinfo=PARIS))),
            ("location", None, "Dijon"), ("audience", (), ("porteurs",))]


def test_no_sql_in_command_helpers_and_no_french_wording_helper_in_the_events_service():
    source = inspect.getsource(commands._events)
    assert "sqlalchemy" not in source and "select(" not in source
    assert not hasattr(events_service, "when_fr")
    assert events_service.check_link is tools_service.check_link  # one link check for both services

"""!agenda: reading ``[mois|n]``, merging every calendar source (events and, later, network meetings),
French rendering."""

from datetime import date, datetime, timedelta

import pytest

from commands.agenda import AgendaQuery, parse_agenda_args
from ess_bot.framework.context import UserError
from ess_bot.framework.messages import render_markdown
from ess_bot.services.agenda import AgendaEntry
from ess_bot.services.agenda_service import AgendaService, month_bounds
from tests.support import PARIS, Harness

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
TODAY = NOW.date()


@pytest.mark.parametrize("args, query", [
    ([], AgendaQuery(count=10)),
    (["5"], AgendaQuery(count=5)),
    (["décembre"], AgendaQuery(year=2026, month=12)),
    (["DECEMBRE"], AgendaQuery(year=2026, month=12)),
    (["novembre"], AgendaQuery(year=2026, month=11)),          # the current month
    (["octobre"], AgendaQuery(year=2027, month=10)),           # a past month: next year's
    (["janvier", "2027"], AgendaQuery(year=2027, month=1)),
    (["janv.", "2027"], AgendaQuery(year=2027, month=1)),
    (["fevrier"], AgendaQuery(year=2027, month=2)),
    (["decmbre"], AgendaQuery(year=2026, month=12)),           # typo
    (["12/2026"], AgendaQuery(year=2026, month=12)),
    (["ce", "mois"], AgendaQuery(year=2026, month=11)),
    (["mois", "prochain"], AgendaQuery(year=2026, month=12)),
])
def test_agenda_arguments(args, query):
    assert parse_agenda_args(args, TODAY) == query


@pytest.mark.parametrize("args, message", [
    (["0"], "Nombre hors limites : « 0 » (de 1 à 50)"),
    (["500"], "Nombre hors limites : « 500 »"),
    (["janvier", "deux-mille"], "Année illisible : « deux-mille »"),
    (["bientôt"], "Je n'ai pas compris « bientôt »"),
    (["99999999999"], "Nombre hors limites : « 99999999999 »"),
    (["9" * 5000], "Nombre hors limites : « 999"),             # never int() of 5,000 digits (a ValueError)
    (["12/9999"], "Année hors limites : « 12/9999 » (de 1970 à 2031)"),
    (["décembre", "9999"], "Année hors limites : « 9999 » (de 1970 à 2031)"),
    (["janvier", "1969"], "Année hors limites : « 1969 »"),
])
def test_bad_agenda_arguments_are_named_with_examples(args, message):
    with pytest.raises(UserError) as err:
        parse_agenda_args(args, TODAY)
    assert message in render_markdown(err.value.message)[0] and "`!agenda décembre`" in err.value.message


def test_month_bounds_cross_the_year():
    assert month_bounds(2026, 12, PARIS) == (datetime(2026, 12, 1, tzinfo=PARIS), datetime(2027, 1, 1, tzinfo=PARIS))


class FakeMeetings:
    """Stands for the network meetings' CalendarSource (another service)."""

    def __init__(self, entries):
        self.entries = entries

    async def calendar_items(self, session, start, end):
        return [e for e in self.entries if e.start < end and e.end > start]


def meeting(ident, start, title="Rencontre du réseau"):
    return AgendaEntry(kind="reunion", ident=ident, title=title, start=start, end=start + timedelta(hours=3),
                       location="Besançon", organiser="Réseau", uid=f"meeting-{ident}@ess-bot")


@pytest.fixture
async def h(tmp_path):
    harness = await Harness(f"sqlite+aiosqlite:///{tmp_path}/t.db", NOW).start()
    services = harness.app.services
    services.agenda = AgendaService([services.events, FakeMeetings([
        meeting(1, datetime(2026, 12, 10, 14, 0, tzinfo=PARIS)),
        meeting(2, datetime(2027, 3, 11, 14, 0, tzinfo=PARIS), "Rencontre de printemps"),
        meeting(3, datetime(2026, 10, 1, 14, 0, tzinfo=PARIS), "Rencontre passée"),
    ])], harness.clock)
    yield harness
    await harness.close()


async def test_agenda_merges_events_and_meetings_in_order(h):
    await h.say('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel"',
                sender="@claire:test")
    await h.say('!evenement ajouter "Café ESS" 2/12 9h', sender="@claire:test")
    [reply] = await h.say("!agenda")
    lines = [line for line in reply.body.splitlines() if line]
    assert lines[0] == "📆 Prochaines dates du réseau"
    assert lines[1:] == [
        "Décembre 2026",
        "- mer. 2, 9 h – 11 h · 🎉 Café ESS — BGE Franche-Comté · !evenement voir 2",
        "- jeu. 10, 14 h – 17 h · 🤝 Rencontre du réseau — Besançon, Réseau (rencontre du réseau)",
        "Janvier 2027",
        "- ven. 15, 18 h – 21 h · 🎉 Inauguration du Pixel — Le Pixel, BGE Franche-Comté · !evenement voir 1",
        "Mars 2027",
        "- jeu. 11, 14 h – 17 h · 🤝 Rencontre de printemps — Besançon, Réseau (rencontre du réseau)",
    ]
    [reply] = await h.say("!agenda 2")
    assert "Café ESS" in reply.body and "Rencontre du réseau" in reply.body and "Pixel" not in reply.body
    [reply] = await h.say("!agenda janvier 2027")
    assert "Agenda du réseau — janvier 2027" in reply.body and "Inauguration du Pixel" in reply.body
    assert "Café" not in reply.body and "Rencontre" not in reply.body
    [reply] = await h.say("!agenda octobre 2026")
    assert "Rencontre passée" in reply.body  # a past month can be looked back at
    [reply] = await h.say("!agenda février")
    assert "Rien de prévu en février 2027 pour l'instant" in reply.body


async def test_cancelled_events_leave_the_agenda(h):
    await h.say('!evenement ajouter "Café ESS" 2/12 9h', sender="@claire:test")
    await h.say("!evenement annuler 1", sender="@claire:test")
    [reply] = await h.say("!agenda décembre")
    assert "Café" not in reply.body and "Rencontre du réseau" in reply.body


async def test_empty_agenda(tmp_path):
    h = await Harness(f"sqlite+aiosqlite:///{tmp_path}/e.db", NOW).start()
    try:
        [reply] = await h.say("!agenda")
        assert "Aucun événement ni rencontre à venir pour l'instant" in reply.body
    finally:
        await h.close()

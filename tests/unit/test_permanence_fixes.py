"""!permanence review fixes: a département or a postcode, an empty argument, "jours fériés" in the
plural, and the shared French calendar (ess_bot.calendar_fr) for the holidays."""

from datetime import datetime

import pytest

import ess_bot.services.permanences as permanences_module
from ess_bot.calendar_fr import FrenchCalendar
from tests.support import PARIS, started_harness
from tests.unit.test_permanence import PERMANENCES, perm, service


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, datetime(2026, 11, 9, 18, 0, tzinfo=PARIS), PERMANENCES) as harness:
        yield harness


async def test_a_department_gives_the_permanences_in_it(h):
    [reply] = await h.say("!permanence 25")
    lines = reply.body.splitlines()
    assert lines[0] == "📍 Permanences dans le département 25 (Doubs)"
    assert "BGE Franche-Comté — du lundi au mercredi" in reply.body and "URSCOP — le jeudi" in reply.body
    assert "Belfort" not in reply.body and "Lons" not in reply.body
    [reply] = await h.say("!permanence 39")
    assert "Lons-le-Saunier" in reply.body and "Besançon" not in reply.body
    [reply] = await h.say("!permanence 21")
    assert reply.body.startswith("Aucune permanence dans le département 21 (Côte-d'Or). Villes connues : Belfort, "
                                 "Besançon et Lons-le-Saunier.")


async def test_a_postcode_gives_the_permanences_there_or_else_in_its_department(h):
    [reply] = await h.say("!permanence 90000")
    assert reply.body.splitlines()[0] == "📍 Permanences au code postal 90000"
    assert "Pépinière d'entreprises, 10 rue de la Découverte, 90000 Belfort" in reply.body
    [reply] = await h.say("!permanence 25300")  # Pontarlier: none there, those of the Doubs
    assert reply.body.splitlines()[0] == ("📍 Aucune permanence au code postal 25300 ; dans le département 25 "
                                          "(Doubs) :")
    assert "4 rue Gabriel Plançon, 25000 Besançon" in reply.body
    [reply] = await h.say("!permanence 58000")
    assert "Aucune permanence au code postal 58000 ni dans le département 58 (Nièvre)" in reply.body


async def test_an_empty_argument_lists_them_all(h):
    [everything] = await h.say("!permanence")
    [reply] = await h.say('!permanence ""')
    assert reply.body == everything.body
    assert "«  »" not in reply.body and reply.body.startswith("📍 Permanences du réseau")


async def test_several_holidays_are_jours_feries_in_the_plural(h):
    h.clock.set(datetime(2026, 12, 21, 10, 0, tzinfo=PARIS))
    [reply] = await h.say("!permanence lons")
    assert ("pas de permanence le vendredi 25 décembre 2026 (Noël) et le vendredi 1er janvier 2027 (Jour de l'an), "
            "jours fériés") in reply.body
    h.clock.set(datetime(2026, 11, 9, 18, 0, tzinfo=PARIS))
    [reply] = await h.say("!permanence belfort")
    assert "), jour férié" in reply.body and "jours fériés" not in reply.body  # 11 November alone


def test_holidays_come_from_the_shared_french_calendar():
    assert not hasattr(permanences_module, "holidays")
    svc, config = service(datetime(2026, 11, 9, 10, 0, tzinfo=PARIS))
    assert isinstance(svc.calendar, FrenchCalendar)
    assert svc.next_date(perm(config, "Belfort")).skipped[0][1] == FrenchCalendar().public_holiday(
        datetime(2026, 11, 11).date())

"""!permanence: next dates around French public holidays, today's permanence until it ends, towns found
accent-insensitively, by prefix or with a typo."""

from datetime import date, datetime

import pytest

from ess_bot.clock import Clock
from ess_bot.services.permanences import PermanenceService
from tests.support import PARIS, Harness, make_config, started_harness

PERMANENCES = """
[[permanences]]
partner = "bge-fc"
town = "Belfort"
weekday = "wednesday"
hours = "09:00-12:00, 14:00-17:00"
address = "Pépinière d'entreprises, 10 rue de la Découverte, 90000 Belfort"

[[permanences]]
partner = "bge-fc"
town = "Lons-le-Saunier"
weekday = "friday"
hours = "09:00-12:00, 14:00-16:30"
address = "Espace entreprendre, 12 avenue Jean Moulin, 39000 Lons-le-Saunier"

[[permanences]]
partner = "bge-fc"
town = "Besançon"
weekday = "monday"
hours = "09:00-12:30, 13:30-17:30"
address = "BGE Franche-Comté, 4 rue Gabriel Plançon, 25000 Besançon"

[[permanences]]
partner = "bge-fc"
town = "Besançon"
weekday = "tuesday"
hours = "09:00-12:30, 13:30-17:30"
address = "BGE Franche-Comté, 4 rue Gabriel Plançon, 25000 Besançon"

[[permanences]]
partner = "bge-fc"
town = "Besançon"
weekday = "wednesday"
hours = "09:00-12:30, 13:30-17:30"
address = "BGE Franche-Comté, 4 rue Gabriel Plançon, 25000 Besançon"

[[permanences]]
partner = "urscop"
town = "Besançon"
weekday = "thursday"
hours = "14:00-17:00"
address = "URSCOP, 2 rue de Vesoul, 25000 Besançon"
"""


def service(now):
    config = make_config("sqlite+aiosqlite:///:memory:", PERMANENCES)
    return PermanenceService(config, Clock(PARIS, frozen_at=now)), config


def perm(config, town):
    return next(p for p in config.permanences if p.town == town)


def test_belfort_wednesday_jumps_over_11_november():
    svc, config = service(datetime(2026, 11, 9, 10, 0, tzinfo=PARIS))  # Monday
    nxt = svc.next_date(perm(config, "Belfort"))
    assert nxt.day == date(2026, 11, 18)
    [(day, name)] = nxt.skipped
    assert day == date(2026, 11, 11) and "Armistice" in name


def test_friday_permanence_skips_christmas_and_new_year():
    svc, config = service(datetime(2026, 12, 21, 10, 0, tzinfo=PARIS))
    nxt = svc.next_date(perm(config, "Lons-le-Saunier"))
    assert nxt.day == date(2027, 1, 8)
    assert [d for d, _ in nxt.skipped] == [date(2026, 12, 25), date(2027, 1, 1)]


def test_today_counts_until_the_permanence_ends():
    belfort = lambda svc, config: svc.next_date(perm(config, "Belfort")).day  # noqa: E731
    svc, config = service(datetime(2026, 11, 18, 16, 59, tzinfo=PARIS))
    assert belfort(svc, config) == date(2026, 11, 18)
    svc, config = service(datetime(2026, 11, 18, 17, 0, tzinfo=PARIS))
    assert belfort(svc, config) == date(2026, 11, 25)
    svc, config = service(datetime(2026, 11, 18, 7, 0, tzinfo=PARIS))
    assert belfort(svc, config) == date(2026, 11, 18)


@pytest.mark.parametrize("typed, town", [
    ("besancon", "Besançon"), ("BESANÇON", "Besançon"), ("lons", "Lons-le-Saunier"),
    ("lons le saunier", "Lons-le-Saunier"), ("belfor", "Belfort"), ("Besacon", "Besançon"),
])
def test_towns_are_found_tolerantly(typed, town):
    svc, _ = service(datetime(2026, 11, 9, 10, 0, tzinfo=PARIS))
    assert svc.find_town(typed).town == town


def test_ambiguous_and_unknown_towns():
    svc, _ = service(datetime(2026, 11, 9, 10, 0, tzinfo=PARIS))
    assert svc.find_town("be").candidates == ("Belfort", "Besançon")
    assert svc.find_town("Dijon").town is None and svc.find_town("Dijon").candidates == ()


def test_same_place_and_hours_on_several_days_are_grouped():
    svc, _ = service(datetime(2026, 11, 9, 10, 0, tzinfo=PARIS))
    views = svc.for_town("Besançon")
    assert [(v.partner, v.weekdays) for v in views] == [("bge-fc", (0, 1, 2)), ("urscop", (3,))]
    assert views[0].next.day == date(2026, 11, 9)  # Monday, today, not over yet


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, datetime(2026, 11, 9, 18, 0, tzinfo=PARIS), PERMANENCES) as harness:
        yield harness


async def test_command_for_one_town(h):
    [reply] = await h.say("!permanence belfort")
    assert reply.body.splitlines()[0] == "📍 Permanences à Belfort"
    assert "BGE Franche-Comté — le mercredi, 9 h – 12 h et 14 h – 17 h" in reply.body
    assert "Pépinière d'entreprises, 10 rue de la Découverte, 90000 Belfort" in reply.body
    assert "Prochaine : mercredi 18 novembre 2026 — pas de permanence le mercredi 11 novembre 2026 (" in reply.body
    assert "jour férié" in reply.body
    [reply] = await h.say("!permanence besancon")
    assert "du lundi au mercredi, 9 h – 12 h 30 et 13 h 30 – 17 h 30" in reply.body
    assert "Prochaine : mardi 10 novembre 2026 (demain)" in reply.body  # Monday's is over at 18:00
    assert "URSCOP — le jeudi, 14 h – 17 h" in reply.body


async def test_command_lists_every_town_and_explains_unknown_ones(h):
    [reply] = await h.say("!permanence")
    body = reply.body
    assert body.index("Belfort") < body.index("Besançon") < body.index("Lons-le-Saunier")
    [reply] = await h.say("!permanence Dijon")
    assert "Je ne connais pas de permanence à « Dijon »" in reply.body
    assert "Villes connues : Belfort, Besançon et Lons-le-Saunier" in reply.body
    assert "Exemple : !permanence Belfort" in reply.body
    [reply] = await h.say("!permanence be")
    assert "Plusieurs villes correspondent à « be » : Belfort ou Besançon" in reply.body


async def test_command_without_configured_permanences(tmp_path):
    h = await Harness(f"sqlite+aiosqlite:///{tmp_path}/t.db", datetime(2026, 11, 9, 10, 0, tzinfo=PARIS)).start()
    try:
        [reply] = await h.say("!permanence")
        assert "Aucune permanence n'est renseignée" in reply.body
    finally:
        await h.close()

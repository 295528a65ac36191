"""Hostile numbers and text that reach SQL, on SQLite and on a real PostgreSQL: record numbers beyond
INTEGER (PostgreSQL's int4 overflows at 2^31), negative or zero, NUL characters (PostgreSQL refuses
them in text) and markup — a French answer every time, never an internal error."""

from __future__ import annotations

from datetime import datetime

import pytest

from ess_bot.clock import Clock
from ess_bot.services.events import EventService
from ess_bot.services.events import NotFound as EventNotFound
from ess_bot.services.meetings import NotFound as MeetingNotFound
from ess_bot.services.tools import NotFound as ToolNotFound
from ess_bot.services.tools import ToolService
from ess_bot.storage.db import Database
from tests.support import PARIS, Harness, make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
NUMBERS = [0, -1, 2**31 - 1, 2**31, 2**63, 10**30]


@pytest.fixture
async def h(db_url):
    harness = await Harness(db_url, NOW).start()
    try:
        yield harness
    finally:
        await harness.close()


async def test_services_find_nothing_for_numbers_beyond_the_integer_range(db_url):
    db = Database(db_url)
    await db.upgrade()
    config, clock = make_config(db_url), Clock(PARIS, frozen_at=NOW)
    tools, events = ToolService(config, clock), EventService(config, clock)
    try:
        harness = Harness(db_url, NOW, config)
        meetings = harness.app.services.meetings
        for n in NUMBERS:
            async with db.sessions() as s:
                with pytest.raises(ToolNotFound):
                    await tools.get(s, n)
                with pytest.raises(EventNotFound):
                    await events.get(s, n)
                with pytest.raises(MeetingNotFound):
                    await meetings.get(s, n)
        await harness.close()
    finally:
        await db.dispose()


@pytest.mark.parametrize("command, expected", [
    ("!outil voir 999999999", "Je ne trouve pas d'outil n°999999999"),
    ("!outil voir 2147483648", "trop grand"),
    ("!outil retirer 999999999", "Je ne trouve pas d'outil n°999999999"),
    ("!evenement voir 999999999", "Je ne trouve pas d'événement n°999999999"),
    ("!evenement annuler 999999999", "Je ne trouve pas d'événement n°999999999"),
    ("!reunion etat 999999999", "Je ne trouve pas de rencontre n°999999999"),
    ("!reunion dispo 999999999 1=oui", "Je ne trouve pas de rencontre n°999999999"),
    ("!reunion annuler 99999999999999999999", "trop grand"),
])
async def test_record_numbers_reaching_sql_get_a_french_answer(h, command, expected):
    [reply] = await h.say(command, sender="@claire:test", room="!coord:test")
    assert expected in reply.body and "erreur interne" not in reply.body, reply.body


@pytest.mark.parametrize("command", [
    '!evenement ajouter "Forum\x00 <script>x</script>" 15/01/2027 18h lieu="Salle\x00 **A**"',
    '!outil ajouter "Trame\x00 [clic](javascript:alert(1))" https://exemple.org/t description="a\x00b"',
    '!reunion proposer "Rencontre\x00 <img src=x>" 15/12/2026 14h lieu="Dijon\x00"',
    "!outil chercher a\x00b",
])
async def test_nul_characters_and_markup_are_stored_or_refused_without_an_internal_error(h, command):
    sent = await h.say(command, sender="@claire:test", room="!coord:test")
    assert sent and not any("erreur interne" in o.body for o in sent), [o.body for o in sent]
    assert not any("\x00" in (o.body or "") + (o.html or "") for o in sent)

"""Property: whatever line a member types after !suivi or !projet, the bot answers with a French
message — a result or a clean refusal — never an internal error.

Driven through the real dispatcher with a SQLite database and a frozen clock. The bot lives on its own
event loop (hypothesis runs the examples synchronously)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.unit.accompaniment_driver import BGE, COORD, PARIS, URSCOP, Bot

WORDS = [
    "Pixel", "Café", "culturel", '"Café culturel Pixel"', '"Pixel"', "Recyclerie", "émergence", "emerg", "a", "acc",
    "ante", "ante-création", "fin", "post", "1h30", "1", "h", "30", "90min", "90", "min", "1,5h", "0h", "13h",
    "hier", "avant-hier", "mardi", "dernier", "le", "12/11", "31/02", "29/02", "demain", "il", "y", "3", "jours",
    "12", "novembre", "1er", "visio", "indiv", "tel", "collectif", "themes=juridique,financement", "themes=",
    "themes=-", "note=", "note=-", "durée=2h", "date=hier", "date=demain", "dep=25", "dep=75", "forme=scic",
    "forme=s", "nature=reprise", "esus=oui", "collectif=peut-être", "=", '"', '""', '"note libre"',
    '"06 12 34 56 78"', "x@y.fr", "modifier", "annuler", "liste", "projet", "1", "2", "42", "n°1", "#2", "-", ",",
    "nouveau", "voir", "orienter", "urscop", "bge-fc", "aldess", "inconnu", "accepter", "refuser", "issue",
    "creation", "abandon", "emplois=2,5", "emplois=-1", "profil", "femme", "26-49", "50+", "de", "rsa", "nc",
    "qpv=non", "frr=peut-être", "P-2222", "p-", "999999999999", "²", "١٢/١١", "\u00a0", "«", "»", "%", "_",
    "libelle=Nouveau nom", "projet=Pixel", "x" * 70,
    # review fixes: dates next to durations, years, weekdays, old dates, health words, labels in words
    "2h", "15", "nov.", "2025", "2020", "jeudi", "mercredi", "25/11", "31/12", "12/12", "29/02/2024",
    "novembre 2020", "il y a 200 semaines", '"dossier MDPH"', '"RQTH"', "santé", "présentiel", "en",
    "demandeur", "d’emploi", "d'emploi", "indemnisé", "non", "sans", "activité", "moins", "ans", "30", "7", "130",
    "statut=demandeur", "age=50", "acceuil", "nouvaeu", "lsite", "#99999999999999999999", "n°0",
]
token = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=12))
line = st.tuples(st.sampled_from(["!suivi", "!projet", "!suivi modifier", "!suivi annuler", "!projet nouveau",
                                  "!projet issue", "!projet profil", "!projet orienter", "!projet voir",
                                  "!suivi projet", "!projet modifier", "!suivi liste"]),
                 st.lists(token, max_size=8)).map(lambda t: " ".join([t[0], *t[1]]))
speaker = st.sampled_from([("@karim:test", BGE), ("@paul:test", BGE), ("@claire:test", COORD),
                           ("@marc:test", URSCOP), ("@sophie:test", URSCOP), ("@karim:test", COORD)])


@pytest.fixture(scope="module")
def fuzz_bot(tmp_path_factory):
    loop = asyncio.new_event_loop()
    bot = loop.run_until_complete(Bot(tmp_path_factory.mktemp("fuzz"), datetime(2026, 11, 27, 10, 0,
                                                                                 tzinfo=PARIS)).start())
    code = loop.run_until_complete(bot.new_project('!projet nouveau "Café culturel Pixel" dep=25'))
    loop.run_until_complete(bot.say(f"!suivi {code} accueil 1h"))
    loop.run_until_complete(bot.say(f"!projet orienter {code} urscop"))
    try:
        yield loop, bot, code
    finally:
        loop.run_until_complete(bot.close())
        loop.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=line, who=speaker, use_code=st.booleans())
def test_no_input_makes_the_handlers_fail(fuzz_bot, text, who, use_code):
    loop, bot, code = fuzz_bot
    if use_code:
        text = text.replace("Pixel", code)
    sender, room = who
    outs = loop.run_until_complete(bot.say(text, sender=sender, room=room))
    answers = [o for o in outs if o.room_id == room]
    assert answers, f"no answer to {text!r}"
    for out in outs:
        assert "erreur interne" not in out.body, (text, out.body)
        assert "Traceback" not in out.body

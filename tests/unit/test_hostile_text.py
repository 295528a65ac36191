"""Hostile text in every family of commands this module covers (meetings, events, tools, agenda,
permanences, help): typed by members or written in the configuration, it is shown exactly as typed in
the plain body and never becomes markup, HTML, a link or a mention pill in the HTML — the only tags are
the bot's own, the only links the bot's pills and the addresses it checked.

(The test-wide sanitiser check of tests/conftest.py runs over every message here too.)
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from tests.sanitiser import MATRIX_TO, tree
from tests.support import PARIS, started_harness

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[clic](javascript:alert(1))",
    "[@x](https://matrix.to/#/@x:test)",
    "**gras** _it_",
    "un `code` et ``deux`` \\*",
    "# titre & <b>x</b> &amp; 1. > cité",
]
IDS = ["script", "img", "js-link", "fake-pill", "bold-italic", "backticks", "heading-entities"]
HOSTILE_NAME = "<img src=x onerror=alert(1)> **Ève** [@x](https://matrix.to/#/@x:test)"
BOT_TAGS = {"p", "br", "strong", "em", "code", "ul", "ol", "li", "a"}
MEMBERS = {"@claire:test", "@karim:test", "@marc:test", "@admin:test", "@eve:test"}

EXTRA = f"""
[[partners]]
slug = "hostile"
name = {json.dumps("<script>x</script> [clic](javascript:alert(1)) **P**")}
departments = ["21"]

[[members]]
user_id = "@eve:test"
partner = "urscop"
role = "advisor"
name = {json.dumps(HOSTILE_NAME)}

[[permanences]]
partner = "hostile"
town = {json.dumps("Dijon <img src=x onerror=alert(1)>")}
weekday = "tuesday"
hours = "09:00-12:00"
address = {json.dumps("[clic](javascript:alert(1)) **2 rue** `x`, 21000 Dijon")}
"""


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, NOW, EXTRA) as harness:
        yield harness


def check_html(outs, links: tuple[str, ...] = ()) -> None:
    """Every HTML part: only the bot's tags; links only to members (pills) or to ``links``; no tag or
    link drawn from typed text (« clic », « @x », bold « gras »…)."""
    for out in outs:
        if not out.html:
            continue
        items = tree(out.html)
        for i, item in enumerate(items):
            if item[0] != "start":
                continue
            tag, attrs = item[1], dict(item[2])
            assert tag in BOT_TAGS and (tag == "a" or not attrs), (tag, attrs, out.html)
            text = items[i + 1][1] if i + 1 < len(items) and items[i + 1][0] == "text" else ""
            if tag == "a":
                href = attrs.get("href", "")
                assert set(attrs) == {"href"}, out.html
                assert (href.startswith(MATRIX_TO) and href[len(MATRIX_TO):] in MEMBERS) or href in links, out.html
                assert text not in ("clic", "@x"), out.html
            if tag in ("strong", "em", "code"):
                assert text.strip() not in ("gras", "it", "code", "deux", "x", "2 rue", "Ève", "P"), out.html


def shows(outs, text: str) -> list:
    """The messages whose plain body holds ``text`` exactly as typed (at least one)."""
    found = [o for o in outs if text in (o.body or "")]
    assert found, (text, [o.body for o in outs])
    return found


# -- events ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
async def test_event_title_place_reason_and_wrong_values(h, text):
    quoted = f"\"{text}\""
    sent = await h.say(f'!evenement ajouter {quoted} 15/01/2027 18h lieu={quoted} #atelier', sender="@claire:test",
                       room="!coord:test")
    cards = [o for o in sent if o.kind == "text"]
    assert len(cards) == 3
    for card in cards:
        assert card.body.startswith(f"📅 Nouvel événement : {text}\n")
        assert f"- Où : {text}\n" in card.body and "#atelier" in card.body
    assert f"Événement n°1 « {text} » enregistré" in sent[-1].body
    check_html(sent)
    for command in ("!evenement voir 1", "!evenement liste", "!agenda", "!agenda janvier 2027"):
        out = await h.say(command, sender="@claire:test", room="!coord:test")
        shows(out, text)
        check_html(out)
    out = await h.say(f'!evenement modifier 1 lieu="{text} bis"', sender="@claire:test",
                      room="!coord:test")
    shows(out, f"Lieu : {text} → {text} bis")
    check_html(out)
    out = await h.say(f"!evenement annuler 1 {quoted}", sender="@claire:test", room="!coord:test")
    shows(out, f"Raison : {text}")
    check_html(out)
    first_value = re.split(r"[,;+]", text)[0].strip()     # public= is a list: a,b;c+d
    for command, echoed in ((f'!evenement ajouter "T" 15/01/2027 18h public={quoted}', f"« {first_value} »"),
                            (f"!evenement {quoted}", f"Action inconnue : « {text} »"),
                            (f"!evenement ajouter \"T\" 15/01/2027 18h organisateur={quoted}",
                             f"Organisateur inconnu : « {text} »")):
        out = await h.say(command, sender="@claire:test", room="!coord:test")
        shows(out, echoed)
        check_html(out)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "JavaScript:alert(document.cookie)",
                                  "data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox(1)", "mailto:jean@exemple.org"])
async def test_event_links_other_than_web_addresses_are_refused_with_an_example(h, link):
    for command in (f'!evenement ajouter "Forum" 15/01/2027 18h lien={link}',
                    f'!evenement ajouter "Forum" 15/01/2027 18h {link}'):
        [reply] = await h.say(command, sender="@claire:test", room="!coord:test")
        assert f"Lien refusé : « {link} » n'est pas une adresse web" in reply.body, reply.body
        assert "Exemple : !evenement ajouter" in reply.body
        check_html([reply])


async def test_an_event_link_is_clickable_only_as_itself(h):
    link = "https://pixel.example/a)[x](javascript:alert(1)"
    sent = await h.say(f'!evenement ajouter "Forum" 15/01/2027 18h lien={link}', sender="@claire:test",
                       room="!coord:test")
    card = sent[0]
    assert f"Inscription : {link}" in card.body
    hrefs = [dict(i[2])["href"] for i in tree(card.html) if i[0] == "start" and i[1] == "a"]
    assert hrefs == ["https://pixel.example/a%29[x]%28javascript:alert%281%29"]
    check_html(sent, links=tuple(hrefs))


# -- tools ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
async def test_tool_title_description_search_and_tags(h, text):
    quoted = f"\"{text}\""
    out = await h.say(f"!outil chercher {text}")
    shows(out, f"Aucun outil ne correspond à « {text} »")
    check_html(out)
    out = await h.say(f"!outil ajouter {quoted} https://exemple.org/trame description={quoted} #trame")
    shows(out, f"Outil n°1 « {text} » partagé")
    check_html(out)
    for command in ("!outil voir 1", "!outil liste", "!outil liste #trame", "!outil populaires"):
        out = await h.say(command)
        shows(out, text)
        check_html(out, links=("https://exemple.org/trame",))
    [card] = await h.say("!outil voir 1")
    assert f"\n{text}\n" in card.body and "Lien : https://exemple.org/trame" in card.body
    out = await h.say(f'!outil modifier 1 titre="{text} 2"')
    shows(out, f"Titre : {text} → {text} 2")
    check_html(out)
    out = await h.say(f"!outil liste #{text}")
    check_html(out)
    out = await h.say(f"!outil modifier 1 {quoted}")
    shows(out, f"Je n'ai pas compris « {text} »")
    check_html(out)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
                                  "vbscript:x", "file:///etc/passwd", "mailto:jean@exemple.org"])
async def test_tool_links_other_than_web_addresses_are_refused_with_an_example(h, link):
    for command in (f'!outil ajouter "Trame" {link}', f'!outil ajouter "Trame" lien="{link}"'):
        [reply] = await h.say(command)
        assert f"Lien refusé : « {link} » n'est pas une adresse web" in reply.body, reply.body
        assert "Exemple : !outil ajouter" in reply.body
        check_html([reply])


async def test_a_tool_link_to_matrix_to_is_kept_as_text(h):
    await h.say('!outil ajouter "Salon" https://matrix.to/#/@x:test')
    [card] = await h.say("!outil voir 1")
    assert "Lien : https://matrix.to/#/@x:test" in card.body and "<a" not in card.html


# -- meetings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
async def test_meeting_title_place_reason_and_wrong_values(h, text):
    quoted = f"\"{text}\""
    sent = await h.say(f"!reunion proposer {quoted} 15/12/2026 14h, 17/12/2026 9h30 lieu={quoted}",
                       sender="@claire:test", room="!coord:test")
    intro = sent[0]
    assert intro.body.startswith(f"📊 Sondage n°1 — {text} (3 h, {text})\n")
    assert HOSTILE_NAME in intro.body      # the member's configured name, as written
    [poll] = [o for o in sent if o.kind == "poll"]
    question = poll.extra["org.matrix.msc3381.poll.start"]["question"]["org.matrix.msc1767.text"]
    assert question.endswith(f"({text}, sondage n°1)")     # plain text, as typed
    check_html(sent)
    for command, who in (("!reunion etat", "@claire:test"), ("!reunion prochaine", "@claire:test"),
                         ("!reunion liste", "@claire:test"), ("!reunion dispo 1=oui 2=non", "@eve:test"),
                         ("!reunion dispo", "@eve:test")):
        out = await h.say(command, sender=who, room="!coord:test")
        shows(out, text)
        check_html(out)
    out = await h.say("!reunion etat", sender="@claire:test", room="!coord:test")
    shows(out, HOSTILE_NAME)
    for command, echoed in ((f"!reunion dispo 1={quoted}", f"Réponse inconnue : « {text} »"),
                            (f"!reunion {quoted}", f"Action inconnue pour !reunion : « {text} »"),
                            (f"!reunion etat 1 {quoted}", f"Je n'ai pas compris « {text} »")):
        out = await h.say(command, sender="@claire:test", room="!coord:test")
        shows(out, echoed)
        check_html(out)
    out = await h.say("!reunion clore 1", sender="@claire:test", room="!coord:test")
    shows(out, f"📅 {text} : la date est fixée !")
    check_html(out)
    out = await h.say(f"!reunion annuler 1 {quoted}", sender="@claire:test", room="!coord:test")
    shows(out, f"Raison : {text}")
    shows(out, f"❌ {text} du")
    check_html(out)


async def test_dates_beyond_the_horizon_are_refused_in_french(h):
    """Year 9999 overflowed the date arithmetic (an internal error): now a French refusal naming it."""
    for command in ('!evenement ajouter "x" 31/12/9999 23h', '!evenement ajouter "x" 1/1/2032 18h',
                    '!evenement ajouter "x" 12 janvier 9999 18h', '!evenement ajouter "x" 15/01/2027 18h fin="31/12/9999 12h"',
                    '!reunion proposer "x" 31/12/9999 14h', '!reunion proposer "x" entre 1/03/9999 et 15/04/9999',
                    '!reunion proposer "x" limite=31/12/9999'):
        [reply] = await h.say(command, sender="@claire:test", room="!coord:test")
        assert "Date trop lointaine : « " in reply.body and "plus de 5 ans, soit après le 20 novembre 2031" \
            in reply.body and "Exemple" in reply.body, (command, reply.body)
    for command in ('!evenement ajouter "x" 0001-01-01 23h', '!reunion proposer "x" 1/1/1969 14h'):
        [reply] = await h.say(command, sender="@claire:test", room="!coord:test")
        assert "Date trop ancienne : « " in reply.body and "avant 1970" in reply.body, (command, reply.body)
    await h.say('!reunion proposer "R" 15/12/2026 14h', sender="@claire:test", room="!coord:test")
    [reply] = await h.say("!reunion prolonger 1 31/12/9999", sender="@claire:test", room="!coord:test")
    assert "Date trop lointaine : « 31/12/9999 »" in reply.body
    await h.say("!reunion clore 1", sender="@claire:test", room="!coord:test")
    [reply] = await h.say("!reunion deplacer 1 31/12/9999 14h", sender="@claire:test", room="!coord:test")
    assert "Date trop lointaine : « 31/12/9999 »" in reply.body
    # within the horizon: accepted
    sent = await h.say('!evenement ajouter "Loin" 15/11/2031 18h', sender="@claire:test", room="!coord:test")
    assert "enregistré" in sent[-1].body


@pytest.mark.parametrize("command, expected", [
    ("!outil voir 10" + "0" * 30, "trop grand"),
    ("!outil voir " + "9" * 5000, "trop grand"),
    ("!outil voir 2147483648", "trop grand"),
    ("!evenement voir 99999999999", "trop grand"),
    ("!evenement annuler -5", "trop petit"),
    ("!reunion etat 99999999999999999999", "trop grand"),
    ("!reunion dispo 1=oui 99999999999=non", "trop grand"),
    ("!reunion clore 1 date=" + "9" * 5000, "trop grand"),
    ("!reunion proposer \"x\" n=" + "9" * 5000, "doit être un nombre de 1 à 10"),
    ("!reunion proposer \"x\" n=²", "doit être un nombre de 1 à 10"),
    ("!reunion proposer \"x\" durée=" + "9" * 5000 + "h", "Durée illisible"),
    ("!reunion proposer \"x\" limite=" + "9" * 5000, "Je ne comprends pas la date"),
    ("!agenda 99999999999", "Nombre hors limites"),
    ("!agenda " + "9" * 5000, "Nombre hors limites"),
    ("!agenda 12/9999", "Année hors limites"),
    ("!evenement ajouter \"x\" \u0663 janvier 2027 18h", "Il manque la date"),   # an Arabic-Indic 3
    ("!evenement ajouter \"x\" ² janvier 2027 18h", "Événement n°1"),          # folded to 2: 2 January
])
async def test_huge_and_strange_numbers_get_a_french_answer(h, command, expected):
    replies = await h.say(command, sender="@claire:test", room="!coord:test")
    assert any(expected in r.body for r in replies), [r.body for r in replies]
    assert not any("erreur interne" in r.body for r in replies)


# -- permanences, help, agenda ----------------------------------------------------------------------

async def test_permanences_from_a_hostile_configuration_are_shown_as_written(h):
    for command in ("!permanence", "!permanence dijon", "!permanence 21", "!permanence 21000"):
        out = await h.say(command)
        shows(out, "[clic](javascript:alert(1)) **2 rue** `x`, 21000 Dijon")
        shows(out, "<script>x</script> [clic](javascript:alert(1)) **P**")
        check_html(out)
    for text in HOSTILE:
        out = await h.say(f'!permanence "{text}"')
        if "img" not in text:  # the <img …> one is close enough to the town's name to find it
            shows(out, f"« {text} »")
        check_html(out)


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
async def test_help_and_agenda_echo_hostile_words_as_typed(h, text):
    out = await h.say(f"!aide {text}", sender="@eve:test", room="!urscop:test")
    first = text.split()[0]
    shows(out, f"Je ne connais pas la commande !{first.lstrip('!')}")
    check_html(out)
    out = await h.say(f'!agenda "{text}"')
    shows(out, f"Je n'ai pas compris « {text} »")
    check_html(out)


async def test_help_greets_a_hostile_name_as_written(h):
    [reply] = await h.say("!aide", sender="@eve:test", room="!urscop:test")
    assert reply.body.startswith(f"Bonjour {HOSTILE_NAME} !")
    check_html([reply])


async def test_a_10_kb_line_is_answered_without_being_echoed_whole(h):
    words = " ".join(f"mot{i}" for i in range(1500))
    await h.say('!outil ajouter "Trame business plan" https://exemple.org/bp')
    for command in (f"!outil {words}", f"!outil modifier 1 {words}", f"!agenda {words}", f"!permanence {words}",
                    f"!reunion dispo 1={words}", f'!evenement ajouter "x" 15/01/2027 18h lieu="{words}"'):
        [reply] = await h.say(command, sender="@claire:test", room="!coord:test")
        assert len(reply.body) < 1200 and "erreur interne" not in reply.body, (command, reply.body)
    [reply] = await h.say(f"!outil {words}")
    assert "je n'ai cherché que les 12 premiers mots : 1488 autres laissés de côté" in reply.body
    assert "…" in reply.body


@pytest.mark.parametrize("text", HOSTILE[:5], ids=IDS[:5])
async def test_scheduled_reminders_show_hostile_titles_as_typed(h, text):
    """The jobs (event J-N reminders, the poll's reminder and close, the meeting's reminders) word the
    same titles: as typed, no markup."""
    await h.say(f'!evenement ajouter "{text}" 15/12/2026 18h', sender="@claire:test", room="!coord:test")
    await h.say(f'!reunion proposer "{text}" 10/12/2026 14h, 11/12/2026 14h lieu="{text}"', sender="@claire:test",
                room="!coord:test")
    await h.say("!reunion dispo 1=oui 2=non", sender="@karim:test", room="!coord:test")
    sent = []
    for day in (27, 28, 29, 30):
        h.clock.set(datetime(2026, 11, day, 19, 0, tzinfo=PARIS))
        await h.app.scheduler.run_due()
        sent += await h.flush()
    for day in range(1, 16):
        h.clock.set(datetime(2026, 12, day, 9, 30, tzinfo=PARIS))
        await h.app.scheduler.run_due()
        sent += await h.flush()
    bodies = [o.body for o in sent if o.kind in ("text", "notice")]
    assert any(b.startswith(f"⏳ Sondage n°1 — {text} :") for b in bodies), bodies          # poll reminder
    assert any(b.startswith(f"📅 {text} : la date est fixée !") for b in bodies), bodies    # automatic close
    assert any(b.startswith(f"⏰ Rappel : {text} ") for b in bodies), bodies               # meeting reminder
    assert any(b.startswith(f"⏰ Rappel : {text}\n") for b in bodies), bodies              # event reminder card
    check_html(sent)

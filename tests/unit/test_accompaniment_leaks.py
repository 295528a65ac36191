"""Issue 12, accompaniment side: no project name, note, motive, reason or profile in a shared room (the
coordination room, a room of another structure, an unknown room), announcements included; only the
holder (or the coordination) refers a project, and the holder is told of every referral, acceptance
and refusal; every typed or configured text shows exactly as typed, never as markup.

End to end: dispatcher, real SQLite database, frozen clock, drained outbox
(``tests.unit.accompaniment_driver``)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.unit.accompaniment_driver import ALDESS, BGE, CODE, CONFIG, COORD, PARIS, URSCOP, Bot

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # a Friday
DIRECT = "!direct-karim:test"
OTHER = "!autre:test"
# a partner without a room of its own (its members are told in the coordination room)
PESAD = """
[[partners]]
slug = "pesad21"
name = "PESAD 21"
departments = ["21"]

[[members]]
user_id = "@lea:test"
partner = "pesad21"
name = "Léa"

[[members]]
user_id = "@hugo:test"
partner = "pesad21"
name = "Hugo"
"""
LABEL = "Zorglub Secret"
NOTE = "note confidentielle"
MOTIVE = "motif confidentiel"
REASON = "raison confidentielle"
SECRETS = (LABEL, NOTE, MOTIVE, REASON)
SHARED = (COORD, OTHER)


@pytest.fixture
async def bot(tmp_path):
    b = await Bot(tmp_path, NOW, extra=PESAD).start()
    try:
        yield b
    finally:
        await b.close()


def in_rooms(outs, *rooms):
    return [o for o in outs if o.room_id in rooms]


def assert_no_secret(outs, rooms=SHARED, secrets=SECRETS):
    for o in in_rooms(outs, *rooms):
        for secret in secrets:
            assert secret.lower() not in (o.body or "").lower(), (o.room_id, o.body)
            assert secret.lower() not in (o.html or "").lower(), (o.room_id, o.html)


async def zorglub(bot, room=BGE, sender="@karim:test") -> str:
    code = await bot.new_project(f'!projet nouveau "{LABEL}" dep=25', sender=sender, room=room)
    await bot.say(f'!suivi {code} accueil 1h "{NOTE}"', sender=sender, room=room)
    return code


# -- a partner without a room of its own ----------------------------------------------------------

async def test_referral_to_a_partner_without_a_room_shows_only_the_code_in_the_coordination_room(bot):
    code = await zorglub(bot)
    outs = await bot.say(f'!projet orienter {code} pesad21 "{MOTIVE}"')
    [told] = in_rooms(outs, COORD)
    assert told.kind == "text" and set(told.mentions) == {"@lea:test", "@hugo:test"}
    assert "https://matrix.to/#/@lea:test" in told.html and "https://matrix.to/#/@hugo:test" in told.html
    assert f"Nouvelle orientation pour PESAD 21 : le projet {code} vous est proposé par BGE Franche-Comté" in told.body
    assert "son nom et le motif vous sont donnés en message direct" in told.body
    assert f"!projet accepter {code}" in told.body
    [reply] = in_rooms(outs, BGE)
    assert "dans le salon de coordination (par le code du projet seulement)" in reply.body
    # in a direct message, the partner reads the name and the motive of what is proposed to it
    text = await bot.reply_to("!projet liste", sender="@lea:test", room="!direct-lea:test")
    assert f"{LABEL} ({code}), proposé par BGE Franche-Comté (motif : « {MOTIVE} »)" in text
    # accepting in the coordination room: the reply names the code only; the holder's room is told
    outs = await bot.say(f"!projet accepter {code}", sender="@lea:test", room=COORD)
    [reply] = in_rooms(outs, COORD)
    assert reply.body.startswith(f"✅ Orientation acceptée : {code} est maintenant visible pour PESAD 21.")
    [notice] = in_rooms(outs, BGE)
    assert notice.kind == "text" and notice.mentions == ["@karim:test"]
    assert f"PESAD 21 a accepté l'orientation du projet {LABEL} ({code})" in notice.body
    assert_no_secret(outs)
    assert (await bot.reply_to(f"!projet voir {code}", sender="@lea:test", room=COORD)).startswith("🔒")
    assert LABEL in await bot.reply_to(f"!projet voir {code}", sender="@lea:test", room="!direct-lea:test")
    assert_no_secret(bot.sent)


async def test_refusal_typed_in_the_coordination_room_keeps_the_reason_out_of_it(bot):
    code = await zorglub(bot)
    await bot.say(f'!projet orienter {code} pesad21 "{MOTIVE}"', room=DIRECT)
    outs = await bot.say(f'!projet refuser {code} "{REASON}"', sender="@hugo:test", room=COORD)
    [reply] = in_rooms(outs, COORD)
    assert reply.body == f"Orientation refusée : {code}. BGE Franche-Comté en est informé·e."
    [notice] = in_rooms(outs, BGE)
    assert f"PESAD 21 a refusé l'orientation du projet {LABEL} ({code})" in notice.body
    assert f"Raison : « {REASON} »" in notice.body
    assert_no_secret(bot.sent)


async def test_a_holder_without_a_room_is_told_in_the_coordination_room_by_code(bot):
    code = await bot.new_project(f'!projet nouveau "{LABEL}"', sender="@lea:test", room="!direct-lea:test")
    await bot.say(f'!projet orienter {code} urscop "{MOTIVE}"', sender="@lea:test", room="!direct-lea:test")
    outs = await bot.say(f'!projet refuser {code} "{REASON}"', sender="@marc:test", room=URSCOP)
    [told] = in_rooms(outs, COORD)
    assert told.kind == "text" and set(told.mentions) == {"@lea:test", "@hugo:test"}
    assert told.body.startswith(f"❌ URSCOP a refusé l'orientation du projet {code}, proposée par Léa")
    assert f"en message direct avec moi : !suivi projet {code}" in told.body
    assert_no_secret(bot.sent)
    # the reason is in the project's history, in a direct message
    assert f"raison : « {REASON} »" in await bot.reply_to(f"!suivi projet {code}", sender="@lea:test",
                                                           room="!direct-lea:test")


# -- a third-partner referral ---------------------------------------------------------------------

async def test_a_partner_that_accepted_a_project_cannot_pass_it_on(bot):
    code = await zorglub(bot)
    await bot.say(f"!projet orienter {code} urscop")
    await bot.say(f"!projet accepter {code}", sender="@marc:test", room=URSCOP)
    outs = await bot.say(f"!projet orienter {code} aldess", sender="@marc:test", room=URSCOP)
    [reply] = outs
    assert reply.room_id == URSCOP
    assert (f"Le projet {code} est porté par BGE Franche-Comté : seule cette structure (ou la coordination du "
            "réseau) peut l'orienter vers une autre structure") in reply.body
    assert "Exemple" in reply.body
    # nothing reached Aldess, which sees nothing
    assert not in_rooms(bot.sent, ALDESS)
    assert "Aucun projet" in await bot.reply_to(f"!projet voir {code}", sender="@ali:test", room=ALDESS)
    assert "en attente" not in await bot.reply_to("!projet liste", sender="@ali:test", room=ALDESS)


async def test_the_coordination_may_refer_and_the_holder_is_told_of_everything(bot):
    code = await zorglub(bot)
    await bot.say(f"!projet orienter {code} urscop")
    await bot.say(f"!projet accepter {code}", sender="@marc:test", room=URSCOP)
    # Sophie coordinates the network from URSCOP: she may refer BGE's project; BGE is told
    outs = await bot.say(f'!projet orienter {code} aldess "{MOTIVE}"', sender="@sophie:test",
                         room="!direct-sophie:test")
    [proposed] = in_rooms(outs, ALDESS)
    assert f"le projet {LABEL} ({code}) vous est proposé par URSCOP (Sophie)" in proposed.body
    [holder] = in_rooms(outs, BGE)
    assert f"URSCOP (Sophie) a proposé le projet {LABEL} ({code}), porté par BGE Franche-Comté, à Aldess" in holder.body
    assert f"Motif : « {MOTIVE} »" in holder.body
    [reply] = in_rooms(outs, "!direct-sophie:test")
    assert "BGE Franche-Comté, qui porte le projet, en est informé·e" in reply.body
    # the answer goes to the referring partner's room and to the holder's
    outs = await bot.say(f"!projet accepter {code}", sender="@ali:test", room=ALDESS)
    assert [o.room_id for o in outs if o.kind == "text"] == [URSCOP, BGE]
    for o in in_rooms(outs, URSCOP, BGE):
        assert f"Aldess a accepté l'orientation du projet {LABEL} ({code}), proposée par Sophie" in o.body
    # a coordinator of another partner referring from the coordination room: code only there
    other = await bot.new_project('!projet nouveau "Atelier Secret" dep=25')
    outs = await bot.say(f"!projet orienter {other} pesad21", sender="@sophie:test", room=COORD)
    assert_no_secret(outs, secrets=("Atelier Secret",))
    assert "Atelier Secret" in in_rooms(outs, BGE)[0].body
    assert_no_secret(bot.sent)


# -- every command, typed in a shared room ---------------------------------------------------------

async def test_no_name_note_or_profile_in_any_shared_room(bot):
    """A sweep: each family typed in the coordination room, an unknown room and another structure's
    room, by advisors and coordinators; what the bot says there never holds a label, note, motive or
    reason (the people typed some of them, the bot does not repeat them)."""
    code = await zorglub(bot)
    await bot.say(f"!projet profil {code} femme 26-49 rsa")
    other = await bot.new_project('!projet nouveau "Zorglub Bis" dep=25')
    lines = [
        ('!projet nouveau "Zorglub Secret" dep=25', "@karim:test"),          # the same name again
        ('!projet nouveau "Zorglub Tiers" dep=25', "@paul:test"),
        (f"!projet voir {code}", "@claire:test"), ("!projet voir zorglub", "@claire:test"),
        ("!projet voir Zorglub Secret", "@karim:test"), ("!projet liste", "@claire:test"),
        (f"!projet profil {code} homme", "@karim:test"), (f"!projet modifier {code} forme=scic", "@karim:test"),
        (f'!projet modifier {other} libelle="Zorglub Ter"', "@karim:test"),
        (f"!projet modifier {other} libelle=Zorglub", "@karim:test"),
        (f"!projet issue {code} creation emplois=1", "@karim:test"),
        (f'!suivi {code} ante 1h "{NOTE} deux"', "@karim:test"), ('!suivi zorglub accueil 1h', "@claire:test"),
        ('!suivi "Zorglub Secret" accueil 1h', "@karim:test"), ("!suivi zorglub accueil", "@karim:test"),
        (f"!suivi projet {code}", "@claire:test"), ("!suivi liste", "@karim:test"),
        (f'!suivi modifier 1 note="{NOTE} trois"', "@karim:test"), ("!suivi modifier 1 durée=2h", "@karim:test"),
        ("!suivi annuler 2", "@karim:test"),
        (f'!projet orienter {code} urscop "{MOTIVE}"', "@karim:test"),
        (f'!projet refuser {code} "{REASON}"', "@marc:test"),
        (f"!projet orienter {other} urscop", "@karim:test"), (f"!projet accepter {other}", "@marc:test"),
        (f"!projet orienter {code} pesad21", "@claire:test"), ("!projet accepter zorglub", "@lea:test"),
        ("!rapport 2026", "@claire:test"), ("!rapport 2026", "@karim:test"),
    ]
    for room in (COORD, OTHER):
        for line, sender in lines:
            outs = await bot.say(line, sender=sender, room=room)
            assert in_rooms(outs, room), (line, room)
            assert_no_secret(outs, secrets=(*SECRETS, "Zorglub Bis", "Zorglub Tiers", "Zorglub Ter"))
            for o in in_rooms(outs, room):
                assert "genre : " not in o.body and "RSA" not in o.body, (line, o.body)
    # a record typed in the coordination room, then its message deleted: the notice names the code only
    await bot.say(f'!suivi {code} accueil 1h "{NOTE}"', room=COORD)
    outs = await bot.redact(bot.last_event_id, room=COORD)
    assert outs and outs[0].body.startswith("🗑️") and code in outs[0].body
    assert_no_secret(bot.sent, rooms=(COORD, OTHER),
                     secrets=(*SECRETS, "Zorglub Bis", "Zorglub Tiers", "Zorglub Ter"))
    # another structure's room is shared with that structure only: nothing of BGE's project there
    for line, sender in ((f"!projet voir {code}", "@karim:test"), (f"!suivi {code} accueil 1h", "@karim:test"),
                         (f'!projet modifier {code} libelle="Zorglub Quatre"', "@karim:test")):
        outs = await bot.say(line, sender=sender, room=ALDESS)
        assert_no_secret(outs, rooms=(ALDESS,), secrets=(LABEL, NOTE, "Zorglub Quatre"))


async def test_an_ambiguous_label_in_a_shared_room_names_codes_and_holders(bot):
    one = await zorglub(bot)
    two = await bot.new_project('!projet nouveau "Zorglub Bis" dep=25', sender="@marc:test", room=URSCOP)
    text = await bot.reply_to("!projet voir zorglub", sender="@claire:test", room=COORD)
    assert f"{one} (BGE Franche-Comté)" in text and f"{two} (URSCOP)" in text
    assert LABEL not in text and "Zorglub Bis" not in text


# -- escaping: hostile values show as typed, never as markup ----------------------------------------

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[clic](javascript:alert(1))",
           "[@x](https://matrix.to/#/@x:test)", "**gras** _it_ `code`"]
ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "ul", "ol", "li", "a"}


def assert_shown_as_typed(out, typed: str, pills: set[str] = frozenset()):
    """``typed`` is in the plain body exactly, without a stray backslash; the HTML holds no tag but the
    renderer's own, and no link but the bot's pills to ``pills``."""
    assert typed in out.body, (typed, out.body)
    assert "\\" not in out.body, out.body
    html = out.html or ""
    tags = set(re.findall(r"<\s*/?\s*([a-zA-Z0-9]+)", html))
    assert tags <= ALLOWED_TAGS, (tags, html)
    assert "<script" not in html and "<img" not in html and "onerror=" not in html.replace("onerror=alert", "")
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert set(hrefs) <= {f"https://matrix.to/#/{u}" for u in pills}, (hrefs, html)
    if "<strong>" in html:  # the bot's own emphasis only: the typed asterisks stay asterisks
        assert "<strong>gras</strong>" not in html
    assert "<em>it</em>" not in html and "<code>code</code>" not in html


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_texts_show_as_typed(bot, hostile):
    label = f"Projet {hostile}"
    outs = await bot.say(f'!projet nouveau "{label}" dep=25', room=DIRECT)
    [created] = outs
    assert_shown_as_typed(created, label)
    code = CODE.search(created.body).group(0)
    assert_shown_as_typed((await bot.say(f"!projet voir {code}", room=DIRECT))[0], label)
    assert_shown_as_typed((await bot.say("!projet liste", room=DIRECT))[0], label)
    # a note, in the reply and in the history
    [logged] = await bot.say(f'!suivi {code} accueil 1h "note {hostile}"', room=DIRECT)
    assert_shown_as_typed(logged, f"Note : « note {hostile} »")
    assert_shown_as_typed((await bot.say("!suivi liste", room=DIRECT))[0], f"« note {hostile} »")
    # a motive, in the announcement to the partner's room
    outs = await bot.say(f'!projet orienter {code} urscop "motif {hostile}"', room=DIRECT)
    [announce] = in_rooms(outs, URSCOP)
    assert_shown_as_typed(announce, f"Motif : « motif {hostile} »", pills={"@marc:test", "@sophie:test"})
    assert label in announce.body
    assert_shown_as_typed((await bot.say("!projet liste", sender="@marc:test", room=URSCOP))[0],
                          f"(motif : « motif {hostile} »)")
    # a reason, in the holder's room
    outs = await bot.say(f'!projet refuser {code} "raison {hostile}"', sender="@marc:test", room=URSCOP)
    [told] = in_rooms(outs, BGE)
    assert_shown_as_typed(told, f"Raison : « raison {hostile} »", pills={"@karim:test"})
    assert_shown_as_typed((await bot.say(f"!suivi projet {code}", room=DIRECT))[0], f"raison : « raison {hostile} »")
    # a value echoed in an error
    assert_shown_as_typed((await bot.say(f'!suivi liste "{hostile}"', room=DIRECT))[0], f"reçu : « {hostile} »")
    assert_shown_as_typed((await bot.say(f'!projet voir "{hostile} ailleurs"', room=DIRECT))[0],
                          f"« {hostile} ailleurs »")
    assert_shown_as_typed((await bot.say(f'!projet issue {code} creation "{hostile}"', room=DIRECT))[0],
                          f"« {hostile} »")
    [period] = await bot.say(f"!rapport {hostile}", room=DIRECT)
    assert_shown_as_typed(period, f"« {hostile} »")
    # a label changed: the old and new values in the echo
    [changed] = await bot.say(f'!projet modifier {code} libelle="Autre {hostile}"', room=DIRECT)
    assert_shown_as_typed(changed, f"nom : {label} → Autre {hostile}")


HOSTILE_CONFIG = CONFIG.replace('name = "URSCOP"', 'name = "[@x](https://matrix.to/#/@x:test) <b>URS</b>"').replace(
    'name = "Marc"', 'name = "<img src=x onerror=alert(1)> **Marc**"')


async def test_hostile_names_in_the_configuration_show_as_typed(tmp_path):
    bot = await Bot(tmp_path, NOW, config=HOSTILE_CONFIG).start()
    partner, marc = "[@x](https://matrix.to/#/@x:test) <b>URS</b>", "<img src=x onerror=alert(1)> **Marc**"
    try:
        code = await bot.new_project('!projet nouveau "Café culturel Pixel" dep=25')
        outs = await bot.say(f"!projet orienter {code} urscop")
        [announce] = in_rooms(outs, URSCOP)
        assert_shown_as_typed(announce, f"Nouvelle orientation pour {partner}", pills={"@marc:test", "@sophie:test"})
        assert marc in announce.body
        outs = await bot.say(f"!projet accepter {code}", sender="@marc:test", room=URSCOP)
        [told] = in_rooms(outs, BGE)
        assert_shown_as_typed(told, f"{partner} a accepté l'orientation", pills={"@karim:test"})
        await bot.say(f"!suivi {code} accueil 1h", sender="@marc:test", room=URSCOP)
        [history] = await bot.say(f"!suivi projet {code}", room=DIRECT)
        assert_shown_as_typed(history, f"{marc} ({partner})")
        [report, *files] = await bot.say("!rapport 2026", sender="@claire:test", room=COORD)
        assert_shown_as_typed(report, f"{partner} 1 (1 h)")
        assert [f.kind for f in files] == ["file", "file", "image"]
        [refused] = await bot.say("!rapport 2026 partenaire=<b>x</b>", sender="@claire:test", room=COORD)
        assert_shown_as_typed(refused, "Structure inconnue : « <b>x</b> »")
    finally:
        await bot.close()


# -- a project reference of 1,000 words (issue 12, item 8) --------------------------------------------

@pytest.mark.parametrize("line", ["!suivi {words} accueil 1h", "!suivi {words}", "!projet voir {words}",
                                  "!suivi projet {words}", "!projet accepter {q}", "!projet profil {q} femme",
                                  "!projet orienter {q} urscop", '!suivi modifier 1 projet="{words}"'])
async def test_a_huge_project_reference_gets_a_french_answer_naming_the_limit(bot, line):
    await zorglub(bot)
    words = " ".join(["zorglub"] * 1000)
    text = await bot.reply_to(line.format(words=words, q=f'"{words}"'), room=DIRECT)
    assert "Référence de projet trop longue (1\u202f000 mots et 7\u202f999 caractères" in text, text[:300]
    assert "au plus 12 mots et 80 caractères" in text and "par exemple P-7K3Q" in text and "E-" not in text


@pytest.mark.parametrize("line", ["!suivi P-7K3Q {words} accueil 1h", '!projet nouveau "Pixel" {words}',
                                  "!projet accepter P-7K3Q {words}", "!projet {words}", "!suivi liste {words}"])
async def test_a_huge_line_is_not_echoed_whole(bot, line):
    text = await bot.reply_to(line.format(words=" ".join(["zorglub"] * 1000)), room=DIRECT)
    assert "E-" not in text and text.count("zorglub") <= 40, text[:300]

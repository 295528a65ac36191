"""!projet and !suivi end to end: dispatcher, real SQLite database, frozen clock, drained outbox."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from ess_bot.storage.accompaniments import Accompaniment
from tests.unit.accompaniment_driver import ALDESS, ANNOUNCES, BGE, CODE, COORD, PARIS, URSCOP, Bot

DIRECT = "!direct-karim:test"

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # a Friday


@pytest.fixture
async def bot(tmp_path):
    b = await Bot(tmp_path, NOW).start()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def pixel(bot) -> str:
    return await bot.new_project('!projet nouveau "Café culturel Pixel" dep=25 forme=association collectif')


async def records(bot) -> list[Accompaniment]:
    async with bot.app.db.sessions() as s:
        return list((await s.scalars(select(Accompaniment).order_by(Accompaniment.id))).all())


# -- !projet nouveau -----------------------------------------------------------------------------

async def test_new_project_echoes_what_was_understood(bot):
    text = await bot.reply_to('!projet nouveau « Café culturel Pixel » dep=25 forme=asso collectif')
    code = CODE.search(text).group(0)
    assert text.startswith(f"✅ Projet {code} créé — Café culturel Pixel")
    for part in ("département : 25 (Doubs)", "nature : création (par défaut)", "forme juridique envisagée : association",
                 "collectif : oui", "agrément ESUS : non (par défaut)", f"!suivi {code} accueil 1h"):
        assert part in text


async def test_new_project_department(bot):
    text = await bot.reply_to('!projet nouveau "Recyclerie"')
    assert "département" in text and "25, 39, 70 et 90" in text and "dep=" in text
    # a partner covering a single department gets it by default
    text = await bot.reply_to('!projet nouveau "Tiers-lieu du Morvan"', sender="@ali:test", room=ALDESS)
    assert "département : 58 (Nièvre) (par défaut)" in text
    text = await bot.reply_to("!projet nouveau Recyclerie du Haut-Doubs 25 reprise scic")
    assert "Recyclerie du Haut-Doubs" in text and "nature : reprise" in text and "SCIC" in text
    text = await bot.reply_to('!projet nouveau "X" dep=75')
    assert "« 75 »" in text and "Exemple" in text


async def test_new_project_refuses_contact_details(bot):
    text = await bot.reply_to('!projet nouveau "Projet de jean.dupont@example.org" dep=25')
    assert "RGPD" in text and "jean.dupont@example.org" in text


# -- !suivi --------------------------------------------------------------------------------------

async def test_log_by_label_and_reply_format(bot, pixel):
    text = await bot.reply_to("!suivi Pixel émergence 1h30 mardi")
    assert text.splitlines()[0] == (f"✅ Suivi n°1 enregistré — Café culturel Pixel ({pixel}) · émergence · "
                                    "individuel · 1 h 30 · mardi 24 novembre 2026")
    assert "!suivi annuler 1" in text
    text = await bot.reply_to('!suivi ante "premier plan de financement" 45 min visio hier '
                              f'themes=juridique, financement {pixel.lower()}')
    assert text.splitlines()[0] == (f"✅ Suivi n°2 enregistré — Café culturel Pixel ({pixel}) · ante-création · visio · "
                                    "45 min · jeudi 26 novembre 2026 · thèmes : juridique, financement")
    assert "Note : « premier plan de financement »" in text
    text = await bot.reply_to('!suivi "Café culturel Pixel" accueil 2h "appel" ')
    assert "n°3" in text and "vendredi 27 novembre 2026" in text and "« appel »" in text
    rows = await records(bot)
    assert [(r.phase, r.modality, r.duration_minutes, r.advisor, r.partner) for r in rows] == [
        ("emergence", "individuel", 90, "@karim:test", "bge-fc"), ("ante_creation", "visio", 45, "@karim:test", "bge-fc"),
        ("accueil", "individuel", 120, "@karim:test", "bge-fc")]
    assert rows[0].source_event_id and rows[0].source_event_id != rows[1].source_event_id


async def test_ambiguous_label(bot, pixel):
    other = await bot.new_project('!projet nouveau "Pixel Art" dep=70')
    text = await bot.reply_to("!suivi Pixel émergence 1h30 hier")
    assert "Plusieurs projets" in text and pixel in text and other in text and "Exemple" in text
    assert await records(bot) == []


@pytest.mark.parametrize("line, words", [
    # nothing typed wrong, something missing: the message names what is missing
    ("!suivi Pixel 1h30", ["Il manque la phase"]),
    ("!suivi Pixel accueil", ["Il manque la durée"]),
    ("!suivi accueil 1h", ["Il manque le projet"]),
    ("!suivi Pixel", ["la phase et la durée"]),
    # a bad value: the message names it
    ("!suivi Pixel a 1h", ["« a »"]),                        # 1 letter: not a phase, so not understood
    ("!suivi Pixel emergense 1h", ["« emergense »"]),
    ("!suivi Pixel accueil 1h demain", ["« demain »", "futur"]),
    ("!suivi Pixel accueil 1h 31/02", ["« 31/02 »", "n'existe pas"]),
    ("!suivi Pixel accueil 1h75", ["« 1h75 »"]),
    ("!suivi Pixel accueil 1h 2h", ["« 2h »", "deux fois"]),
    ("!suivi Pixel accueil 1h themes=astrologie", ["« astrologie »"]),
    ("!suivi Pixel accueil 1h couleur=bleu", ["« couleur= »"]),
    ('!suivi Pixel accueil 1h "appeler le 06 12 34 56 78"', ["RGPD", "« 06 12 34 56 78 »"]),
    ('!suivi Pixel accueil 1h "a" "b"', ["Une seule note", "« a »", "« b »"]),
    ("!suivi P-2222 accueil 1h", ["Aucun projet P-2222"]),
    ('!suivi Pixel accueil 1h "non fermé', ["guillemet fermant"]),
])
async def test_missing_or_bad_fields_are_explained(bot, pixel, line, words):
    text = await bot.reply_to(line)
    for word in words:
        assert word in text, (line, text)
    # and a way to write it: an example (a whole command, or values such as 1h30)
    assert re.search(r"[Ee]xemples? ?: (!suivi \S+|\S+)", text), text
    assert await records(bot) == []


async def test_list_modify_cancel(bot, pixel):
    await bot.say(f"!suivi {pixel} émergence 1h30 hier")
    await bot.say(f"!suivi {pixel} financement 45min")
    text = await bot.reply_to("!suivi liste")
    assert "2 derniers suivis" in text and "2 h 15" in text
    assert text.index("n°2") < text.index("n°1")
    text = await bot.reply_to("!suivi modifier 1 durée=2h")
    assert "Suivi n°1 modifié (durée : 1 h 30 → 2 h)" in text
    text = await bot.reply_to("!suivi modifier 1 visio date=mardi phase=ante")
    assert "modalité : individuel → visio" in text and "mardi 24 novembre 2026" in text and "ante-création" in text
    assert "Rien à modifier" in await bot.reply_to("!suivi modifier 1")
    text = await bot.reply_to("!suivi modifier Pixel durée=2h")
    assert "Numéro du suivi attendu" in text and "« Pixel »" in text
    text = await bot.reply_to("!suivi annuler 1")
    assert text.startswith("🗑️ Suivi n°1 annulé")
    assert "déjà annulé" in await bot.reply_to("!suivi annuler 1")
    assert "Aucun suivi n°99" in await bot.reply_to("!suivi annuler 99")
    text = await bot.reply_to("!suivi liste")
    assert "n°1" not in text and "n°2" in text


async def test_permission_refusal_for_another_advisor(bot, pixel):
    await bot.say(f"!suivi {pixel} émergence 1h30 hier")
    for line in ("!suivi annuler 1", "!suivi modifier 1 durée=3h"):
        text = await bot.reply_to(line, sender="@paul:test")
        assert "quelqu'un d'autre" in text
    assert not (await records(bot))[0].cancelled
    # a coordinator may
    assert "annulé" in await bot.reply_to("!suivi annuler 1", sender="@claire:test", room=COORD)


async def test_redacting_the_command_cancels_its_record(bot, pixel):
    await bot.say(f"!suivi {pixel} émergence 1h30 hier")
    command_event = bot.last_event_id
    await bot.say(f"!suivi {pixel} accueil 1h")
    assert await bot.redact("$unrelated") == []
    outs = await bot.redact(command_event)
    assert len(outs) == 1 and outs[0].room_id == BGE and outs[0].kind == "notice"
    assert outs[0].body.startswith("🗑️ Suivi n°1 annulé (message d'origine supprimé)")
    rows = await records(bot)
    assert rows[0].cancelled and rows[0].cancelled_by == "@karim:test" and not rows[1].cancelled
    assert await bot.redact(command_event) == []  # a redelivered redaction does nothing more


async def test_where_and_who(bot, pixel):
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h", room=ANNOUNCES)
    assert "n'est pas disponible dans un salon d'annonces" in text
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h", sender="@inconnu:test")
    assert "Je ne vous trouve pas parmi les membres" in text
    # direct messages and other rooms are fine
    assert "✅" in await bot.reply_to(f"!suivi {pixel} accueil 1h", room=DIRECT)
    assert "✅" in await bot.reply_to(f"!suivi {pixel} accueil 1h", room="!autre:test")


# -- referral, visibility, outcome ---------------------------------------------------------------

async def test_referral_flow_across_two_partners(bot, pixel):
    await bot.say(f"!suivi {pixel} émergence 1h30 hier")
    outs = await bot.say(f'!projet orienter {pixel} urscop "passage en SCOP"')
    announce = [o for o in outs if o.room_id == URSCOP]
    notice = [o for o in outs if o.room_id == BGE]
    assert len(announce) == 1 and len(notice) == 1
    assert announce[0].kind == "text" and set(announce[0].mentions) == {"@marc:test", "@sophie:test"}
    assert "https://matrix.to/#/@marc:test" in announce[0].html and "passage en SCOP" in announce[0].body
    assert f"!projet accepter {pixel}" in announce[0].body
    assert notice[0].kind == "notice" and "proposée à URSCOP" in notice[0].body
    # not visible before acceptance
    assert "Aucun projet" in await bot.reply_to(f"!projet voir {pixel}", sender="@marc:test", room=URSCOP)
    assert "Aucun projet" in await bot.reply_to(f"!suivi {pixel} accueil 1h", sender="@marc:test", room=URSCOP)
    assert "en attente" in await bot.reply_to("!projet liste", sender="@marc:test", room=URSCOP)
    # acceptance: the origin room is told (m.text mentioning the referrer)
    outs = await bot.say(f"!projet accepter {pixel}", sender="@marc:test", room=URSCOP)
    told = [o for o in outs if o.room_id == BGE]
    assert len(told) == 1 and told[0].kind == "text" and told[0].mentions == ["@karim:test"]
    assert "URSCOP a accepté" in told[0].body
    assert any(o.room_id == URSCOP and "Orientation acceptée" in o.body for o in outs)
    # now visible to the receiving partner's advisors
    text = await bot.reply_to("!projet voir Pixel", sender="@marc:test", room=URSCOP)
    assert "Café culturel Pixel" in text and "acceptée" in text
    assert "✅ Suivi n°2" in await bot.reply_to(f"!suivi {pixel} ante 1h", sender="@marc:test", room=URSCOP)
    text = await bot.reply_to(f"!suivi projet {pixel}")
    assert "BGE Franche-Comté : 1 suivi, 1 h 30" in text and "URSCOP : 1 suivi, 1 h" in text
    assert "Marc" in text and "Karim" in text
    # still not visible to a third partner
    assert "Aucun projet" in await bot.reply_to(f"!projet voir {pixel}", sender="@ali:test", room=ALDESS)


async def test_referral_refused(bot, pixel):
    await bot.say(f"!projet orienter {pixel} urscop")
    assert "en attente" in await bot.reply_to(f"!projet accepter {pixel}", sender="@ali:test", room=ALDESS)
    outs = await bot.say(f'!projet refuser {pixel} "hors de notre champ"', sender="@marc:test", room=URSCOP)
    told = [o for o in outs if o.room_id == BGE]
    assert len(told) == 1 and "refusé" in told[0].body and "hors de notre champ" in told[0].body
    assert "Aucun projet" in await bot.reply_to(f"!projet voir {pixel}", sender="@marc:test", room=URSCOP)


async def test_profile_modify_and_outcome(bot, pixel):
    text = await bot.reply_to(f"!projet profil {pixel} femme 26-49 de-longue-duree rsa qpv=non")
    for part in ("genre : femme", "26–49 ans", "demandeur d'emploi de longue durée", "RSA", "QPV (quartier prioritaire) : non"):
        assert part in text
    assert "ambigu" in await bot.reply_to(f"!projet profil {pixel} de")
    assert "« martien »" in await bot.reply_to(f"!projet profil {pixel} martien")
    text = await bot.reply_to(f"!projet modifier {pixel} forme=scic esus=demandé")
    assert "forme juridique : association → SCIC" in text and "agrément ESUS : non → demandé" in text
    text = await bot.reply_to(f"!projet issue {pixel} creation emplois=2,5")
    assert "création le 27 novembre 2026, forme : SCIC, emplois créés : 2,5 ETP" in text
    text = await bot.reply_to(f"!projet issue {pixel} création forme=scop emplois=2 hier")
    assert "Issue mise à jour" in text and "26 novembre 2026" in text
    assert "forme juridique : SCIC → SCOP" in text and "emplois créés : 2,5 ETP → 2 ETP" in text
    assert "Issue : création" in await bot.reply_to(f"!projet voir {pixel}")
    assert "issue : création" in await bot.reply_to("!projet liste")
    assert "« création »" in await bot.reply_to(f"!projet issue {pixel} abandon emplois=2")
    text = await bot.reply_to(f"!projet issue {pixel}")
    assert "Quelle issue" in text and "Exemple" in text


async def test_help(bot):
    text = await bot.reply_to("!aide suivi")
    assert "!suivi annuler" in text and "Exemples" in text
    text = await bot.reply_to("!projet")
    assert "!projet orienter" in text
    text = await bot.reply_to("!suivi")
    assert "Syntaxe" in text


async def test_details_only_in_private_places(bot, pixel):
    """A reply is read by the whole room: a project's details are shown only in a direct message or in
    the room of a partner that may see the project; lists only in a direct message or one's own room."""
    await bot.say(f"!suivi {pixel} émergence 1h30 hier")
    await bot.say(f"!projet orienter {pixel} urscop")
    await bot.say(f"!projet accepter {pixel}", sender="@marc:test", room=URSCOP)
    details = (f"!projet voir {pixel}", f"!suivi projet {pixel}", f"!projet profil {pixel} femme")
    for line in (*details, "!projet liste", "!suivi liste"):
        for room in (COORD, ALDESS, "!autre:test"):
            text = await bot.reply_to(line, room=room)
            assert text.startswith("🔒") and "message direct" in text, (line, room, text)
            assert "Café culturel Pixel" not in text
        assert not (await bot.reply_to(line, room=DIRECT)).startswith("🔒")
        assert not (await bot.reply_to(line, room=BGE)).startswith("🔒")
    # URSCOP accepted the project: its details may be shown in URSCOP's room, whoever asks
    for line in details:
        assert not (await bot.reply_to(line, room=URSCOP)).startswith("🔒"), line
    # lists are personal: only in one's own room
    for line in ("!projet liste", "!suivi liste"):
        assert (await bot.reply_to(line, room=URSCOP)).startswith("🔒")
    # the coordinator, in the coordination room, is asked to write privately too
    assert (await bot.reply_to(f"!projet voir {pixel}", sender="@claire:test", room=COORD)).startswith("🔒")
    # an accepted partner reads it in its own room
    assert "Café culturel Pixel" in await bot.reply_to(f"!projet voir {pixel}", sender="@marc:test", room=URSCOP)
    # writing still works in shared rooms, without the label
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h", room=COORD)
    assert text.startswith("✅") and pixel in text and "Café culturel Pixel" not in text

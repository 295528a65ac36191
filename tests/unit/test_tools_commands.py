"""!outil through the dispatcher (Harness on SQLite): sharing, files by reply, search and re-sending,
lists, modification and removal rights, popularity."""

from datetime import datetime

import pytest
from sqlalchemy import select

from ess_bot.storage.tools_events import RoomFile
from tests.support import PARIS, Harness

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
ADD = ('!outil ajouter "Trame de business plan ESS" https://exemple.org/bp.docx #businessplan #scop type=trame '
       'phase=ante')


@pytest.fixture
async def h(tmp_path):
    harness = await Harness(f"sqlite+aiosqlite:///{tmp_path}/t.db", NOW).start()
    yield harness
    await harness.close()


def file_event(event_id="$file1", sender="@karim:test", room="!bge:test", **content):
    body = {"msgtype": "m.file", "body": "Grille_diagnostic-ESUS.xlsx", "url": "mxc://test/grille",
            "info": {"mimetype": "application/vnd.ms-excel", "size": 2048}} | content
    return dict(kind="file", event_id=event_id, sender=sender, room_id=room, msgtype=body["msgtype"], content=body)


async def test_add_with_a_link_then_find_it_with_typos_and_accents(h):
    [reply] = await h.say(ADD)
    assert "Outil n°1 « Trame de business plan ESS » partagé (trame · ante-création, lien)" in reply.body
    assert "BGE Franche-Comté" in reply.body and "#businessplan #scop" in reply.body
    [reply] = await h.say("!outil BUISNESS plan")
    assert reply.kind == "notice"
    assert reply.body.startswith("📎 Trame de business plan ESS — outil n°1 (trame · ante-création)")
    assert "Lien : https://exemple.org/bp.docx" in reply.body


async def test_several_results_are_listed_with_their_links(h):
    await h.say(ADD)
    await h.say('!outil ajouter "Plan de financement" https://exemple.org/pf.xlsx type=tableur #businessplan')
    [reply] = await h.say("!outil #businessplan")
    assert reply.body.startswith("🔎 2 outils correspondent à « #businessplan » :")
    assert "1. n°" in reply.body and "https://exemple.org/pf.xlsx" in reply.body and "!outil voir" in reply.body
    [reply] = await h.say("!outil plan zorglub")
    assert "Aucun outil ne contient tous les mots" in reply.body
    [reply] = await h.say("!outil zorglub")
    assert "Aucun outil ne correspond à « zorglub »" in reply.body and "!outil ajouter" in reply.body


async def test_file_seen_then_added_by_reply_and_resent_without_upload(h):
    assert await h.event(**file_event()) == []  # recorded silently
    [reply] = await h.say('!outil ajouter "Grille de diagnostic ESUS" #esus type=grille', reply_to="$file1")
    assert "Outil n°1 « Grille de diagnostic ESUS » partagé (grille de diagnostic, fichier)" in reply.body
    card, sent = await h.say("!outil esus", event_id="$ask")
    assert "Fichier : Grille_diagnostic-ESUS.xlsx (ci-dessous)" in card.body
    assert sent.kind == "file" and sent.data is None and sent.reply_to == "$ask"
    assert sent.extra["url"] == "mxc://test/grille"
    assert sent.extra["info"] == {"mimetype": "application/vnd.ms-excel", "size": 2048}
    assert sent.filename == "Grille_diagnostic-ESUS.xlsx" and sent.mimetype == "application/vnd.ms-excel"


async def test_encrypted_image_is_resent_with_its_file_content_and_title_defaults_to_name(h):
    enc = {"url": "mxc://test/enc", "key": {"k": "abc"}, "iv": "iv", "hashes": {"sha256": "h"}, "v": "v2"}
    await h.event(**file_event("$img", msgtype="m.image", body="support_atelier-gouvernance.png", url=None,
                               file=enc))
    [reply] = await h.say("!outil ajouter #gouvernance type=support", reply_to="$img")
    assert "« support atelier gouvernance »" in reply.body
    card, sent = await h.say("!outil voir 1")
    assert sent.kind == "image" and sent.extra["file"] == enc and "url" not in sent.extra


async def test_reply_to_an_unknown_file_is_explained(h):
    [reply] = await h.say('!outil ajouter "Titre" #x', reply_to="$jamais-vu")
    assert "Je ne retrouve pas le fichier auquel vous répondez" in reply.body
    assert "!outil ajouter" in reply.body


async def test_files_of_strangers_and_non_files_are_not_recorded(h):
    await h.event(**file_event("$f-stranger", sender="@inconnu:test"))
    await h.event(**file_event("$f-text", msgtype="m.text", body="hello"))
    async with h.app.db.sessions() as s:
        assert (await s.scalars(select(RoomFile))).all() == []


async def test_bad_input_is_refused_in_french_with_an_example(h):
    [reply] = await h.say('!outil ajouter "Sans lien"')
    assert "Il faut un lien (https://…)" in reply.body and "Exemple : !outil ajouter" in reply.body
    [reply] = await h.say('!outil ajouter "Titre" https://exemple.org/a type=brochure')
    assert "Valeur inconnue pour type d'outil : « brochure »" in reply.body and "Exemple" in reply.body
    [reply] = await h.say('!outil ajouter "Titre" https://exemple.org/a couleur=bleu')
    assert "Option inconnue : « couleur= »" in reply.body
    assert "type=" in reply.body
    [reply] = await h.say('!outil ajouter "Titre" https://exemple.org/a https://exemple.org/b')
    assert "Un seul lien par outil" in reply.body
    [reply] = await h.say('!outil ajouter "Titre" ftp://exemple.org/a')
    assert "Lien refusé : « ftp://exemple.org/a » n'est pas une adresse web" in reply.body
    assert "Exemple : !outil ajouter" in reply.body
    await h.say(ADD)
    [reply] = await h.say('!outil ajouter "Autre titre" https://exemple.org/bp.docx')
    assert "Ce lien est déjà partagé : outil n°1" in reply.body
    [reply] = await h.say("!outil voir 99")
    assert "Je ne trouve pas d'outil n°99" in reply.body
    [reply] = await h.say("!outil voir abc")
    assert "Numéro de l'outil attendu, par exemple !outil voir 3 (reçu : « abc »)" in reply.body


async def test_list_by_tag_type_and_phase(h):
    await h.say(ADD)
    await h.say('!outil ajouter "Statuts types SCIC" https://exemple.org/scic type=modele #scic phase=emergence')
    [reply] = await h.say("!outil liste")
    assert "Outils partagés du réseau (2)" in reply.body
    [reply] = await h.say("!outil liste #SCIC")
    assert "Outils avec le mot-clé #SCIC (1)" in reply.body and "Statuts types SCIC" in reply.body
    [reply] = await h.say("!outil liste modèle de statuts")
    assert "Outils de type « modèle de statuts » (1)" in reply.body
    [reply] = await h.say("!outil liste ante-création")
    assert "Outils pour la phase « ante-création » (1)" in reply.body and "business plan" in reply.body
    [reply] = await h.say("!outil liste #inconnu")
    assert "Aucun outil avec le mot-clé « #inconnu »" in reply.body and "#businessplan" in reply.body
    [reply] = await h.say("!outil liste n'importe")
    assert "Je ne reconnais ni un type ni une phase" in reply.body


async def test_modify_and_remove_are_for_the_contributing_partner_or_a_coordinator(h):
    await h.say(ADD, sender="@karim:test")  # BGE advisor
    [reply] = await h.say("!outil modifier 1 type=guide", sender="@marc:test")  # URSCOP advisor
    assert "Seuls les membres de la structure qui a partagé cet outil (BGE Franche-Comté)" in reply.body
    [reply] = await h.say("!outil retirer 1", sender="@marc:test")
    assert "Seuls les membres" in reply.body
    [reply] = await h.say('!outil modifier 1 type=guide phase=aucune tags=plan titre="Trame BP"', sender="@karim:test")
    assert "Outil n°1 « Trame BP » modifié" in reply.body
    assert "Type : trame → guide" in reply.body and "Phase : ante-création → aucune" in reply.body
    assert "Mots-clés : #businessplan #scop → #plan (ajouté : #plan ; retirés : #businessplan #scop)" in reply.body
    [reply] = await h.say("!outil modifier 1 n'importe", sender="@karim:test")
    assert "Je n'ai pas compris « n'importe »" in reply.body
    [reply] = await h.say("!outil retirer 1", sender="@claire:test")  # coordinator of any partner
    assert "Outil n°1 « Trame BP » retiré" in reply.body
    [reply] = await h.say("!outil trame")
    assert "Aucun outil ne correspond" in reply.body


async def test_popular_counts_every_tool_served(h):
    await h.say(ADD)
    await h.say('!outil ajouter "Statuts types SCIC" https://exemple.org/scic type=modele #scic')
    [reply] = await h.say("!outil populaires")
    assert "Aucun outil n'a encore été demandé" in reply.body
    await h.say("!outil voir 2")
    await h.say("!outil statuts scic")
    await h.say("!outil business")
    [reply] = await h.say("!outil populaires")
    lines = reply.body.splitlines()
    assert "Statuts types SCIC" in lines[1] and "demandé 2 fois" in lines[1]
    assert "Trame de business plan ESS" in lines[2] and "demandé 1 fois" in lines[2]


async def test_help_has_examples_for_every_subcommand(h):
    [reply] = await h.say("!aide outil")
    for sub in ("ajouter", "chercher", "liste", "voir", "modifier", "retirer", "populaires"):
        assert f"!outil {sub}" in reply.body
    assert "Exemples" in reply.body
    [reply] = await h.say("!outil")
    assert "Syntaxe" in reply.body


async def test_files_are_forgotten_after_six_months(h):
    from datetime import timedelta
    await h.event(**file_event("$old"))
    h.clock.advance(timedelta(days=181))
    await h.event(**file_event("$new"))
    async with h.app.db.sessions() as s:
        assert [f.event_id for f in (await s.scalars(select(RoomFile))).all()] == ["$new"]
    [reply] = await h.say('!outil ajouter "Ancien" #x', reply_to="$old")
    assert "depuis moins de six mois" in reply.body

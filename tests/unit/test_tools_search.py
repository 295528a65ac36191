"""Search ranking of pooled tools (pure): accents, case, typos, tags, field and match-quality order."""

from datetime import datetime, timezone

import pytest

from ess_bot.services.tools import (FileRef, Invalid, ToolView, check_link, clean_tags, file_ref_from_content,
                                    query_words, rank_tools)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def tool(ident, title, *, type="autre", tags=(), description=None, phase=None, served=0):
    return ToolView(id=ident, title=title, type=type, partner="bge-fc", created_by="@claire:test", created_at=NOW,
                    phase=phase, description=description, tags=tuple(tags), served=served,
                    link=f"https://exemple.org/{ident}")


CATALOGUE = [
    tool(1, "Trame de business plan ESS", type="trame", tags=["businessplan", "scop"], phase="ante_creation"),
    tool(2, "Modèle de statuts de SCIC", type="modele_statuts", tags=["scic", "statuts"]),
    tool(3, "Prévisionnel financier sur 3 ans", type="tableur", tags=["finances"],
         description="Tableau pour le plan de financement et le compte de résultat"),
    tool(4, "Grille d'autodiagnostic ESUS", type="grille_diagnostic", tags=["esus", "agrement"]),
    tool(5, "Guide de la gouvernance partagée", type="guide", tags=["gouvernance"],
         description="Pour les coopératives et les associations"),
]


def ids(result):
    return [h.tool.id for h in result.hits]


def test_accents_and_case_are_ignored():
    assert ids(rank_tools("MODELE statuts", CATALOGUE)) == [2]
    assert ids(rank_tools("prévisionnel", CATALOGUE)) == [3]
    assert ids(rank_tools("previsionnel", CATALOGUE)) == [3]
    assert ids(rank_tools("Gouvernance Partagée", CATALOGUE)) == [5]


def test_small_typos_are_tolerated():
    assert ids(rank_tools("buisness plan", CATALOGUE)) == [1]
    assert ids(rank_tools("gouvernanse", CATALOGUE)) == [5]
    assert ids(rank_tools("autodiagnostique", CATALOGUE)) == [4]
    # but short words need to be exact or a prefix: no fuzzy noise
    assert rank_tools("xyz", CATALOGUE).hits == []


def test_tags_match_with_or_without_hash_and_by_prefix():
    assert ids(rank_tools("#scic", CATALOGUE)) == [2]
    assert ids(rank_tools("agrément", CATALOGUE)) == [4]
    assert ids(rank_tools("business", CATALOGUE)) == [1]  # title word and prefix of the tag "businessplan"


def test_type_and_description_are_searched():
    assert ids(rank_tools("tableur", CATALOGUE)) == [3]
    assert ids(rank_tools("coopératives", CATALOGUE)) == [5]


def test_title_beats_tags_beats_type_beats_description():
    tools = [
        tool(10, "Fiche pratique", description="Tout sur le bilan"),           # description
        tool(11, "Fiche pratique", type="guide", tags=["autre"]),            # type "guide"
        tool(12, "Fiche pratique", tags=["bilan"]),                          # tag
        tool(13, "Le bilan annuel"),                                         # title
    ]
    assert ids(rank_tools("bilan", tools)) == [13, 12, 10]
    tools.append(tool(14, "Fiche pratique", description="un guide complet"))
    assert ids(rank_tools("guide", tools)) == [11, 14]


def test_exact_beats_prefix_beats_fuzzy_in_the_same_field():
    tools = [tool(20, "Atelier financements"), tool(21, "Atelier finance"), tool(22, "Atelier financ")]
    # "finance": exact in 21, prefix of 20's "financements", fuzzy for 22's "financ"? (prefix the other way)
    assert ids(rank_tools("finance", tools))[0] == 21
    assert ids(rank_tools("finance", tools))[1] == 20
    tools = [tool(30, "Modele de statuts"), tool(31, "Modeles de statut")]
    assert ids(rank_tools("modele statuts", tools)) == [30, 31]


def test_every_word_must_match_before_partial_matches_are_offered():
    result = rank_tools("statuts scic", CATALOGUE)
    assert result.complete and ids(result) == [2]
    result = rank_tools("statuts association loi 1901", CATALOGUE)
    assert not result.complete and set(ids(result)) >= {2, 5}
    assert result.single is None  # partial matches are never sent directly


def test_single_result_or_exact_title_designates_one_tool():
    assert rank_tools("statuts scic", CATALOGUE).single.id == 2
    tools = [tool(40, "Guide ESUS"), tool(41, "Guide ESUS pour les SCIC")]
    result = rank_tools("guide esus", tools)
    assert ids(result)[0] == 40 and result.single.id == 40
    assert rank_tools("guide", tools).single is None


def test_stop_words_are_ignored_unless_alone():
    assert query_words("trame de business plan") == ["trame", "business", "plan"]
    assert query_words("de la") == ["de", "la"]


def test_popular_tools_break_ties():
    tools = [tool(50, "Guide A", served=1), tool(51, "Guide B", served=7)]
    assert ids(rank_tools("guide", tools)) == [51, 50]


def test_file_content_is_read_for_plain_and_encrypted_files():
    ref = file_ref_from_content({"msgtype": "m.file", "body": "trame.docx", "url": "mxc://hs/abc",
                                 "info": {"mimetype": "application/msword", "size": 1234}}, event_id="$f")
    assert ref == FileRef(name="trame.docx", url="mxc://hs/abc", size=1234, mimetype="application/msword",
                          msgtype="m.file", event_id="$f")
    enc = {"url": "mxc://hs/enc", "key": {"k": "secret"}, "iv": "x", "hashes": {"sha256": "y"}, "v": "v2"}
    ref = file_ref_from_content({"msgtype": "m.image", "body": "capture", "filename": "grille.png", "file": enc})
    assert ref.file == enc and ref.url is None and ref.name == "grille.png" and ref.msgtype == "m.image"
    assert file_ref_from_content({"msgtype": "m.text", "body": "x"}) is None
    assert file_ref_from_content({"msgtype": "m.file", "body": "x", "url": "https://not-mxc"}) is None


def test_tags_and_links_are_validated():
    assert clean_tags(["#Scop", "scop", "mois-ess"]) == ("Scop", "mois-ess")
    with pytest.raises(Invalid, match="Mot-clé invalide"):
        clean_tags(["pas bien"])
    assert check_link("<https://exemple.org/a>") == "https://exemple.org/a"
    with pytest.raises(Invalid, match="Lien refusé : « ftp://x » n'est pas une adresse web"):
        check_link("ftp://x")
    with pytest.raises(Invalid, match="Lien invalide : « https:// »"):
        check_link("https://")

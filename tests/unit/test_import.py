"""The spreadsheet importer in process: columns, cells, projects, all-or-nothing (real SQLite database)."""

from __future__ import annotations

import codecs
import random
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ess_bot.clock import Clock
from ess_bot.config import parse_config
from ess_bot.importer import (CellError, ImportFileError, Importer, format_result, match_columns, parse_date_cell,
                              parse_mapping, parse_minutes, read_table)
from ess_bot.parsing import DateParser
from ess_bot.storage.accompaniments import Accompaniment, AccompanimentTheme, Project
from ess_bot.storage.db import Database
from tests.unit.accompaniment_driver import CONFIG, PARIS

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)
HEADER = "Projet;Date;Phase;Modalité;Durée;Thèmes;Note;Département;Forme juridique;Prénom"
CSV_HEADER = "Projet;Date;Phase;Durée (min);Département"


@pytest.fixture
def config(tmp_path):
    raw = tomllib.loads(CONFIG)
    raw["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path}/import.db"}
    return parse_config(raw, source="test", base_dir=tmp_path)


@pytest.fixture
async def db(config):
    database = Database(config.database.url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def importer(config):
    return Importer(config, Clock(PARIS, frozen_at=NOW))


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def counts(db) -> tuple[int, int]:
    async with db.sessions() as s:
        return (await s.scalar(select(func.count()).select_from(Project)),
                await s.scalar(select(func.count()).select_from(Accompaniment)))


# -- columns and cells -----------------------------------------------------------------------------

def test_headers_are_recognised_in_french_with_personal_columns_left_out():
    headers = ["CODE PROJET", "Projet", "Date du suivi", "Étape", "Durée (min)", "Observations", "Nom", "E-mail",
               "Couleur", "Tranche d'âge", "ZRR"]
    chosen, recognised, ignored = match_columns(headers, {})
    assert [f for _, f in recognised] == ["code", "projet", "date", "phase", "duree_minutes", "note", "age", "frr"]
    assert chosen == {0: "code", 1: "projet", 2: "date", 3: "phase", 4: "duree_minutes", 5: "note", 9: "age", 10: "frr"}
    assert ("Nom", "donnée personnelle, jamais importée — RGPD") in ignored
    assert ("E-mail", "donnée personnelle, jamais importée — RGPD") in ignored
    assert ignored[-1][0] == "Couleur" and '--mapping "Couleur=champ"' in ignored[-1][1]


def test_mapping_option():
    mapping = parse_mapping("Intitulé=projet, Temps passé (min)=durée (min),Réf=code,Couleur=ignorer")
    chosen, recognised, ignored = match_columns(["Intitulé", "Jour", "Étape", "Temps passé (min)", "Réf", "Couleur"],
                                                mapping)
    assert recognised == [("Intitulé", "projet"), ("Jour", "date"), ("Étape", "phase"),
                          ("Temps passé (min)", "duree_minutes"), ("Réf", "code")]
    assert ignored == [("Couleur", "ignorée à votre demande")]
    with pytest.raises(ImportFileError) as exc:
        parse_mapping("Intitulé=couleur")
    assert "Champ inconnu" in exc.value.message and "« couleur »" in exc.value.message and "duree_minutes" in exc.value.message
    with pytest.raises(ImportFileError) as exc:
        parse_mapping("Intitulé projet")
    assert "Colonne=champ" in exc.value.message
    with pytest.raises(ImportFileError) as exc:
        match_columns(["Projet", "Date", "Phase", "Durée"], parse_mapping("Absente=note"))
    assert "absente du fichier" in exc.value.message


def test_missing_and_duplicate_columns():
    with pytest.raises(ImportFileError) as exc:
        match_columns(["Projet", "Date", "Commentaire"], {})
    assert "la phase" in exc.value.message and "la durée" in exc.value.message and "« Commentaire »" in exc.value.message
    with pytest.raises(ImportFileError) as exc:
        match_columns(["Projet", "Date", "Phase", "Durée", "Temps"], {})
    assert "Deux colonnes" in exc.value.message and "« Temps »" in exc.value.message


@pytest.mark.parametrize("value, unit, minutes", [
    ("1h30", "", 90), ("45 min", "", 45), ("2 h", "", 120), (time(1, 30), "", 90), (timedelta(minutes=75), "", 75),
    (90, "minutes", 90), ("90", "minutes", 90), (1.5, "heures", 90), ("1,5", "heures", 90), ("2", "heures", 120),
])
def test_durations(value, unit, minutes):
    assert parse_minutes(value, unit) == minutes


@pytest.mark.parametrize("value, unit, words", [
    ("90", "", "sans unité"), (1.5, "", "sans unité"), ("1h75", "", "illisible"), ("", "", "manquante"),
    (0, "minutes", "impossible"), ("13", "heures", "impossible"),
])
def test_bad_durations(value, unit, words):
    with pytest.raises(CellError) as exc:
        parse_minutes(value, unit)
    assert words in exc.value.reason


def test_dates():
    dates, today = DateParser(PARIS), NOW.date()
    assert parse_date_cell(datetime(2026, 3, 12, 0, 0), dates, NOW, today) == date(2026, 3, 12)
    assert parse_date_cell(date(2026, 3, 12), dates, NOW, today) == date(2026, 3, 12)
    for text in ("12/03/2026", "2026-03-12", "12 mars 2026", "12/03/26", "12.03.2026"):
        assert parse_date_cell(text, dates, NOW, today) == date(2026, 3, 12), text
    for value, words in (("12/03", "sans année"), ("", "manquante"), (46000, "Nombre à la place d'une date"),
                         ("01/05/2099", "futur"), (date(2027, 1, 1), "futur"), ("31/02/2026", "n'existe pas"),
                         ("hier", "sans année")):
        with pytest.raises(CellError) as exc:
            parse_date_cell(value, dates, NOW, today)
        assert words in exc.value.reason, value


def test_unreadable_files(tmp_path):
    with pytest.raises(ImportFileError) as exc:
        read_table(tmp_path / "absent.csv")
    assert "introuvable" in exc.value.message
    (tmp_path / "x.ods").write_bytes(b"")
    with pytest.raises(ImportFileError) as exc:
        read_table(tmp_path / "x.ods")
    assert ".csv ou .xlsx" in exc.value.message
    (tmp_path / "bad.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(ImportFileError) as exc:
        read_table(tmp_path / "bad.xlsx")
    assert "Classeur illisible" in exc.value.message
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(ImportFileError):
        read_table(tmp_path / "empty.csv")


def test_csv_dialects_and_encodings(tmp_path):
    (tmp_path / "a.csv").write_bytes("Projet,Date,Phase,Durée\n\"Café, culturel\",12/03/2026,accueil,1h\n"
                                     .encode("cp1252"))
    table = read_table(tmp_path / "a.csv")
    assert table.headers == ["Projet", "Date", "Phase", "Durée"]
    assert table.rows == [(2, ["Café, culturel", "12/03/2026", "accueil", "1h"])]
    (tmp_path / "b.csv").write_text("Projet\tDate\tPhase\tDurée\n\nPixel\t12/03/2026\taccueil\t1h\n", encoding="utf-8-sig")
    assert read_table(tmp_path / "b.csv").rows == [(3, ["Pixel", "12/03/2026", "accueil", "1h"])]


FRENCH_CSV = ("Projet;Date;Phase;Durée;Note;Département\r\n"
              "Café de l’Émergence;12/03/2026;émergence;1h30;Réunion à Besançon : l’œuvre « Ça bouge »;25\r\n"
              "Épicerie Besançon;19/03/2026;ante-création;45min;Café-débat à Dole, élus présents;39\r\n")
# what each encoding cannot hold is written the way a person would type it there
PLAIN = str.maketrans({"’": "'", "œ": "oe", "«": '"', "»": '"'})


@pytest.mark.parametrize("encoding, bom, line_end, found", [
    ("utf-8", b"", "\r\n", "utf_8"),
    ("utf-8", codecs.BOM_UTF8, "\r\n", "utf_8_sig"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "\r\n", "utf_16"),      # Excel's « Texte Unicode »
    ("utf-16-be", codecs.BOM_UTF16_BE, "\r\n", "utf_16"),
    ("cp1252", b"", "\r\n", "cp1252"),                          # Excel for Windows, « CSV (séparateur : ;) »
    ("mac_roman", b"", "\r", "mac_roman"),                        # Excel for Mac, « CSV Macintosh », CR line ends
    ("cp850", b"", "\r\n", "cp850"),                              # « CSV (MS-DOS) »
    ("latin-1", b"", "\n", "cp1252"),                              # read as Windows-1252, its superset
])
def test_encodings_are_detected_and_french_text_read_right(tmp_path, encoding, bom, line_end, found):
    text = FRENCH_CSV if encoding in ("utf-8", "utf-16-le", "utf-16-be", "cp1252", "mac_roman") \
        else FRENCH_CSV.translate(PLAIN)
    (tmp_path / "s.csv").write_bytes(bom + text.replace("\r\n", line_end).encode(encoding))
    table = read_table(tmp_path / "s.csv")
    assert table.encoding == found
    assert table.headers == ["Projet", "Date", "Phase", "Durée", "Note", "Département"]
    expected = [line.split(";") for line in text.splitlines()[1:]]
    assert table.rows == [(2, expected[0]), (3, expected[1])]
    assert table.rows[0][1][0].startswith("Café de l") and "Besançon" in table.rows[0][1][4]


def test_short_files_in_single_byte_encodings(tmp_path):
    """One accented word is enough to tell Windows-1252, Mac Roman and cp850 apart."""
    for encoding in ("cp1252", "mac_roman", "cp850"):
        (tmp_path / "s.csv").write_bytes("Projet;Date\nCafé;12/03/2026\n".encode(encoding))
        table = read_table(tmp_path / "s.csv")
        assert (table.encoding, table.rows) == (encoding, [(2, ["Café", "12/03/2026"])]), encoding


def test_decoding_failures_name_the_encoding_tried(tmp_path):
    (tmp_path / "u.csv").write_bytes(codecs.BOM_UTF16_LE + "Projet;Date".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(ImportFileError) as exc:
        read_table(tmp_path / "u.csv")
    assert exc.value.message == ("« u.csv » commence par la marque d'un texte UTF-16 mais ne se lit pas en UTF-16 "
                                 "(octet illisible à la position 24). Enregistrez-le de nouveau en « CSV UTF-8 » depuis "
                                 "votre tableur, puis relancez.")
    rng = random.Random(4)
    (tmp_path / "x.csv").write_bytes(bytes(rng.randrange(1, 256) for _ in range(300)))
    with pytest.raises(ImportFileError) as exc:
        read_table(tmp_path / "x.csv")
    assert exc.value.message.startswith("Encodage de « x.csv » non reconnu : ce n'est pas de l'UTF-8 (octet illisible à "
                                        "la position ")
    assert "Windows-1252" in exc.value.message and "Mac Roman" in exc.value.message
    assert "« CSV UTF-8 »" in exc.value.message


async def test_guessed_encoding_is_said_in_the_report(tmp_path, db, importer):
    path = tmp_path / "mac.csv"
    path.write_bytes(("\r".join(GOOD) + "\r").encode("mac_roman"))
    result = await importer.run(db, path, "bge-fc")
    assert result.ok and result.encoding == "mac_roman"
    assert [c.label for c in result.created] == ["Café culturel Pixel", "Recyclerie du Haut-Doubs"]
    text = format_result(result, apply=False)
    assert text.splitlines()[1] == ("Texte lu en Mac Roman (encodage détecté) : si des accents sont faux ci-dessous, "
                                    "enregistrez le fichier en « CSV UTF-8 » et relancez.")
    utf8 = await importer.run(db, write(tmp_path, "u.csv", GOOD), "bge-fc")
    assert "encodage détecté" not in format_result(utf8, apply=False)


async def test_hostile_cells_are_row_errors(tmp_path, db, importer):
    """Values no spreadsheet of a partner holds, each a French row error, never a traceback."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Projet", "Date", "Phase", "Durée (min)", "Département"])
    ws.append(["Café", datetime(1900, 1, 5), "accueil", 30, 25])
    ws.append(["Café", datetime(9999, 12, 31), "accueil", 30, 25])
    ws.append(["Café", datetime(2026, 3, 12), "accueil", 1e308, 25])
    ws.append(["Café", "#DIV/0!", "accueil", "#VALEUR!", 25])
    ws.append(["Café", "x" * 5000, "accueil", "9" * 400, 25])
    wb.save(tmp_path / "h.xlsx")
    result = await importer.run(db, tmp_path / "h.xlsx", "bge-fc")
    found = {(e.line, e.column): e.reason for e in result.errors}
    assert found[(2, "Date")] == "Date trop ancienne : on n'importe rien d'avant l'an 2000."
    assert found[(3, "Date")].startswith("Date dans le futur")
    assert found[(4, "Durée (min)")].startswith("Durée impossible : 1000000") and "minutes (entre 1 minute" in \
        found[(4, "Durée (min)")]
    assert found[(5, "Date")] == found[(5, "Durée (min)")] == (
        "Valeur d'erreur du tableur (une formule en erreur, ou une date hors limites) : corrigez cette cellule, puis "
        "relancez.")
    assert found[(6, "Date")] == "Date illisible : bien trop longue pour une date. Exemple : 12/11/2026."
    assert found[(6, "Durée (min)")].startswith("Durée impossible : 999")
    assert len(found[(6, "Durée (min)")]) < 200   # the value shortened, not 400 digits
    lines = [CSV_HEADER, "Café;12/03/2026;accueil;inf;25", "Café;12/03/2026;accueil;nan;25",
             "Café;12/03/2026;accueil;1e999;25", "Café;31/12/9999;accueil;30;25", "Café;\x1b]0:pwn\x07;accueil;30;25"]
    result = await importer.run(db, write(tmp_path, "h.csv", lines), "bge-fc")
    found = {(e.line, e.column): (e.value, e.reason) for e in result.errors}
    assert all("illisible" in found[(n, "Durée (min)")][1] for n in (2, 3, 4))
    assert found[(5, "Date")][1].startswith("Date dans le futur")
    assert found[(6, "Date")][0] == "]0:pwn"   # a terminal escape in a file is shown as a space, never sent
    assert "\x1b" not in format_result(result, apply=False) and "\x07" not in format_result(result, apply=False)


# -- the import ------------------------------------------------------------------------------------

GOOD = [HEADER,
        "Café culturel Pixel;12/03/2026;émergence;visio;1h30;juridique, financement;premier rendez-vous;25;association;Jeanne",
        "Café culturel Pixel;19/03/2026;ante;;45min;;;;;Jeanne",
        "Recyclerie du Haut-Doubs;02/04/2026;accueil;téléphone;2h;;;39;scic;Paul"]


async def test_dry_run_writes_nothing(tmp_path, db, importer):
    result = await importer.run(db, write(tmp_path, "suivis.csv", GOOD), "bge-fc")
    assert result.ok and not result.applied and result.rows == 3 and result.records == []
    assert [c.label for c in result.created] == ["Café culturel Pixel", "Recyclerie du Haut-Doubs"]
    assert await counts(db) == (0, 0)
    text = format_result(result, apply=False)
    assert "essai (rien n'est enregistré" in text and "3 lignes de données : 3 valides, 0 en erreur" in text
    assert "2 nouveaux projets à créer : Café culturel Pixel, Recyclerie du Haut-Doubs" in text
    assert "« Prénom » (donnée personnelle, jamais importée — RGPD)" in text and "--apply" in text


async def test_apply_records_through_the_service(tmp_path, db, importer):
    result = await importer.run(db, write(tmp_path, "suivis.csv", GOOD), "bge-fc", apply=True,
                                advisor="@karim:test")
    assert result.ok and result.applied and result.records == [1, 2, 3]
    async with db.sessions() as s:
        projects = (await s.scalars(select(Project).order_by(Project.id))).all()
        rows = (await s.scalars(select(Accompaniment).order_by(Accompaniment.id))).all()
        themes = (await s.scalars(select(AccompanimentTheme.theme).order_by(AccompanimentTheme.theme))).all()
    assert [(p.label, p.partner, p.department, p.legal_form) for p in projects] == [
        ("Café culturel Pixel", "bge-fc", "25", "association"), ("Recyclerie du Haut-Doubs", "bge-fc", "39", "scic")]
    assert [(r.project_id, r.date, r.phase, r.modality, r.duration_minutes, r.note, r.advisor, r.partner)
            for r in rows] == [
        (1, date(2026, 3, 12), "emergence", "visio", 90, "premier rendez-vous", "@karim:test", "bge-fc"),
        (1, date(2026, 3, 19), "ante_creation", "individuel", 45, None, "@karim:test", "bge-fc"),
        (2, date(2026, 4, 2), "accueil", "telephone", 120, None, "@karim:test", "bge-fc")]
    assert rows[0].source_event_id == "import:suivis.csv:2"
    assert themes == ["financement", "juridique"]
    text = format_result(result, apply=True)
    assert "✅ 3 suivis importés (n°1 à n°3)" in text and projects[0].code in text
    # a line given twice in a file, and a file imported twice
    line = GOOD[3].replace("02/04", "03/04")
    twice = await importer.run(db, write(tmp_path, "twice.csv", [HEADER, line, line]), "bge-fc")
    assert [(e.line, e.reason[:28]) for e in twice.errors] == [(3, "Même suivi qu'à la ligne 2 (")]
    # importing the same file again: every line is a duplicate, nothing is written
    again = await importer.run(db, write(tmp_path, "suivis.csv", GOOD), "bge-fc", apply=True)
    assert not again.ok and again.error_lines == 3 and "déjà enregistré (n°1" in again.errors[0].reason
    assert "fichier déjà importé" in again.errors[0].reason
    assert await counts(db) == (2, 3)


async def test_all_or_nothing_and_the_error_report(tmp_path, db, importer):
    lines = GOOD + [
        "Garage solidaire;10/04/2026;financement;;1h75;astrologie;;39;;",
        "Tiers-lieu;01/05/2099;accueil;;1h;;appeler le 06 12 34 56 78;70;;",
        ";05/05/2026;accueil;;1h;;;70;;",
        "Épicerie;06/05/2026;lancement;;1h;;;;;",              # BGE covers 4 départements: which one?
    ]
    result = await importer.run(db, write(tmp_path, "suivis.csv", lines), "bge-fc", apply=True)
    assert not result.ok and not result.applied and await counts(db) == (0, 0)
    found = {(e.line, e.column): e for e in result.errors}
    assert found[(5, "Durée")].value == "1h75" and "illisible" in found[(5, "Durée")].reason
    assert found[(5, "Thèmes")].value == "astrologie"
    assert found[(6, "Date")].value == "01/05/2099" and "futur" in found[(6, "Date")].reason
    assert "RGPD" in found[(6, "Note")].reason and "06 12 34 56 78" in found[(6, "Note")].reason
    assert "Projet manquant" in found[(7, "Projet")].reason
    assert "sans département" in found[(8, "Projet")].reason and "25, 39, 70, 90" in found[(8, "Projet")].reason
    text = format_result(result, apply=True)
    assert "7 lignes de données : 3 valides, 4 en erreur." in text
    assert "- ligne 5, colonne « Durée », valeur « 1h75 » : Durée illisible" in text
    assert "Rien n'a été enregistré" in text and "en entier ou pas du tout" in text


async def test_existing_projects_by_label_or_code_and_conflicts(tmp_path, db, importer):
    await importer.run(db, write(tmp_path, "a.csv", GOOD[:2]), "bge-fc", apply=True)
    async with db.sessions() as s:
        pixel = (await s.scalars(select(Project))).one()
    lines = ["Code projet;Projet;Date;Phase;Durée;Département;Forme juridique;Genre;Âge",
             f"{pixel.code.lower()};;20/03/2026;financement;1h;;;femme;26-49",
             ";café culturel PIXEL;21/03/2026;lancement;1h;25;association;femme;",
             ";Café culturel Pixel;22/03/2026;lancement;1h;39;;;",
             f"{pixel.code};;23/03/2026;lancement;1h;;scop;;",
             "P-2345;;24/03/2026;lancement;1h;;;;",
             "P-12;;24/03/2026;lancement;1h;;;;"]
    result = await importer.run(db, write(tmp_path, "b.csv", lines), "bge-fc", apply=True)
    errors = {e.line: e for e in result.errors}
    assert set(errors) == {4, 5, 6, 7}
    assert "Département : valeur différente de la fiche" in errors[4].reason and "« 25 »" in errors[4].reason
    assert "Forme juridique : valeur différente" in errors[5].reason and "« association »" in errors[5].reason
    assert "Aucun projet P-2345" in errors[6].reason and errors[6].column == "Code projet"
    assert "illisible" in errors[7].reason
    result = await importer.run(db, write(tmp_path, "c.csv", lines[:3]), "bge-fc", apply=True)
    assert result.ok and result.created == []
    async with db.sessions() as s:
        pixel = (await s.scalars(select(Project))).one()
    assert (pixel.gender, pixel.age_band) == ("femme", "26_49")  # profile filled in from the file
    # another partner cannot name BGE's project, by code or by label (a new one of its own is created)
    other = ["Code projet;Projet;Date;Phase;Durée;Département", f"{pixel.code};;20/03/2026;accueil;1h;"]
    result = await importer.run(db, write(tmp_path, "d.csv", other), "urscop")
    assert not result.ok and "Aucun projet" in result.errors[0].reason


async def test_single_department_partner_xlsx_and_advisor_checks(tmp_path, db, importer):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Nom du projet", "Date", "Phase", "Modalité", "Durée (h)", "Notes"])
    ws.append(["Tiers-lieu du Morvan", datetime(2026, 2, 3), "accueil", "permanence", 1.5, None])
    ws.append([None, None, None, None, None, None])
    ws.append(["Tiers-lieu du Morvan", date(2026, 2, 10), "émergence", None, 2, "atelier statuts"])
    wb.save(tmp_path / "aldess.xlsx")
    result = await importer.run(db, tmp_path / "aldess.xlsx", "aldess", apply=True)
    assert result.ok, result.errors
    async with db.sessions() as s:
        project = (await s.scalars(select(Project))).one()
        rows = (await s.scalars(select(Accompaniment).order_by(Accompaniment.id))).all()
    assert (project.department, project.partner) == ("58", "aldess")
    assert [(r.date, r.duration_minutes, r.modality, r.advisor) for r in rows] == [
        (date(2026, 2, 3), 90, "permanence", "import:aldess"), (date(2026, 2, 10), 120, "individuel", "import:aldess")]
    with pytest.raises(ImportFileError) as exc:
        await importer.run(db, tmp_path / "aldess.xlsx", "aldess", advisor="@karim:test")
    assert "n'est pas membre de Aldess" in exc.value.message
    with pytest.raises(ImportFileError) as exc:
        await importer.run(db, tmp_path / "aldess.xlsx", "nulle-part")
    assert "Partenaire inconnu" in exc.value.message and "bge-fc" in exc.value.message

"""The report's summary, CSV, XLSX and PNG, from the hand-computed dataset of tests/storage/test_reports.py
(on SQLite here; the aggregates themselves are checked on both backends there)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from ess_bot.framework.messages import render_markdown
from ess_bot.report_files import (csv_bytes, file_stem, number_fr, png_bytes, render_files, summary_markdown,
                                  tidy_rows, xlsx_bytes)
from ess_bot.services.periods import quarter_period
from ess_bot.storage.db import Database
from tests.storage.test_reports import NOW, T3, seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def reports(tmp_path):
    """The report of the dataset for the 3rd quarter of 2026: (whole network, BGE only, an empty quarter)."""
    from tests.storage.test_reports import PARIS, report_config
    from ess_bot.clock import Clock
    from ess_bot.services.reports import ReportService

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    await db.upgrade()
    async with db.sessions.begin() as session:
        await seed(session)
    service = ReportService(report_config(), Clock(PARIS, frozen_at=NOW))
    async with db.sessions() as session:
        out = (await service.build(session, T3, None), await service.build(session, T3, "bge-fc"),
               await service.build(session, quarter_period(2025, 1), None))
    await db.dispose()
    return out


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the accents right
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_number_formatting():
    assert number_fr(1234567) == "1\u202f234\u202f567"
    assert number_fr(Decimal("11.5")) == "11,5" and number_fr(Decimal("40.0")) == "40"
    assert number_fr(Decimal("3.50"), 2) == "3,50"


def test_summary(reports):
    network, bge, empty = reports
    text = summary_markdown(network)
    lines = text.splitlines()
    assert lines[0] == ("📊 **Bilan d'accompagnement — 3e trimestre 2026** (du 1er juillet au 30 septembre 2026) · "
                        "tout le réseau")
    assert lines[1] == "- **9 suivis**, 5 projets accompagnés (dont 4 nouveaux), **11 h 30** d'accompagnement"
    text = render_markdown(text)[0]  # the rest as people read it (names are escaped in the Markdown)
    assert "accueil 3 (2 h 15)" in text and "émergence 3 (5 h 45)" in text and "lancement" not in text
    assert "BGE Franche-Comté 5 (6 h 45) · URSCOP 2 (3 h) · Aldess 2 (1 h 45)" in text
    assert "21 (Côte-d'Or) 1 projet · 25 (Doubs) 1 projet" in text
    assert ("femmes 40 % · demandeur·euse·s d'emploi 40 % (dont longue durée 20 %) · minima sociaux 20 % · QPV 20 % · "
            "FRR 40 % · âge : moins de 26 ans 20 %, 26–49 ans 40 %, 50 ans et plus 20 %") in text
    assert "profil non renseigné pour 1 projet" in text
    assert "- Issues : 2 créations (3,50 emplois en ETP) et 1 abandon" in text
    assert "- Orientations : 3 proposées, 1 acceptée, 1 refusée et 1 en attente" in text
    assert "Par structure" not in summary_markdown(bge) and "(envoyées : 2, reçues : 1)" in summary_markdown(bge)
    assert "Aucun suivi enregistré sur cette période." in summary_markdown(empty)
    for report in reports:  # counts only: no label, code, note or person
        for secret in ("Projet secret", "P-2222", "Note confidentielle", "@test"):
            assert secret not in summary_markdown(report)


def test_csv_is_tidy(reports):
    network, bge, _ = reports
    rows = read_csv(csv_bytes(network))
    assert list(rows[0]) == ["période", "périmètre", "rubrique", "groupe", "indicateur", "valeur"]
    assert all(r["période"] == "3e trimestre 2026" and r["périmètre"] == "tout le réseau" for r in rows)
    index = {(r["rubrique"], r["groupe"], r["indicateur"]): r["valeur"] for r in rows}
    assert len(index) == len(rows)  # one row per (group, indicator)
    assert index[("Total", "tout", "suivis")] == "9" and index[("Total", "tout", "heures")] == "11,50"
    assert index[("Total", "tout", "nouveaux projets")] == "4"
    assert index[("Structure", "URSCOP", "projets")] == "2" and index[("Structure", "Aldess", "heures")] == "1,75"
    assert index[("Phase", "ante-création", "heures")] == "2,00" and index[("Phase", "lancement", "suivis")] == "0"
    assert index[("Modalité", "atelier", "suivis")] == "1" and ("Modalité", "atelier", "projets") not in index
    assert index[("Département", "70 (Haute-Saône)", "heures")] == "3,00"
    assert index[("Mois", "2026-07", "heures")] == "6,00"
    assert index[("Structure et mois", "BGE Franche-Comté · 2026-07", "heures")] == "5,50"
    assert index[("Profil", "femmes", "part (%)")] == "40,0"
    assert index[("Profil : genre", "non renseigné", "projets")] == "1"
    assert index[("Issue", "création", "emplois (ETP)")] == "3,50"
    assert index[("Création par forme juridique", "SCOP", "emplois (ETP)")] == "2,50"
    assert index[("Orientation par parcours", "BGE Franche-Comté → URSCOP", "refusées")] == "1"
    assert tidy_rows(network)[0] == ("Total", "tout", "suivis", 9)
    bge_rows = read_csv(csv_bytes(bge))
    assert {r["périmètre"] for r in bge_rows} == {"BGE Franche-Comté"}
    assert not any(r["groupe"] == "URSCOP" for r in bge_rows if r["rubrique"] == "Structure")


def test_xlsx_sheets_headers_and_totals(reports):
    from openpyxl import load_workbook

    network, bge, _ = reports
    wb = load_workbook(io.BytesIO(xlsx_bytes(network)))
    assert wb.sheetnames == ["Synthèse", "Structures", "Phases", "Modalités", "Départements", "Mois", "Heures par mois",
                             "Profils", "Issues", "Créations", "Orientations"]
    synth = wb["Synthèse"]
    assert synth["A1"].value == "Bilan d'accompagnement — 3e trimestre 2026"
    cells = {row[0]: row[1] for row in synth.iter_rows(values_only=True) if row and row[0]}
    assert cells["Période"] == "du 1er juillet au 30 septembre 2026" and cells["Périmètre"] == "tout le réseau"
    assert cells["Du"].date() == date(2026, 7, 1) and cells["Au"].date() == date(2026, 9, 30)
    assert cells["Généré le"] == "27 novembre 2026 à 10 h"
    assert cells["Suivis"] == 9 and cells["Projets accompagnés"] == 5 and cells["Nouveaux projets"] == 4
    assert cells["Heures d'accompagnement"] == 11.5 and cells["Part de femmes (%)"] == 40.0
    assert cells["Emplois créés (ETP)"] == 3.5 and cells["Orientations en attente"] == 1

    def table(name):
        return [list(r) for r in wb[name].iter_rows(values_only=True)]

    assert table("Structures") == [["Structure", "Suivis", "Projets", "Heures"], ["BGE Franche-Comté", 5, 3, 6.75],
                                   ["URSCOP", 2, 2, 3.0], ["Aldess", 2, 1, 1.75], ["Total", 9, 5, 11.5]]
    phases = table("Phases")
    assert phases[0] == ["Phase", "Suivis", "Projets", "Heures"] and phases[-1] == ["Total", 9, 5, 11.5]
    assert phases[1] == ["accueil", 3, 3, 2.25]
    assert table("Modalités")[0] == ["Modalité", "Suivis", "Heures"] and table("Modalités")[-1] == ["Total", 9, 11.5]
    assert table("Mois") == [["Mois", "Suivis", "Heures"], ["juil. 2026", 4, 6.0], ["août 2026", 3, 4.0],
                             ["sept. 2026", 2, 1.5], ["Total", 9, 11.5]]
    assert table("Heures par mois") == [
        ["Mois", "BGE Franche-Comté", "URSCOP", "Aldess", "Total"], ["juil. 2026", 5.5, 0, 0.5, 6.0],
        ["août 2026", 0.75, 2.0, 1.25, 4.0], ["sept. 2026", 0.5, 1.0, 0, 1.5], ["Total", 6.75, 3.0, 1.75, 11.5]]
    profils = table("Profils")
    assert profils[0] == ["Critère", "Valeur", "Projets", "Part (%)"] and ["Genre", "femme", 2, 40.0] in profils
    assert ["FRR", "non renseigné", 1, 20.0] in profils
    assert table("Issues")[:2] == [["Issue", "Projets", "Emplois (ETP)"], ["création", 2, 3.5]]
    assert table("Créations") == [["Forme juridique", "Créations", "Emplois (ETP)"], ["SCIC", 1, 1.0],
                                  ["SCOP", 1, 2.5], ["Total", 2, 3.5]]
    assert table("Orientations") == [["De", "Vers", "Proposées", "Acceptées", "Refusées", "En attente"],
                                     ["Aldess", "BGE Franche-Comté", 1, 0, 0, 1],
                                     ["BGE Franche-Comté", "URSCOP", 2, 1, 1, 0], ["Total", None, 3, 1, 1, 1]]
    everything = " ".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    for secret in ("Projet secret", "P-2222", "Note confidentielle", "@test"):
        assert secret not in everything
    wb_bge = load_workbook(io.BytesIO(xlsx_bytes(bge)))
    assert "Structures" not in wb_bge.sheetnames and wb_bge["Synthèse"]["B5"].value == "BGE Franche-Comté"


def test_png_is_a_readable_chart(reports):
    import matplotlib.image
    from PIL import Image

    for report in reports:
        data = png_bytes(report)
        assert data.startswith(PNG_SIGNATURE)
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == (720, 384)
        pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
        assert pixels.shape[:2] == (384, 720)
    assert png_bytes(reports[0]) == png_bytes(reports[0].chart)  # from the report or from the cube: same chart
    # the bars are drawn in the partners' colours (the empty quarter has none)
    colours = {c for _, c in Image.open(io.BytesIO(png_bytes(reports[0]))).convert("RGB").getcolors(100_000)}
    assert (0x1b, 0x6c, 0xa8) in colours
    empty = {c for _, c in Image.open(io.BytesIO(png_bytes(reports[2]))).convert("RGB").getcolors(100_000)}
    assert (0x1b, 0x6c, 0xa8) not in empty


def test_file_names(reports):
    network, bge, _ = reports
    assert file_stem(network) == "rapport-reseau-2026-T3" and file_stem(bge) == "rapport-bge-fc-2026-T3"
    files = render_files(network)
    assert [(f.name, f.mimetype, f.image) for f in files] == [
        ("rapport-reseau-2026-T3.csv", "text/csv", False),
        ("rapport-reseau-2026-T3.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
        ("rapport-reseau-2026-T3.png", "image/png", True)]

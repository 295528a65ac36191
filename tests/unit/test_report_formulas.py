"""No formula in the report files: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return (a partner named ``=Fdfr+1`` in the configuration, say) is written with an apostrophe
in front (OWASP, CSV injection), in the CSV and in the XLSX; numbers stay numbers. Read back with the
csv module and openpyxl."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest
from openpyxl import load_workbook

from ess_bot.clock import Clock
from ess_bot.framework.messages import render_markdown
from ess_bot.report_files import FORMULA_STARTS, csv_bytes, neutral, png_bytes, summary_markdown, xlsx_bytes
from ess_bot.services.reports import ReportService
from ess_bot.storage.db import Database
from tests.storage.test_reports import NOW, PARIS, T3, report_config, seed

HOSTILE_NAMES = {"bge-fc": "=Fdfr+1", "urscop": "+HYPERLINK(\"http://x\")", "aldess": "@SUM(A1:A9)"}
ALSO = ("-2+3", "\tTAB", "\rCR")


@pytest.fixture
async def reports(tmp_path):
    """The 3rd quarter of 2026 for the whole network and for BGE, with formula-like partner names."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    await db.upgrade()
    async with db.sessions.begin() as session:
        await seed(session)
    service = ReportService(report_config(), Clock(PARIS, frozen_at=NOW))
    async with db.sessions() as session:
        network, bge = await service.build(session, T3, None), await service.build(session, T3, "bge-fc")
    await db.dispose()
    return [replace(r, names={**r.names, **HOSTILE_NAMES}) for r in (network, bge)]


def test_neutral():
    for text in (*HOSTILE_NAMES.values(), *ALSO):
        assert neutral(text) == "'" + text
    for value in ("BGE Franche-Comté", "3e trimestre 2026", "", 12, 1.5, None):
        assert neutral(value) == value


def test_csv_cells_are_neutralised(reports):
    for report in reports:
        rows = list(csv.reader(io.StringIO(csv_bytes(report).decode("utf-8-sig")), delimiter=";"))
        cells = [cell for row in rows for cell in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
        groups = {row[3] for row in rows[1:]}
        assert {"'=Fdfr+1", "'+HYPERLINK(\"http://x\")", "'@SUM(A1:A9)"} <= groups or report.partner
        assert any(g.startswith("'=Fdfr+1 · ") for g in groups)  # "partner · month"
        values = [row[5] for row in rows[1:]]
        assert all(v.replace(",", "").isdigit() for v in values)  # numbers stay numbers
    assert {row[1] for row in csv.reader(io.StringIO(csv_bytes(reports[1]).decode("utf-8-sig")),
                                         delimiter=";")} == {"périmètre", "'=Fdfr+1"}


def test_xlsx_cells_are_neutralised(reports):
    for report in reports:
        wb = load_workbook(io.BytesIO(xlsx_bytes(report)))
        texts, numbers = [], 0
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                    if isinstance(cell.value, str):
                        texts.append(cell.value)
                        assert not cell.value.startswith(FORMULA_STARTS), (ws.title, cell.coordinate, cell.value)
                    elif isinstance(cell.value, (int, float)):
                        numbers += 1
        assert "'=Fdfr+1" in texts and numbers > 20
        if report.partner is None:
            assert {"'+HYPERLINK(\"http://x\")", "'@SUM(A1:A9)"} <= set(texts)
            headers = [c.value for c in wb["Heures par mois"][1]]
            assert headers[:2] == ["Mois", "'=Fdfr+1"]
            assert all(isinstance(c.value, (int, float)) for c in wb["Heures par mois"][2][1:])
        else:
            assert wb["Synthèse"]["B5"].value == "'=Fdfr+1"  # the scope


def test_summary_and_chart_with_such_names(reports):
    network, bge = reports
    body, html = render_markdown(summary_markdown(network))
    assert "=Fdfr+1 5 (6 h 45) · +HYPERLINK(\"http://x\") 2 (3 h) · @SUM(A1:A9) 2 (1 h 45)" in body
    assert "\\" not in body and "<a " not in html
    assert render_markdown(summary_markdown(bge))[0].splitlines()[0].endswith(" · =Fdfr+1")
    # matplotlib would read "$…$" as mathematics, and fail on a malformed formula
    odd = replace(network, names={**network.names, "bge-fc": r"$\frac{$ 1", "urscop": "$x$ et $"})
    assert png_bytes(odd).startswith(b"\x89PNG")

"""``ess-bot rapport`` as a real subprocess, on a temporary SQLite database filled with the dataset of
tests/storage/test_reports.py (partners of the embedded example configuration)."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from ess_bot.storage.db import Database
from tests.storage.test_reports import seed
from tests.unit.test_cli import run

NOW = ["--now", "2026-11-27T10:00"]


@pytest.fixture
def env(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"

    async def fill():
        db = Database(url)
        await db.upgrade()
        async with db.sessions.begin() as session:
            await seed(session)
        await db.dispose()

    asyncio.run(fill())
    return {"ESS_BOT_DATABASE_URL": url}


def test_report_prints_the_summary_and_writes_three_files(tmp_path, env):
    out = tmp_path / "bilans"
    result = run(["rapport", "--periode", "T3 2026", "--sortie", str(out), *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("📊 Bilan d'accompagnement — 3e trimestre 2026 (du 1er juillet au 30 septembre 2026) · "
                        "tout le réseau")
    assert "9 suivis, 5 projets accompagnés (dont 4 nouveaux), 11 h 30" in result.stdout
    assert "**" not in result.stdout  # Markdown turned into plain text
    names = ["rapport-reseau-2026-T3.csv", "rapport-reseau-2026-T3.xlsx", "rapport-reseau-2026-T3.png"]
    assert lines[-4:] == ["Fichiers écrits :"] + [f"  {out / n}" for n in names]
    rows = list(csv.DictReader(io.StringIO((out / names[0]).read_text(encoding="utf-8-sig")), delimiter=";"))
    assert {r["indicateur"]: r["valeur"] for r in rows if r["rubrique"] == "Total"}["suivis"] == "9"
    from openpyxl import load_workbook
    wb = load_workbook(out / names[1])
    assert wb.sheetnames[0] == "Synthèse" and wb["Structures"]["A2"].value == "BGE Franche-Comté"
    assert (out / names[2]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_partner_and_default_period(tmp_path, env):
    result = run(["rapport", "--partenaire", "urscop", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4e trimestre 2026" in result.stdout and "· URSCOP" in result.stdout and "1 suivi," in result.stdout
    assert (tmp_path / "rapport-urscop-2026-T4.xlsx").exists()


def test_errors(tmp_path, env):
    result = run(["rapport", "--periode", "T5 2026", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "4 trimestres" in result.stderr and "`" not in result.stderr
    result = run(["rapport", "--partenaire", "nulle-part", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Partenaire inconnu : 'nulle-part'" in result.stderr and "urscop" in result.stderr
    result = run(["rapport", "--now", "hier"], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Exemple : --now" in result.stderr
    result = run(["rapport", *NOW], env={"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/absente.db"},
                 cwd=tmp_path)
    assert result.returncode == 2 and "Base de données introuvable" in result.stderr
    assert not (tmp_path / "absente.db").exists()
    for r in (result,):
        assert "Traceback" not in r.stderr

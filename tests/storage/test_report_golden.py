"""Characterisation of the whole report: for a rich dataset, the chat summary (Markdown and plain
body), the CSV bytes, the XLSX cells and sheet structure and the chart's figures must stay exactly
what tests/golden/reports/ holds — on SQLite and on PostgreSQL (``db_url``).

The dataset is generated (seeded): 5 configured partners (one with Markdown and ``$`` in its name) and
one no longer configured, 40 projects (profiles known, partly known and unknown, one stored value no
longer in its list, a département without a name), 260 records from November 2025 to January 2027 over
every phase (and one retired phase) and modality, some cancelled, themes, outcomes of every kind (a
creation without legal form among them) and referrals of every status. Reports: the 3rd quarter of
2026 (network and three partners), the year 2026 (network and one partner), two months across the
year boundary, an empty quarter.

The golden files were written by the code before the report columns were declared in one place
(issue 13, item 6); regenerate them only for a change people are meant to see:
``ESS_BOT_UPDATE_GOLDEN=1 pytest tests/storage/test_report_golden.py`` (SQLite run).
"""

from __future__ import annotations

import io
import json
import os
import random
import tomllib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ess_bot.clock import Clock
from ess_bot.config import parse_config
from ess_bot.framework.messages import render_markdown
from ess_bot.report_files import csv_bytes, png_bytes, summary_markdown, xlsx_bytes
from ess_bot.services.periods import quarter_period, range_period, year_period
from ess_bot.services.reports import HoursChart, ReportService
from ess_bot.storage.accompaniments import Accompaniment, AccompanimentTheme, Project, ProjectOutcome, Referral

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "reports"
UPDATE = os.environ.get("ESS_BOT_UPDATE_GOLDEN") == "1"
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 2, 3, 14, 20, tzinfo=PARIS)
CONFIG = """
[[partners]]
slug = "bge-fc"
name = "BGE Franche-Comté"
departments = ["25", "39", "70", "90"]

[[partners]]
slug = "urscop"
name = "URSCOP"
departments = ["21", "25", "39", "58", "70", "71", "89", "90"]

[[partners]]
slug = "aldess"
name = "Aldess"
departments = ["58"]

[[partners]]
slug = "cluster-jura"
name = "Cluster *Jura* [ESS] $2"
departments = ["39"]

[[partners]]
slug = "active71"
name = "Active 71"
departments = ["71"]
"""
SLUGS = ("bge-fc", "urscop", "aldess", "cluster-jura", "active71")
CASES = {
    "t3-2026-network": (quarter_period(2026, 3), None),
    "t3-2026-bge-fc": (quarter_period(2026, 3), "bge-fc"),
    "t3-2026-urscop": (quarter_period(2026, 3), "urscop"),
    "t3-2026-cluster-jura": (quarter_period(2026, 3), "cluster-jura"),
    "year-2026-network": (year_period(2026), None),
    "year-2026-aldess": (year_period(2026), "aldess"),
    "dec-2025-jan-2026-network": (range_period(date(2025, 12, 1), date(2026, 1, 31)), None),
    "t1-2024-network": (quarter_period(2024, 1), None),
}


def golden_config():
    return parse_config(tomllib.loads(CONFIG), source="test")


def dataset(seed: int = 613) -> dict[str, list[dict]]:
    """Rows for every table the report reads, the same for a given seed."""
    rng = random.Random(seed)
    created = datetime(2025, 10, 1, tzinfo=timezone.utc)
    departments = {"bge-fc": ("25", "39", "70", "90"), "urscop": ("21", "71", "89"), "aldess": ("58",),
                   "cluster-jura": ("39",), "active71": ("71", "2A")}

    def band(values):
        return rng.choice(values) if rng.random() < 0.8 else None

    projects = []
    for i in range(1, 41):
        slug = SLUGS[i % len(SLUGS)]
        known = rng.random()
        profile = dict(gender=None, age_band=None, employment_status=None, minima=None, qpv=None, frr=None)
        if known > 0.15:
            profile = dict(
                gender=band(("femme", "homme", "autre", "nc")), age_band=band(("lt26", "26_49", "50plus", "nc")),
                employment_status=band(("de_indemnise", "de_non_indemnise", "de_longue_duree", "salarie",
                                        "independant", "etudiant", "sans_activite", "nc")),
                minima=band(("rsa", "ass", "aucun", "nc")), qpv=band(("oui", "non", "nc")),
                frr=band(("oui", "non", "nc")))
        if i == 7:
            profile["gender"] = "ancienne_valeur"   # a stored value no longer in the list
        projects.append(dict(id=i, code=f"P-{i:04d}", label=f"Projet secret {i}", label_key=f"projet secret {i}",
                             partner=slug, department=rng.choice(departments[slug]), nature="creation",
                             legal_form="nsp", collective=rng.random() < 0.3, esus="non", created_at=created,
                             created_by="@test:test", **profile))
    phases = ("accueil", "emergence", "ante_creation", "financement", "lancement", "post_creation")
    modalities = ("individuel", "collectif", "atelier", "permanence", "visio", "telephone")
    records, themes = [], []
    first = date(2025, 11, 1)
    for n in range(1, 261):
        pid = rng.randint(1, 40)
        holder = projects[pid - 1]["partner"]
        partner = holder if rng.random() < 0.8 else rng.choice(SLUGS + ("ancien",))
        phase = rng.choice(phases) if n != 77 else "ancienne_phase"
        cancelled = rng.random() < 0.08
        records.append(dict(id=n, project_id=pid, advisor="@test:test", partner=partner,
                            date=first + timedelta(days=rng.randrange(457)), phase=phase,
                            modality=rng.choice(modalities), duration_minutes=rng.choice((15, 30, 45, 60, 75, 90, 120,
                                                                                         180, 240)),
                            note="Note confidentielle", cancelled=cancelled, cancelled_at=created if cancelled else None,
                            created_at=created))
        if rng.random() < 0.4:
            for theme in rng.sample(("etude_marche", "juridique", "financement", "rh", "commercial"), rng.choice((1, 2))):
                themes.append(dict(accompaniment_id=n, theme=theme))
    outcomes = []
    for pid in rng.sample(range(1, 41), 26):
        kind = rng.choice(("creation", "creation", "abandon", "reorientation", "report"))
        creation = kind == "creation"
        outcomes.append(dict(project_id=pid, outcome=kind, date=first + timedelta(days=rng.randrange(457)),
                             legal_form=rng.choice(("scop", "scic", "association", "ei", None)) if creation else None,
                             jobs_fte=Decimal(rng.choice(("0", "0.5", "1", "2.25", "3"))) if creation else None,
                             partner=rng.choice(SLUGS), recorded_by="@test:test", recorded_at=created))
    free = sorted(set(range(1, 41)) - {o["project_id"] for o in outcomes})
    for pid, day, form in ((free[0], date(2026, 8, 14), None), (free[1], date(2026, 9, 3), "cae")):  # NULLs sort apart
        outcomes.append(dict(project_id=pid, outcome="creation", date=day, legal_form=form, jobs_fte=Decimal("1.5"),
                             partner="urscop", recorded_by="@test:test", recorded_at=created))
    referrals = []
    for _ in range(22):
        pid = rng.randint(1, 40)
        src = projects[pid - 1]["partner"]
        dst = rng.choice([s for s in SLUGS if s != src])
        referrals.append(dict(project_id=pid, from_partner=src, to_partner=dst,
                              date=first + timedelta(days=rng.randrange(457)),
                              status=rng.choice(("proposee", "acceptee", "acceptee", "refusee")),
                              created_by="@test:test", created_at=created))
    return {"projects": projects, "accompaniments": records, "themes": themes, "outcomes": outcomes,
            "referrals": referrals}


async def seed_rich(session) -> None:
    rows = dataset()
    for model, name in ((Project, "projects"), (Accompaniment, "accompaniments"), (AccompanimentTheme, "themes"),
                        (ProjectOutcome, "outcomes"), (Referral, "referrals")):
        session.add_all(model(**row) for row in rows[name])
        await session.flush()


# -- what is compared ------------------------------------------------------------------------------

def _json_value(value):
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def workbook_dump(data: bytes) -> list[dict]:
    """Every sheet: its name, column widths, and every row's cell values with their font and number
    format where they are not the default."""
    from openpyxl import load_workbook

    sheets = []
    for ws in load_workbook(io.BytesIO(data)):
        rows = []
        for row in ws.iter_rows():
            cells = []
            for cell in row:
                entry = {"v": _json_value(cell.value)}
                if cell.font is not None and (cell.font.b or (cell.font.sz and cell.font.sz != 11)):
                    entry["font"] = [bool(cell.font.b), cell.font.sz and float(cell.font.sz)]
                if cell.number_format != "General":
                    entry["format"] = cell.number_format
                cells.append(entry if len(entry) > 1 else entry["v"])
            rows.append(cells)
        widths = {k: d.width for k, d in sorted(ws.column_dimensions.items()) if d.width}
        sheets.append({"name": ws.title, "widths": widths, "rows": rows})
    return sheets


def chart_dump(chart: HoursChart) -> dict:
    return {"scope_name": chart.scope_name, "months": chart.months, "series": [list(s) for s in chart.series]}


def outputs(report, cube_chart: HoursChart) -> dict:
    summary = summary_markdown(report)
    plain, html = render_markdown(summary)
    return {"summary_markdown": summary.split("\n"), "summary_plain": plain.split("\n"), "summary_html": html,
            "csv": csv_bytes(report).decode("utf-8").split("\r\n"), "xlsx": workbook_dump(xlsx_bytes(report)),
            "chart": chart_dump(report.chart), "chart_from_cube": chart_dump(cube_chart)}


def golden_text(got: dict) -> str:
    """JSON with one line per summary line, CSV line and sheet row (readable diffs)."""
    def line(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    out = ["{"]
    for i, (key, value) in enumerate(got.items()):
        end = "," if i < len(got) - 1 else ""
        if key == "xlsx":
            sheets = []
            for sheet in value:
                rows = ",\n".join("    " + line(r) for r in sheet["rows"])
                sheets.append(f'  {{"name": {line(sheet["name"])}, "widths": {line(sheet["widths"])}, "rows": [\n{rows}]}}')
            out.append(f'"{key}": [\n' + ",\n".join(sheets) + "]" + end)
        elif isinstance(value, list):
            out.append(f'"{key}": [\n' + ",\n".join("  " + line(v) for v in value) + "]" + end)
        else:
            out.append(f'"{key}": {line(value)}{end}')
    return "\n".join(out) + "\n}\n"


def _update(case: str, backend: str, got: dict) -> None:
    """The SQLite outputs as ``<case>.json``; PostgreSQL's as ``<case>.postgres.json`` where they differ."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    text = golden_text(got)
    main, variant = GOLDEN / f"{case}.json", GOLDEN / f"{case}.{backend}.json"
    if backend == "sqlite":
        main.write_text(text, encoding="utf-8")
    elif main.read_text(encoding="utf-8") != text:
        variant.write_text(text, encoding="utf-8")
    elif variant.exists():
        variant.unlink()


# -- the test --------------------------------------------------------------------------------------------

@pytest.fixture
async def rich(database):
    async with database.sessions.begin() as session:
        await seed_rich(session)
    return database


async def test_report_outputs_match_the_golden_files(rich, db_url):
    service = ReportService(golden_config(), Clock(PARIS, frozen_at=NOW))
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    for case, (period, partner) in CASES.items():
        cubes = []
        async with rich.sessions() as session, rich.sessions() as side:
            report = await service.build(session, period, partner, side=side, on_cube=cubes.append)
        cube_chart = service.chart(period, partner, cubes[0])
        got = outputs(report, cube_chart)
        path = GOLDEN / f"{case}.json"
        variant = GOLDEN / f"{case}.{backend}.json"   # where a backend orders differently (NULLs)
        if variant.exists():
            path = variant
        if UPDATE:
            _update(case, backend, got)
            continue
        expected = json.loads(path.read_text(encoding="utf-8"))
        for key in expected:
            assert got[key] == expected[key], f"{case} ({backend}): {key} differs from {path.name}"
        # the PNG is drawn from these figures, whichever way it is reached (the command draws it from the cube)
        drawn = png_bytes(report)
        assert drawn == png_bytes(cube_chart)
        assert drawn == png_bytes(HoursChart(period, expected["chart"]["scope_name"], expected["chart"]["months"],
                                             [tuple(s) for s in expected["chart"]["series"]]))

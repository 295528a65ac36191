"""A new report indicator is one declaration: a table added to the catalogue is computed by the
database and shown in the summary, the CSV and the XLSX, with nothing else to edit — checked with two
indicators issue 15 asks for (hours by theme, a joined table; projects by ESUS agreement, a project
column) and a measure summed over the projects (as its people will be), against a count made record
by record, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from sqlalchemy import case, true, update

from ess_bot.clock import Clock
from ess_bot.framework.messages import render_markdown
from ess_bot.report_files import csv_bytes, summary_markdown, xlsx_bytes
from ess_bot.reports.catalogue import (ACTIVITY_ITEM, CATALOGUE, MINUTES, PROJECTS_ACCOMPANIED, RECORD_COUNT, SHARE,
                                       TABLES)
from ess_bot.reports.declare import (FIRST_RECORD_IN_PERIOD, PROJECTS, RECORDS, Catalogue, Column, Count, Csv, Dimension,
                                     Items, Line, Measure, Sheet, Stack, Sum, Table)
from ess_bot.services.periods import quarter_period, year_period
from ess_bot.services.reports import ReportService
from ess_bot.storage.accompaniments import AccompanimentTheme, Project
from ess_bot.vocabulary import ESUS, THEMES
from tests.storage.test_report_golden import NOW, PARIS, dataset, golden_config, seed_rich

T3 = quarter_period(2026, 3)

# the two entries, as the catalogue's docstring shows them (plus a « Synthèse » row)
THEMES_TABLE = Table("theme", (RECORD_COUNT, MINUTES),
                     by=Dimension("theme", RECORDS, AccompanimentTheme.theme, THEMES, join=AccompanimentTheme),
                     csv=Csv("Thème"), sheet=Sheet("Thèmes", "Thème"),
                     summary=Line("Par thème", Items(ACTIVITY_ITEM, skip_zero="records")),
                     synthesis=(("Suivis sur le juridique", "juridique", "records"),))
ESUS_TABLE = Table("esus", (PROJECTS_ACCOMPANIED, Column(SHARE, csv=False)),
                   by=Dimension("esus", PROJECTS, Project.esus, ESUS), csv=Csv("ESUS"),
                   sheet=Stack("Profils", "ESUS"), summary=Line("ESUS", Items("{label} {projects}")))
THEME, ESUS_DIM = THEMES_TABLE.by, ESUS_TABLE.by
EXTENDED = Catalogue((*TABLES, THEMES_TABLE, ESUS_TABLE), chart=CATALOGUE.chart)


@pytest.fixture
async def rich(database):
    async with database.sessions.begin() as session:
        await seed_rich(session)
        for esus, ids in (("demande", range(1, 41, 3)), ("obtenu", range(2, 41, 5))):
            await session.execute(update(Project).where(Project.id.in_(list(ids))).values(esus=esus))
    return database


def expected_counts(partner=None):
    """Hours by theme and projects by ESUS, counted record by record from the seeded rows."""
    rows = dataset()
    esus = {p["id"]: "non" for p in rows["projects"]}
    for value, ids in (("demande", range(1, 41, 3)), ("obtenu", range(2, 41, 5))):
        esus.update({i: value for i in ids})
    live = {r["id"]: r for r in rows["accompaniments"]
            if not r["cancelled"] and T3.start <= r["date"] <= T3.end and partner in (None, r["partner"])}
    records, minutes = Counter(), Counter()
    for t in rows["themes"]:
        if t["accompaniment_id"] in live:
            records[t["theme"]] += 1
            minutes[t["theme"]] += live[t["accompaniment_id"]]["duration_minutes"]
    projects = Counter(esus[pid] for pid in {r["project_id"] for r in live.values()})
    return records, minutes, projects


@pytest.mark.parametrize("partner", [None, "urscop"])
async def test_two_new_tables_are_computed_and_shown(rich, partner):
    service = ReportService(golden_config(), Clock(PARIS, frozen_at=NOW), EXTENDED)
    async with rich.sessions() as session:
        report = await service.build(session, T3, partner)
        before = await ReportService(golden_config(), Clock(PARIS, frozen_at=NOW)).build(session, T3, partner)
    records, minutes, projects = expected_counts(partner)
    assert sum(records.values()) > 5 and len(projects) >= 2        # the dataset exercises them
    assert report.rows("theme") == tuple((k, {"records": records[k], "minutes": minutes[k]}) for k in THEMES.keys())
    accompanied = report.value("total", "projects")
    assert report.rows("esus") == tuple(
        (k, {"projects": projects[k], "share": SHARE_OF(projects[k], accompanied)}) for k in ESUS.keys())
    # every other figure as without the two tables
    assert {k: v for k, v in report.figures.items() if k not in ("theme", "esus")} == before.figures

    summary = render_markdown(summary_markdown(report))[0].splitlines()
    themes = [f"{THEMES.label(k)} {records[k]}" for k in THEMES.keys() if records[k]]
    line = next(x for x in summary if x.startswith("- Par thème : "))
    assert [item.rsplit(" (", 1)[0] for item in line[len("- Par thème : "):].split(" · ")] == themes
    esus = f"- ESUS : non {projects['non']} · demandé {projects['demande']} · obtenu {projects['obtenu']}"
    old = render_markdown(summary_markdown(before))[0].splitlines()
    assert summary == old[:-1] + [line, esus, old[-1]]              # the new lines come last, in table order

    rows = list(csv.reader(io.StringIO(csv_bytes(report).decode("utf-8-sig")), delimiter=";"))
    theme_rows = [r[3:] for r in rows if r[2] == "Thème"]
    assert theme_rows[:2] == [["étude de marché", "suivis", str(records["etude_marche"])],
                              ["étude de marché", "heures", f"{minutes['etude_marche'] / 60:.2f}".replace(".", ",")]]
    assert [r[3:] for r in rows if r[2] == "ESUS"] == [[ESUS.label(k), "projets", str(projects[k])] for k in ESUS.keys()]

    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(xlsx_bytes(report)))
    assert wb.sheetnames[-1] == "Thèmes" and wb.sheetnames.index("Profils") < wb.sheetnames.index("Issues")
    assert [list(r) for r in wb["Thèmes"].iter_rows(values_only=True)][:2] == [
        ["Thème", "Suivis", "Heures"], ["étude de marché", records["etude_marche"], minutes["etude_marche"] / 60]]
    profils = [list(r) for r in wb["Profils"].iter_rows(values_only=True)]
    assert profils[-3:] == [["ESUS", ESUS.label(k), projects[k], float(SHARE_OF(projects[k], accompanied))]
                            for k in ESUS.keys()]
    synthese = {r[0]: r[1] for r in wb["Synthèse"].iter_rows(values_only=True) if r and r[0]}
    assert synthese["Suivis sur le juridique"] == records["juridique"] > 0


def SHARE_OF(n, whole):  # noqa: N802 - the catalogue's share, computed here by hand
    from decimal import ROUND_HALF_UP, Decimal
    return (Decimal(100) * n / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if whole else Decimal(0)


def test_a_wrong_declaration_is_refused_when_the_catalogue_is_built():
    with pytest.raises(ValueError, match="the summary names 'minutes'"):
        Catalogue((*TABLES, Table("esus", (PROJECTS_ACCOMPANIED,), by=ESUS_DIM, summary=Line("ESUS", "{minutes}"))))
    with pytest.raises(ValueError, match="declared twice"):
        Catalogue((*TABLES, TABLES[0]))
    both = Table("phase_theme", (PROJECTS_ACCOMPANIED,), by=(TABLES[2].by, THEME))
    with pytest.raises(ValueError, match="phase_theme"):
        ReportService(golden_config(), Clock(PARIS, frozen_at=NOW), Catalogue((*TABLES, both)))
    filtered = Table("new_by_department", (Measure("new", PROJECTS, Count(), "nouveaux",
                                                   where=TABLES[0].columns[3].measure.where),),
                     by=TABLES[4].by)
    with pytest.raises(ValueError, match="counted in total only"):
        ReportService(golden_config(), Clock(PARIS, frozen_at=NOW), Catalogue((*TABLES, filtered)))


# a measure summed over the projects (issue 15's people will be ``Sum(Project.holders)``): collective projects
COLLECTIVE = Measure("collective", PROJECTS, Sum(case((Project.collective == true(), 1), else_=0)), "projets collectifs",
                     "Projets collectifs")
NEW_COLLECTIVE = Measure("new_collective", PROJECTS, Sum(case((Project.collective == true(), 1), else_=0)),
                         "nouveaux projets collectifs", where=FIRST_RECORD_IN_PERIOD)
WITH_SUMS = Catalogue((*TABLES, Table("collective", (COLLECTIVE, NEW_COLLECTIVE), csv=Csv("Collectifs")),
                       Table("collective_partner", (PROJECTS_ACCOMPANIED, COLLECTIVE), by=TABLES[1].by),
                       Table("collective_department", (COLLECTIVE, RECORD_COUNT), by=TABLES[4].by)),
                      chart=CATALOGUE.chart)


@pytest.mark.parametrize("partner", [None, "aldess"])
async def test_a_sum_over_the_projects_in_total_by_partner_and_by_project_column(rich, partner):
    service = ReportService(golden_config(), Clock(PARIS, frozen_at=NOW), WITH_SUMS)
    period = year_period(2026)
    async with rich.sessions() as session:
        report = await service.build(session, period, partner)
    rows = dataset()
    projects = {p["id"]: p for p in rows["projects"]}
    live = [r for r in rows["accompaniments"]
            if not r["cancelled"] and period.start <= r["date"] <= period.end and partner in (None, r["partner"])]
    earlier = {r["project_id"] for r in rows["accompaniments"]
               if not r["cancelled"] and r["date"] < period.start and partner in (None, r["partner"])}
    seen = {r["project_id"] for r in live}
    collective = {pid for pid in seen if projects[pid]["collective"]}
    assert 0 < len(collective) < len(seen)
    assert report.rows("collective") == ((None, {"collective": len(collective),
                                                 "new_collective": len(collective - earlier)}),)
    by_partner = {r["partner"]: set() for r in live}
    for r in live:
        by_partner[r["partner"]].add(r["project_id"])
    assert {k: v for k, v in report.rows("collective_partner") if v["projects"]} == {
        k: {"projects": len(v), "collective": len(v & collective)} for k, v in by_partner.items()}
    department = Counter(projects[pid]["department"] for pid in collective)
    records = Counter(projects[r["project_id"]]["department"] for r in live)
    assert dict(report.rows("collective_department")) == {
        k: {"collective": department[k], "records": records[k]} for k in records}

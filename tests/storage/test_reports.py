"""Every report aggregate against a hand-computed dataset, on SQLite and PostgreSQL (``db_url``).

The dataset (``seed``): 3 partners, 6 projects, 12 accompaniments (one cancelled, two just outside
the 3rd quarter of 2026, two on its first and last days), 5 outcomes and 4 referrals. The expected
figures below were counted by hand from the table in ``RECORDS``.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ess_bot.clock import Clock
from ess_bot.config import parse_config
from ess_bot.services.periods import month_period, quarter_period, range_period, year_period
from ess_bot.report_files import hours
from ess_bot.services.reports import ReportForbidden, ReportService
from ess_bot.storage.accompaniments import Accompaniment, AccompanimentTheme, Project, ProjectOutcome, Referral

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)
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
"""
T3 = quarter_period(2026, 3)

# code, holding partner, département, gender, age band, employment status, minima, qpv, frr
PROJECTS = [
    ("P-2222", "bge-fc", "25", "femme", "26_49", "de_longue_duree", "rsa", "oui", "non"),
    ("P-3333", "bge-fc", "39", "homme", "lt26", "de_indemnise", "aucun", "non", "oui"),
    ("P-4444", "bge-fc", "70", None, None, None, None, None, None),
    ("P-5555", "urscop", "21", "femme", "50plus", "salarie", "aucun", "non", "oui"),
    ("P-6666", "urscop", "25", "femme", None, "de_non_indemnise", "ass", "nc", None),
    ("P-7777", "aldess", "58", "autre", "26_49", "independant", "nc", "non", "non"),
]
# n°, project, partner, date, phase, modality, minutes, cancelled
RECORDS = [
    (1, "P-2222", "bge-fc", date(2026, 7, 3), "accueil", "individuel", 60, False),
    (2, "P-2222", "bge-fc", date(2026, 7, 20), "emergence", "visio", 90, False),
    (3, "P-3333", "bge-fc", date(2026, 8, 5), "accueil", "individuel", 45, False),
    (4, "P-3333", "bge-fc", date(2026, 9, 30), "financement", "telephone", 30, False),     # last day of T3
    (5, "P-4444", "bge-fc", date(2026, 6, 30), "accueil", "individuel", 120, False),       # the day before T3
    (6, "P-4444", "bge-fc", date(2026, 7, 1), "emergence", "atelier", 180, False),         # first day of T3
    (7, "P-2222", "urscop", date(2026, 8, 10), "ante_creation", "individuel", 120, False),  # after a referral
    (8, "P-5555", "urscop", date(2026, 9, 15), "financement", "collectif", 60, False),
    (9, "P-5555", "urscop", date(2026, 9, 16), "financement", "individuel", 60, True),      # cancelled
    (10, "P-6666", "urscop", date(2026, 10, 1), "accueil", "individuel", 60, False),       # the day after T3
    (11, "P-7777", "aldess", date(2026, 7, 15), "accueil", "permanence", 30, False),
    (12, "P-7777", "aldess", date(2026, 8, 15), "emergence", "individuel", 75, False),
]
# project, outcome, date, legal form, jobs (FTE), recording partner
OUTCOMES = [
    ("P-3333", "creation", date(2026, 9, 1), "scop", Decimal("2.5"), "bge-fc"),
    ("P-4444", "abandon", date(2026, 8, 20), None, None, "bge-fc"),
    ("P-5555", "creation", date(2026, 7, 10), "scic", Decimal("1"), "urscop"),
    ("P-7777", "reorientation", date(2026, 10, 5), None, None, "aldess"),   # after T3
    ("P-2222", "report", date(2026, 6, 15), None, None, "bge-fc"),          # before T3
]
# project, from, to, date, status
REFERRALS = [
    ("P-2222", "bge-fc", "urscop", date(2026, 7, 25), "acceptee"),
    ("P-3333", "bge-fc", "urscop", date(2026, 8, 2), "refusee"),
    ("P-7777", "aldess", "bge-fc", date(2026, 9, 10), "proposee"),
    ("P-4444", "bge-fc", "aldess", date(2026, 5, 5), "acceptee"),           # before T3
]


def report_config():
    return parse_config(tomllib.loads(CONFIG), source="test")


async def seed(session) -> None:
    """Write the dataset above (ids follow the order of the lists)."""
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = {}
    for i, (code, partner, dep, gender, age, status, minima, qpv, frr) in enumerate(PROJECTS, start=1):
        session.add(Project(id=i, code=code, label=f"Projet secret {i}", label_key=f"projet secret {i}", partner=partner,
                            department=dep, nature="creation", legal_form="nsp", collective=False, esus="non",
                            created_at=created, created_by="@test:test", gender=gender, age_band=age,
                            employment_status=status, minima=minima, qpv=qpv, frr=frr))
        ids[code] = i
    await session.flush()
    for n, code, partner, day, phase, modality, minutes, cancelled in RECORDS:
        session.add(Accompaniment(id=n, project_id=ids[code], advisor="@test:test", partner=partner, date=day,
                                  phase=phase, modality=modality, duration_minutes=minutes,
                                  note="Note confidentielle", cancelled=cancelled,
                                  cancelled_at=created if cancelled else None, created_at=created))
    await session.flush()
    session.add_all([AccompanimentTheme(accompaniment_id=1, theme="juridique"),
                     AccompanimentTheme(accompaniment_id=2, theme="financement")])
    for code, outcome, day, form, fte, partner in OUTCOMES:
        session.add(ProjectOutcome(project_id=ids[code], outcome=outcome, date=day, legal_form=form, jobs_fte=fte,
                                   partner=partner, recorded_by="@test:test", recorded_at=created))
    for code, src, dst, day, status in REFERRALS:
        session.add(Referral(project_id=ids[code], from_partner=src, to_partner=dst, date=day, status=status,
                             created_by="@test:test", created_at=created))
    await session.flush()


@pytest.fixture
def service() -> ReportService:
    return ReportService(report_config(), Clock(PARIS, frozen_at=NOW))


@pytest.fixture
async def seeded(database):
    async with database.sessions.begin() as session:
        await seed(session)
    return database


async def build(db, service, period, partner=None):
    async with db.sessions() as session:
        return await service.build(session, period, partner)


def A(n, p, m):
    """The figures of a group counting records, projects and minutes."""
    return {"records": n, "projects": p, "minutes": m}


def M(n, m):
    """The figures of a group counting records and minutes (no distinct projects: by modality, by month)."""
    return {"records": n, "minutes": m}


def total(r):
    t = r.rows("total")[0].values
    return t["records"], t["projects"], t["minutes"], t["new_projects"]


def by_key(r, table):
    return {row.key: row.values for row in r.rows(table)}


async def test_network_quarter_every_aggregate(seeded, service):
    r = await build(seeded, service, T3)
    assert r.period == T3 and r.partner is None and r.scope_name == "tout le réseau"
    assert r.generated_at == NOW
    assert total(r) == (9, 5, 690, 4)
    assert hours(r.value("total", "minutes")) == Decimal("11.5")
    assert r.rows("partner") == (("bge-fc", A(5, 3, 405)), ("urscop", A(2, 2, 180)), ("aldess", A(2, 1, 105)))
    assert list(r.rows("phase")) == [("accueil", A(3, 3, 135)), ("emergence", A(3, 3, 345)), ("ante_creation", A(1, 1, 120)),
                          ("financement", A(2, 2, 90)), ("lancement", A(0, 0, 0)), ("post_creation", A(0, 0, 0))]
    assert list(r.rows("modality")) == [("individuel", M(4, 300)), ("collectif", M(1, 60)), ("atelier", M(1, 180)),
                                        ("permanence", M(1, 30)), ("visio", M(1, 90)), ("telephone", M(1, 30))]
    assert list(r.rows("month")) == [("2026-07", M(4, 360)), ("2026-08", M(3, 240)), ("2026-09", M(2, 90))]
    assert [(k, v["minutes"]) for k, v in r.rows("partner_month")] == [
        (("bge-fc", "2026-07"), 330), (("bge-fc", "2026-08"), 45), (("bge-fc", "2026-09"), 30),
        (("urscop", "2026-08"), 120), (("urscop", "2026-09"), 60),
        (("aldess", "2026-07"), 30), (("aldess", "2026-08"), 75)]
    assert all(set(v) == {"minutes"} for _, v in r.rows("partner_month"))
    assert list(r.rows("department")) == [("21", A(1, 1, 60)), ("25", A(3, 1, 270)), ("39", A(2, 1, 75)),
                                          ("58", A(2, 1, 105)), ("70", A(1, 1, 180))]


async def test_network_quarter_profile(seeded, service):
    r = await build(seeded, service, T3)
    p = {k: v["projects"] for k, v in r.rows("holders")}
    assert [k for k, _ in r.rows("holders")] == [
        "accompanied", "women", "job_seekers", "long_term_job_seekers", "minima", "qpv", "frr", "under_26", "age_26_49",
        "over_50", "unknown_profile"]
    assert (p["accompanied"], p["women"], p["job_seekers"], p["long_term_job_seekers"], p["minima"], p["qpv"],
            p["frr"]) == (5, 2, 2, 1, 1, 1, 2)
    assert (p["under_26"], p["age_26_49"], p["over_50"], p["unknown_profile"]) == (1, 2, 1, 1)
    shares = {k: v.get("share") for k, v in r.rows("holders")}
    assert shares["women"] == Decimal("40.0") and shares["long_term_job_seekers"] == Decimal("20.0")
    assert shares["unknown_profile"] == Decimal("20.0") and shares["accompanied"] is None  # no share of the whole
    counts = {name[8:]: [(k, v["projects"]) for k, v in r.rows(name)] for name in r.figures if name.startswith("profile:")}
    assert r.rows("profile:gender")[0] == ("femme", {"projects": 2, "share": Decimal("40.0")})
    assert counts["gender"] == [("femme", 2), ("homme", 1), ("autre", 1), ("nc", 0), (None, 1)]
    assert counts["age_band"] == [("lt26", 1), ("26_49", 2), ("50plus", 1), ("nc", 0), (None, 1)]
    assert dict(counts["employment_status"]) == {"de_indemnise": 1, "de_non_indemnise": 0, "de_longue_duree": 1,
                                                 "salarie": 1, "independant": 1, "etudiant": 0, "sans_activite": 0,
                                                 "nc": 0, None: 1}
    assert counts["minima"] == [("rsa", 1), ("ass", 0), ("aucun", 2), ("nc", 1), (None, 1)]
    assert counts["qpv"] == [("oui", 1), ("non", 3), ("nc", 0), (None, 1)]
    assert counts["frr"] == [("oui", 2), ("non", 2), ("nc", 0), (None, 1)]


async def test_network_quarter_outcomes_and_referrals(seeded, service):
    r = await build(seeded, service, T3)
    o = by_key(r, "outcome")
    assert (o["creation"]["projects"], o["creation"]["jobs"], o["abandon"]["projects"], o["reorientation"]["projects"],
            o["report"]["projects"]) == (2, Decimal("3.50"), 1, 0, 0)
    assert [(k, c["projects"], c["jobs"]) for k, c in r.rows("outcome")] == [
        ("creation", 2, Decimal("3.50")), ("abandon", 1, Decimal("0.00")), ("reorientation", 0, Decimal("0.00")),
        ("report", 0, Decimal("0.00"))]
    assert [(k, c["projects"], c["jobs"]) for k, c in r.rows("legal_form")] == [
        ("scic", 1, Decimal("1.00")), ("scop", 1, Decimal("2.50"))]
    assert r.rows("referrals") == (("all", {"proposed": 3, "accepted": 1, "refused": 1, "pending": 1}),)  # network
    assert [(route, (c["proposed"], c["accepted"], c["refused"], c["pending"])) for route, c in r.rows("route")] == [
        (("aldess", "bge-fc"), (1, 0, 0, 1)), (("bge-fc", "urscop"), (2, 1, 1, 0))]


async def test_partner_scope(seeded, service):
    r = await build(seeded, service, T3, "bge-fc")
    assert r.scope_name == "BGE Franche-Comté"
    assert total(r) == (5, 3, 405, 2)
    assert r.rows("partner") == (("bge-fc", A(5, 3, 405)),)
    assert list(r.rows("department")) == [("25", A(2, 1, 150)), ("39", A(2, 1, 75)), ("70", A(1, 1, 180))]
    assert [(k, v["minutes"]) for k, v in r.rows("partner_month")] == [
        (("bge-fc", "2026-07"), 330), (("bge-fc", "2026-08"), 45), (("bge-fc", "2026-09"), 30)]
    h = by_key(r, "holders")
    assert (h["accompanied"]["projects"], h["women"]["projects"], h["unknown_profile"]["projects"]) == (3, 1, 1)
    o = by_key(r, "outcome")
    assert (o["creation"]["projects"], o["creation"]["jobs"], o["abandon"]["projects"]) == (1, Decimal("2.50"), 1)
    assert r.rows("referrals") == (("all", {"proposed": 3, "accepted": 1, "refused": 1, "pending": 1}),
                                   ("sent", {"proposed": 2}), ("received", {"proposed": 1}))

    r = await build(seeded, service, T3, "urscop")
    # P-2222 is new *for URSCOP* (its first URSCOP record is in the period); the cancelled n°9 does not count
    assert total(r) == (2, 2, 180, 2)
    assert r.rows("phase")[2:4] == (("ante_creation", A(1, 1, 120)), ("financement", A(1, 1, 60)))
    o = by_key(r, "outcome")
    assert (o["creation"]["projects"], o["creation"]["jobs"]) == (1, Decimal("1.00"))
    f = by_key(r, "referrals")
    assert (f["all"]["proposed"], f["all"]["accepted"], f["all"]["refused"], f["sent"]["proposed"],
            f["received"]["proposed"]) == (2, 1, 1, 0, 2)


async def test_year_month_and_range_periods(seeded, service):
    r = await build(seeded, service, year_period(2026))
    assert total(r) == (11, 6, 870, 6)
    months = r.rows("month")
    assert len(months) == 12 and months[5] == ("2026-06", M(1, 120))
    assert months[9] == ("2026-10", M(1, 60)) and months[0] == ("2026-01", M(0, 0))
    o = by_key(r, "outcome")
    assert (o["creation"]["projects"], o["reorientation"]["projects"], o["report"]["projects"]) == (2, 1, 1)
    assert r.value("referrals", "proposed", "all") == 4
    r = await build(seeded, service, month_period(2026, 9))
    assert (r.value("total", "records"), r.value("total", "minutes")) == (2, 90)  # n°4 (30 Sept.) and n°8; n°9 is cancelled
    r = await build(seeded, service, range_period(date(2026, 6, 30), date(2026, 7, 1)))
    records, projects, _, new = total(r)
    assert (records, projects, new) == (2, 1, 1)  # P-4444, new on 30 June
    assert [k for k, _ in r.rows("month")] == ["2026-06", "2026-07"]


async def test_months_across_a_year_boundary(database, service):
    async with database.sessions.begin() as session:
        await seed(session)
        for n, day in ((20, date(2025, 12, 31)), (21, date(2026, 1, 1)), (22, date(2026, 1, 31))):
            session.add(Accompaniment(id=n, project_id=1, advisor="@test:test", partner="bge-fc", date=day,
                                      phase="accueil", modality="individuel", duration_minutes=10 * n,
                                      cancelled=False, created_at=NOW))
    r = await build(database, service, range_period(date(2025, 12, 1), date(2026, 1, 31)))
    assert list(r.rows("month")) == [("2025-12", M(1, 200)), ("2026-01", M(2, 430))]
    assert [(k, v["minutes"]) for k, v in r.rows("partner_month")] == [(("bge-fc", "2025-12"), 200),
                                                                      (("bge-fc", "2026-01"), 430)]
    assert r.value("total", "new_projects") == 1 and r.value("total", "projects") == 1


async def test_empty_period(seeded, service):
    r = await build(seeded, service, quarter_period(2025, 1))
    assert total(r) == (0, 0, 0, 0) and not r.has_records
    assert list(r.rows("partner")) == [(s, A(0, 0, 0)) for s in ("bge-fc", "urscop", "aldess")]
    assert r.rows("department") == () and r.value("holders", "projects", "accompanied") == 0
    assert r.value("holders", "share", "women") == Decimal(0)
    assert all(m == 0 for _, a in r.rows("month") for m in (a["records"], a["minutes"]))
    assert r.chart.series == []


async def test_nothing_identifying_leaves_the_service(seeded, service):
    r = await build(seeded, service, year_period(2026))
    text = repr(r)
    for secret in ("Projet secret", "P-2222", "Note confidentielle", "@test:test"):
        assert secret not in text


async def test_two_sessions_and_the_chart_from_the_cube(seeded, service):
    cubes = []
    async with seeded.sessions() as session, seeded.sessions() as side:
        report = await service.build(session, T3, None, side=side, on_cube=cubes.append)
    assert report == await build(seeded, service, T3)  # the same figures as on one session
    chart = service.chart(T3, None, cubes[0])
    assert chart == report.chart
    assert chart.months == ["2026-07", "2026-08", "2026-09"]
    assert chart.series == [("BGE Franche-Comté", [330, 45, 30]), ("URSCOP", [0, 120, 60]), ("Aldess", [30, 75, 0])]


def test_scope_rules(service):
    assert service.scope("coordinator", "bge-fc", None) is None
    assert service.scope("admin", "bge-fc", "urscop") == "urscop"
    assert service.scope("advisor", "bge-fc", None) == "bge-fc"
    assert service.scope("advisor", "bge-fc", "bge-fc") == "bge-fc"
    with pytest.raises(ReportForbidden) as exc:
        service.scope("advisor", "bge-fc", "urscop")
    assert "URSCOP" in exc.value.message and "BGE Franche-Comté" in exc.value.message
    with pytest.raises(ReportForbidden):
        service.scope("coordinator", "bge-fc", "inconnu")


async def test_raw_sql_of_the_benchmark_gives_the_same_figures(seeded, service):
    """bench/report_bench.py times hand-written SQL against the bot: it must compute the same thing."""
    from sqlalchemy import text

    from bench.report_bench import raw_queries
    r = await build(seeded, service, T3, "bge-fc")
    params = {"start": T3.start, "end": T3.end, "partner": "bge-fc", "first_month": f"{T3.start:%Y-%m}",
              "last_month": f"{T3.end:%Y-%m}"}
    async with seeded.engine.connect() as conn:
        results = [(await conn.execute(text(q), params)).all() for q in raw_queries(seeded.is_sqlite, "bge-fc")]
    cube, phases, projects, outcomes, forms, referrals, routes = results
    assert [tuple(x) for x in cube if x[0] == "total"] == [("total", None, None, 5, 405)]
    assert {k: int(n) for k, n in phases} == {k: a["projects"] for k, a in r.rows("phase") if a["projects"]}
    assert sum(int(n) for _, n in phases) > 0
    assert ("total", None, 3, 5, 405) in [tuple(x) for x in projects]
    assert ("new", None, 2, None, None) in [tuple(x) for x in projects]
    assert sorted((k, int(n)) for k, n, _ in outcomes) == [("abandon", 1), ("creation", 1)]
    assert [int(v) for v in referrals[0]] == [3, 1, 1, 1, 2, 1]


async def test_network_month_cube_reads_its_index_in_order_on_sqlite(seeded, service):
    """The network's activity cube is right on both databases; on SQLite it is a range of
    ix_accompaniments_month_cube grouped in its order: no temporary B-tree sorting every record (that
    sort was most of a year's report time). PostgreSQL has no such index (it sorts fast enough)."""
    from sqlalchemy import event

    sent: list[tuple] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(seeded.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with seeded.sessions() as session:
            cube = {tuple(d.name for d in request.dims): groups
                    for request, groups in (await service.activity(session, T3, None)).items()}
            conn = await session.connection()
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sent[-1][0], sent[-1][1])).all() \
                if seeded.is_sqlite else []
    finally:
        event.remove(seeded.engine.sync_engine, "before_cursor_execute", capture)
    assert cube[()] == {None: M(9, 690)}
    assert cube[("month",)] == {"2026-07": M(4, 360), "2026-08": M(3, 240), "2026-09": M(2, 90)}
    if seeded.is_sqlite:
        details = [r[3] for r in plan]
        cube_steps = details[details.index("MATERIALIZE cube") + 1:][:2]
        assert "ix_accompaniments_month_cube" in cube_steps[0]
        assert not any("TEMP B-TREE" in d for d in cube_steps), details


async def test_distinct_projects_per_phase_read_from_their_index(seeded, service):
    """The projects of each phase (a project counts once per phase it went through, however many
    records, partners or cancellations) equal a count made record by record; on SQLite the statement
    reads ix_accompaniments_phase_projects alone (the six per-phase flags it replaced tripled the time
    of the projects statement)."""
    from sqlalchemy import event, select

    from ess_bot.storage.accompaniments import Accompaniment

    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with seeded.sessions.begin() as session:  # P-2222 in "accueil" twice more (two partners), once cancelled
        for n, partner, day, cancelled in ((20, "bge-fc", date(2026, 8, 3), False), (21, "urscop", date(2026, 9, 1), False),
                                           (22, "bge-fc", date(2026, 9, 2), True)):
            session.add(Accompaniment(id=n, project_id=1, advisor="@test:test", partner=partner, date=day,
                                      phase="accueil", modality="individuel", duration_minutes=30, note="",
                                      cancelled=cancelled, created_at=created))
    sent: list[tuple] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    found = {}
    for partner in (None, "bge-fc", "urscop"):
        event.listen(seeded.engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with seeded.sessions() as session:
                phase = next(r for r in service.plan.grouped if r.dims[0].name == "phase")
                found[partner] = {k: v["projects"] for k, v in (await service.grouped(session, T3, partner, phase)).items()}
                conn = await session.connection()
                plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sent[-1][0], sent[-1][1])).all() \
                    if seeded.is_sqlite and partner is None else []
                rows = (await session.execute(select(Accompaniment))).scalars().all()
        finally:
            event.remove(seeded.engine.sync_engine, "before_cursor_execute", capture)
        expected: dict[str, set[int]] = {}
        for a in rows:
            if not a.cancelled and T3.start <= a.date <= T3.end and partner in (None, a.partner):
                expected.setdefault(a.phase, set()).add(a.project_id)
        assert found[partner] == {k: len(v) for k, v in expected.items()}
        if plan:
            assert any("COVERING INDEX ix_accompaniments_phase_projects" in r[3] for r in plan), plan
    # 5 live "accueil" records in T3 over the network, 3 projects; at URSCOP: P-2222 alone
    assert found[None]["accueil"] == 3 and found["bge-fc"]["accueil"] == 2 and found["urscop"]["accueil"] == 1
    assert (await build(seeded, service, T3)).rows("phase")[0] == ("accueil", A(5, 3, 195))

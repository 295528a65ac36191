"""`!rapport 2026` over many accompaniments: the bot end to end vs the same aggregates in raw SQL.

``await run(url, records)`` migrates the database at ``url``, fills it with ``records`` accompaniments
spread realistically over the 8 partners of config.example.toml and the 12 months of 2026 (bulk
inserts), then times:

- the bot: ``!rapport 2026`` sent by a coordinator in the coordination room, through the App and its
  dispatcher (parse, SQL aggregates, CSV + XLSX + PNG rendering, outbox), the outbox drained into a
  recorder — median of 5 runs after one warm-up;
- raw SQL: the same GROUP BY queries written as plain SQL text, on the same engine, one after the
  other on one connection — median of 5.

Runs alternate (SQL, bot, SQL, bot…) so that both see the same load on a shared machine; the CPU time
of the process is reported too. The bot sends its two big statements on two connections at once and
draws the chart while the second one runs: it can beat the sequential raw SQL on a multi-core machine.
On SQLite no ANALYZE is run (the bot never runs one); on PostgreSQL the load is followed by ANALYZE, as
autovacuum would do.

    python -m bench.report_bench --records 100000 --url sqlite+aiosqlite:////tmp/r.db
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ess_bot.app import App  # noqa: E402
from ess_bot.clock import Clock  # noqa: E402
from ess_bot.config import EXAMPLE_CONFIG, Config, parse_config  # noqa: E402
from ess_bot.framework.messages import Incoming, Outgoing  # noqa: E402
from ess_bot.parsing import CODE_ALPHABET  # noqa: E402
from ess_bot.storage.accompaniments import (Accompaniment, AccompanimentTheme, Project, ProjectOutcome,  # noqa: E402
                                            Referral)
from ess_bot.storage.db import Database  # noqa: E402
from ess_bot.storage.models import BotState  # noqa: E402
from ess_bot.text import fold  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 15, 10, 0, tzinfo=PARIS)   # every day of 2026 is in the past
YEAR = 2026
MARKER = "bench:report_records"
COORDINATOR = "@claire:example.org"
WEIGHTS = {"bge-fc": 30, "urscop": 14, "coopilote": 12, "active71": 10, "pesad21": 9, "aldess": 9,
           "cluster-jura": 8, "fdfr89": 8}
PHASES = (("accueil", 18), ("emergence", 24), ("ante_creation", 22), ("financement", 14), ("lancement", 10),
          ("post_creation", 12))
MODALITIES = (("individuel", 55), ("visio", 15), ("telephone", 10), ("collectif", 8), ("atelier", 7),
              ("permanence", 5))
DURATIONS = (30, 45, 60, 60, 90, 90, 120, 180)
THEMES = ("etude_marche", "modele_economique", "juridique", "gouvernance", "financement", "rh", "commercial")
CHUNK = 10_000


@dataclass(frozen=True)
class ReportTiming:
    bot_seconds: float           # wall clock, median of 5
    sql_seconds: float
    bot_cpu_seconds: float = 0.0  # CPU time of the process (every thread), median of 5: steadier on a busy machine
    sql_cpu_seconds: float = 0.0


# -- configuration -----------------------------------------------------------------------------

def bench_config(url: str) -> Config:
    raw = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    raw["database"] = {"url": url}
    return parse_config(raw, source="bench")


# -- data --------------------------------------------------------------------------------------

def _code(i: int) -> str:
    """A unique project code per index (a bijection of 0 … 31⁴-1)."""
    n = (i * 7_919 + 12_345) % (31 ** 4)
    chars = []
    for _ in range(4):
        n, r = divmod(n, 31)
        chars.append(CODE_ALPHABET[r])
    return "P-" + "".join(chars)


def _pick(rng: random.Random, weighted) -> str:
    keys, weights = zip(*weighted)
    return rng.choices(keys, weights)[0]


def generate(config: Config, records: int, seed: int = 2026) -> dict[str, list[dict]]:
    """Rows for every table, deterministic for a given seed."""
    rng = random.Random(seed)
    partners = {p.slug: p for p in config.partners}
    slugs = list(WEIGHTS)
    n_projects = max(1, records // 8)
    start = date(YEAR, 1, 1)
    created = datetime(YEAR - 1, 12, 1, 9, tzinfo=timezone.utc)
    projects, owners = [], []
    for i in range(1, n_projects + 1):
        slug = rng.choices(slugs, [WEIGHTS[s] for s in slugs])[0]
        owners.append(slug)
        profiled = rng.random() < 0.7
        label = f"Projet banc {i}"

        def band(values, weights):
            return rng.choices(values, weights)[0] if profiled else None

        projects.append(dict(
            id=i, code=_code(i), label=label, label_key=fold(label), partner=slug,
            department=rng.choice(partners[slug].departments), nature=_pick(rng, (("creation", 70), ("reprise", 10),
                                                                                  ("developpement", 15),
                                                                                  ("consolidation", 5))),
            legal_form=rng.choice(("association", "scop", "scic", "cae", "sas_sarl_ess", "ei", "nsp")),
            collective=rng.random() < 0.3, esus=rng.choice(("non", "non", "demande", "obtenu")),
            created_at=created + timedelta(days=rng.randrange(365)), created_by="@bench:example.org",
            updated_at=None, updated_by=None,
            gender=band(("femme", "homme", "autre", "nc"), (46, 48, 1, 5)),
            age_band=band(("lt26", "26_49", "50plus", "nc"), (15, 60, 20, 5)),
            employment_status=band(("de_indemnise", "de_non_indemnise", "de_longue_duree", "salarie", "independant",
                                    "etudiant", "sans_activite", "nc"), (25, 10, 10, 25, 10, 5, 10, 5)),
            minima=band(("rsa", "ass", "aucun", "nc"), (12, 3, 75, 10)),
            qpv=band(("oui", "non", "nc"), (10, 80, 10)),
            frr=band(("oui", "non", "nc"), (20, 70, 10))))
    accompaniments, themes = [], []
    for i in range(1, records + 1):
        pid = rng.randint(1, n_projects)
        slug = owners[pid - 1] if rng.random() < 0.95 else "urscop"
        day = start + timedelta(days=rng.randrange(365))
        cancelled = rng.random() < 0.02
        accompaniments.append(dict(
            id=i, project_id=pid, advisor=f"@conseil{rng.randrange(4)}-{slug}:example.org", partner=slug, date=day,
            phase=_pick(rng, PHASES), modality=_pick(rng, MODALITIES), duration_minutes=rng.choice(DURATIONS),
            note=None, source_event_id=None, cancelled=cancelled,
            cancelled_at=datetime(YEAR, 12, 31, tzinfo=timezone.utc) if cancelled else None,
            cancelled_by="@bench:example.org" if cancelled else None,
            created_at=datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc), updated_at=None,
            updated_by=None))
        if rng.random() < 0.3:
            for theme in rng.sample(THEMES, rng.choice((1, 1, 2))):
                themes.append(dict(accompaniment_id=i, theme=theme))
    outcomes, referrals = [], []
    for pid in range(1, n_projects + 1):
        slug = owners[pid - 1]
        if rng.random() < 0.15:
            kind = _pick(rng, (("creation", 60), ("abandon", 25), ("reorientation", 10), ("report", 5)))
            outcomes.append(dict(
                project_id=pid, outcome=kind, date=start + timedelta(days=rng.randrange(365)),
                legal_form=rng.choice(("association", "scop", "scic", "ei")) if kind == "creation" else None,
                jobs_fte=Decimal(rng.choice(("0.5", "1", "1", "2", "3.5"))) if kind == "creation" else None,
                partner=slug, recorded_by="@bench:example.org", recorded_at=created))
        if rng.random() < 0.05:
            status = _pick(rng, (("acceptee", 60), ("refusee", 15), ("proposee", 25)))
            referrals.append(dict(
                project_id=pid, from_partner=slug, to_partner="urscop" if slug != "urscop" else "bge-fc",
                date=start + timedelta(days=rng.randrange(365)), note=None, status=status,
                created_by="@bench:example.org", created_at=created,
                decided_by=None if status == "proposee" else "@bench:example.org",
                decided_at=None if status == "proposee" else created, reason=None))
    return {"projects": projects, "accompaniments": accompaniments, "accompaniment_themes": themes,
            "project_outcomes": outcomes, "referrals": referrals}


async def fill(db: Database, config: Config, records: int) -> None:
    """Bulk-insert the generated rows (an empty database), or keep what an earlier run left."""
    async with db.sessions() as session:
        marker = await session.scalar(select(BotState.value).where(BotState.key == MARKER))
        existing = await session.scalar(select(func.count()).select_from(Project))
    if marker == str(records):
        return
    if existing:
        raise SystemExit(f"La base {db.url} contient déjà des projets : le banc d'essai veut une base vide.")
    rows = generate(config, records)
    tables = {"projects": Project.__table__, "accompaniments": Accompaniment.__table__,
              "accompaniment_themes": AccompanimentTheme.__table__, "project_outcomes": ProjectOutcome.__table__,
              "referrals": Referral.__table__}
    async with db.engine.begin() as conn:
        for name, table in tables.items():
            data = rows[name]
            for i in range(0, len(data), CHUNK):
                await conn.execute(insert(table), data[i:i + CHUNK])
        await conn.execute(insert(BotState.__table__), [{"key": MARKER, "value": str(records)}])
        if not db.is_sqlite:  # identity sequences after explicit ids
            for table in ("projects", "accompaniments"):
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
    if not db.is_sqlite:  # as autovacuum would after such a load; the bot never runs ANALYZE on SQLite
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


# -- timing ------------------------------------------------------------------------------------

def raw_queries(sqlite: bool, partner: str | None = None) -> list[str]:
    """The report's aggregates written as plain SQL: the same statements the service sends (the
    activity cube, the distinct projects per phase, the other project figures, outcomes, referrals), for ``:start``/``:end`` (and ``:partner``; on
    SQLite ``:first_month``/``:last_month`` too, as the service bounds the cube's month index)."""
    month = "substr(a.date, 1, 7)" if sqlite else "to_char(CAST(a.date AS TIMESTAMP), 'YYYY-MM')"
    false = "0" if sqlite else "false"
    live = f"a.cancelled = {false} AND a.date >= :start AND a.date <= :end"
    if partner:
        live += " AND a.partner = :partner"
    months = f" AND {month} >= :first_month AND {month} <= :last_month" if sqlite else ""
    cube = (f"WITH cube AS (SELECT a.partner, a.phase, a.modality, {month} AS month, count(*) AS n, "
            f"sum(a.duration_minutes) AS m FROM accompaniments a WHERE {live}{months} "
            f"GROUP BY {month}, a.partner, a.phase, a.modality) "
            "SELECT 'partner', partner, NULL, sum(n), sum(m) FROM cube GROUP BY partner "
            "UNION ALL SELECT 'phase', phase, NULL, sum(n), sum(m) FROM cube GROUP BY phase "
            "UNION ALL SELECT 'modality', modality, NULL, sum(n), sum(m) FROM cube GROUP BY modality "
            "UNION ALL SELECT 'month', month, NULL, sum(n), sum(m) FROM cube GROUP BY month "
            "UNION ALL SELECT 'partner_month', partner, month, sum(n), sum(m) FROM cube GROUP BY partner, month "
            "UNION ALL SELECT 'total', NULL, NULL, sum(n), sum(m) FROM cube")
    bands = ("gender", "age_band", "employment_status", "minima", "qpv", "frr")
    earlier = f"b.project_id = s.pid AND b.cancelled = {false} AND b.date < :start"
    if partner:
        earlier += " AND b.partner = :partner"
    phases = f"SELECT a.phase, count(DISTINCT a.project_id) FROM accompaniments a WHERE {live} GROUP BY a.phase"
    projects = (
        f"WITH pp AS (SELECT a.project_id AS pid, a.partner, count(*) AS n, sum(a.duration_minutes) AS m "
        f"FROM accompaniments a WHERE {live} GROUP BY a.project_id, a.partner), "
        f"s AS (SELECT pp.pid, sum(pp.n) AS n, sum(pp.m) AS m FROM pp GROUP BY pp.pid), "
        f"pr AS (SELECT p.department, {', '.join('p.' + b for b in bands)}, count(*) AS k, sum(s.n) AS n, "
        f"sum(s.m) AS m FROM s JOIN projects p ON p.id = s.pid GROUP BY p.department, "
        f"{', '.join('p.' + b for b in bands)}) "
        "SELECT 'total', NULL, count(*), sum(s.n), sum(s.m) FROM s "
        "UNION ALL SELECT 'partner', pp.partner, count(*), sum(pp.n), sum(pp.m) FROM pp GROUP BY pp.partner "
        + "UNION ALL SELECT 'department', pr.department, sum(pr.k), sum(pr.n), sum(pr.m) FROM pr GROUP BY pr.department "
        f"UNION ALL SELECT 'new', NULL, count(*), NULL, NULL FROM s WHERE NOT EXISTS "
        f"(SELECT 1 FROM accompaniments b WHERE {earlier}) "
        "UNION ALL SELECT 'job_seekers', NULL, sum(pr.k), NULL, NULL FROM pr "
        "WHERE pr.employment_status IN ('de_indemnise', 'de_non_indemnise', 'de_longue_duree') "
        "UNION ALL SELECT 'minima_recipients', NULL, sum(pr.k), NULL, NULL FROM pr WHERE pr.minima IN ('rsa', 'ass') "
        "UNION ALL SELECT 'unknown_profile', NULL, sum(pr.k), NULL, NULL FROM pr WHERE "
        + " AND ".join(f"pr.{b} IS NULL" for b in bands)
        + "".join(f" UNION ALL SELECT 'profile:{b}', pr.{b}, sum(pr.k), NULL, NULL FROM pr GROUP BY pr.{b}"
                  for b in bands))
    outcome_scope = " AND o.partner = :partner" if partner else ""
    referral_scope = " AND (r.from_partner = :partner OR r.to_partner = :partner)" if partner else ""
    counts = ("count(*), coalesce(sum(CASE WHEN r.status = 'acceptee' THEN 1 ELSE 0 END), 0), "
              "coalesce(sum(CASE WHEN r.status = 'refusee' THEN 1 ELSE 0 END), 0), "
              "coalesce(sum(CASE WHEN r.status = 'proposee' THEN 1 ELSE 0 END), 0)")
    sides = ("coalesce(sum(CASE WHEN r.from_partner = :partner THEN 1 ELSE 0 END), 0), "
             "coalesce(sum(CASE WHEN r.to_partner = :partner THEN 1 ELSE 0 END), 0)") if partner else "0, 0"
    return [
        cube, phases, projects,
        "SELECT o.outcome, count(*), coalesce(sum(o.jobs_fte), 0) FROM project_outcomes o "
        f"WHERE o.date >= :start AND o.date <= :end{outcome_scope} GROUP BY o.outcome ORDER BY o.outcome",
        "SELECT o.legal_form, count(*), coalesce(sum(o.jobs_fte), 0) FROM project_outcomes o "
        f"WHERE o.date >= :start AND o.date <= :end{outcome_scope} AND o.outcome = 'creation' "
        "GROUP BY o.legal_form ORDER BY o.legal_form",
        f"SELECT {counts}, {sides} FROM referrals r WHERE r.date >= :start AND r.date <= :end{referral_scope}",
        f"SELECT r.from_partner, r.to_partner, {counts} FROM referrals r WHERE r.date >= :start "
        f"AND r.date <= :end{referral_scope} GROUP BY r.from_partner, r.to_partner "
        "ORDER BY r.from_partner, r.to_partner",
    ]


def raw_sql_runner(db: Database):
    """One run of the raw SQL: (wall seconds, CPU seconds)."""
    queries = [text(q) for q in raw_queries(db.is_sqlite)]
    params = {"start": date(YEAR, 1, 1), "end": date(YEAR, 12, 31), "first_month": f"{YEAR}-01",
              "last_month": f"{YEAR}-12"}

    async def once() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        async with db.engine.connect() as conn:
            for q in queries:
                (await conn.execute(q, params)).all()
        return time.perf_counter() - t0, time.process_time() - c0

    return once


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def __call__(self, out: Outgoing, txn_id: str) -> str:
        self.sent.append(out)
        return f"$sent-{len(self.sent)}"


def bot_runner(app: App, config: Config):
    """One ``!rapport 2026`` through the dispatcher and the outbox: (wall seconds, CPU seconds)."""
    recorder = _Recorder()
    sender = app.outbox_sender(recorder)
    room = config.rooms.coordination
    n = 0

    async def once() -> tuple[float, float]:
        nonlocal n
        n += 1
        before = len(recorder.sent)
        t0, c0 = time.perf_counter(), time.process_time()
        await app.handle(Incoming(event_id=f"$rapport-{time.monotonic_ns()}-{n}", room_id=room, sender=COORDINATOR,
                                  body=f"!rapport {YEAR}", timestamp=app.clock.now()))
        await sender.drain()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        kinds = sorted(o.kind for o in recorder.sent[before:])
        if kinds != ["file", "file", "image", "notice"]:
            raise RuntimeError(f"!rapport a répondu autre chose que prévu : {kinds} "
                               f"{[o.body[:200] for o in recorder.sent[before:]]}")
        return elapsed, cpu

    return once


async def run(url: str, records: int, runs: int = 5) -> ReportTiming:
    config = bench_config(url)
    db = Database(url)
    app = App(config, Clock(PARIS, frozen_at=NOW), db, transport="console")
    try:
        await app.prepare()
        await fill(db, config, records)
        sql_once, bot_once = raw_sql_runner(db), bot_runner(app, config)
        await sql_once()   # warm-ups: caches, and the first report imports matplotlib and openpyxl
        await bot_once()
        sql, bot = [], []
        for _ in range(runs):  # interleaved, so that both see the same machine load
            sql.append(await sql_once())
            bot.append(await bot_once())
    finally:
        await app.close()
    median = statistics.median
    return ReportTiming(bot_seconds=median(b[0] for b in bot), sql_seconds=median(s[0] for s in sql),
                        bot_cpu_seconds=median(b[1] for b in bot), sql_cpu_seconds=median(s[1] for s in sql))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_bench",
                                     description="!rapport 2026 de bout en bout contre le SQL brut équivalent.")
    parser.add_argument("--records", type=int, default=100_000, help="nombre de suivis générés (défaut : 100 000)")
    parser.add_argument("--url", default="sqlite+aiosqlite:////tmp/ess-bot-rapport.db",
                        help="base de données (vide, ou remplie par un lancement précédent avec le même --records)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    timing = asyncio.run(run(args.url, args.records))
    total = time.perf_counter() - t0
    ratio = timing.bot_seconds / timing.sql_seconds if timing.sql_seconds else float("inf")
    print(f"{args.records} suivis sur {args.url}")
    print(f"  bot (!rapport {YEAR}, médiane de 5) : {timing.bot_seconds * 1000:.0f} ms")
    print(f"  SQL brut (médiane de 5)            : {timing.sql_seconds * 1000:.0f} ms")
    print(f"  rapport bot / SQL                  : {ratio:.2f}×")
    print(f"  temps CPU du processus (médianes)  : bot {timing.bot_cpu_seconds * 1000:.0f} ms, "
          f"SQL brut {timing.sql_cpu_seconds * 1000:.0f} ms")
    print(f"  (durée totale, génération comprise : {total:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark's workload: a bot configuration, seeded projects, realistic `!suivi` lines."""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ess_bot.config import load_config
from ess_bot.parsing import DateParser
from ess_bot.services.accompaniments import AccompanimentService, Actor, NewProject
from ess_bot.storage.accompaniments import Accompaniment
from ess_bot.storage.db import Database
from ess_bot.clock import Clock

PARTNERS = [("bge-fc", "25"), ("coopilote", "21"), ("aldess", "58"), ("cluster-jura", "39"), ("pesad21", "21"),
            ("active71", "71"), ("fdfr89", "89"), ("urscop", "70")]
PHASES = ["émergence", "accueil", "ante-création", "financement", "lancement", "post-création"]
DURATIONS = ["1h30", "45min", "2h", "1h", "30 min", "1,5h"]
DATES = ["hier", "aujourd'hui", "mardi dernier", "le 12/11", "avant-hier", "il y a 3 jours"]
BURST_NOTE = "rafale"

def write_config(work: Path, homeserver: str, bot_id: str, password: str, db_url: str, members: list[str],
                 rooms: list[str]) -> Path:
    """Eight partners, ten advisors spread over them, the eight rooms as coordination + partner rooms."""
    lines = ['[bot]\ncommand_prefix = "!"\ntimezone = "Europe/Paris"\n',
             f'[matrix]\nhomeserver = "{homeserver}"\nuser_id = "{bot_id}"\npassword = "{password}"\n'
             f'store_path = "{work}/store"\nbroadcast_interval_ms = 0\n',
             f'[database]\nurl = "{db_url}"\n',
             f'[rooms]\ncoordination = "{rooms[0]}"\nannouncements = []\n']
    for i, (slug, dep) in enumerate(PARTNERS):
        room = f'room = "{rooms[i]}"\n' if i > 0 else ""
        lines.append(f'[[partners]]\nslug = "{slug}"\nname = "{slug.upper()}"\ndepartments = ["{dep}"]\n{room}')
    for i, user in enumerate(members):
        lines.append(f'[[members]]\nuser_id = "{user}"\npartner = "{PARTNERS[i % len(PARTNERS)][0]}"\n'
                     f'role = "advisor"\n')
    path = work / "bench-config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def seed_projects(config_path: Path, members: list[str]) -> list[str]:
    """One project per advisor, created through the service (as `!projet nouveau` would)."""
    config = load_config(config_path)
    db = Database(config.database.url)
    service = AccompanimentService(config, Clock(config.bot.tz))
    codes = []
    async with db.sessions.begin() as session:
        for i, user in enumerate(members):
            member = config.member(user)
            dep = config.partner(member.partner).departments[0]
            view = await service.create_project(session, Actor(user, member.partner, "advisor"),
                                                NewProject(label=f"Projet banc {i}", department=dep))
            codes.append(view.code)
    await db.dispose()
    return codes


def suivi_line(codes: list[str], client: int, k: int) -> str:
    """A realistic one-line `!suivi` (fields in varied order, French dates); k ≥ 1000 marks the burst."""
    code = codes[client % len(codes)]
    phase, duration, when = PHASES[k % 6], DURATIONS[k % 6], DATES[k % 6]
    note = f' "{BURST_NOTE}"' if k >= 1000 else ""
    return f"!suivi {code} {phase} {duration} {when}{note}" if k % 2 else f"!suivi {duration} {code} {when} {phase}{note}"


async def count_records(db_url: str) -> dict[str, int]:
    db = Database(db_url)
    async with db.sessions() as session:
        burst = await session.scalar(select(func.count()).select_from(Accompaniment)
                                     .where(Accompaniment.note == BURST_NOTE, Accompaniment.cancelled.is_(False)))
        total = await session.scalar(select(func.count()).select_from(Accompaniment))
    await db.dispose()
    return {"burst": burst, "total": total}


def date_parse_median(samples: int = 2000) -> float:
    """Median time of one French date parse, as `!suivi` does it (a parser built once, `now` moving)."""
    tz = ZoneInfo("Europe/Paris")
    parser = DateParser(tz)
    texts = ["hier", "mardi dernier", "le 12/11", "12 novembre", "il y a 3 jours", "avant-hier", "lundi",
             "3 octobre 2026"]
    base = datetime(2026, 11, 27, 10, 0, tzinfo=tz)
    parser.parse("hier", base)  # the first call loads dateparser's language data
    times = []
    for i in range(samples):
        now = base.replace(minute=i % 60)
        t0 = time.perf_counter()
        parser.parse(texts[i % len(texts)], now)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

"""``make bench``: ess-bot against the floor (a minimal nio echo bot), side by side, in one run.

Everything runs on this machine: one Synapse on 127.0.0.1 started here, the echo bot and ess-bot as
separate processes, the same raw client for both. Prints one table and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import PostgresServer, SynapseServer, TestUser, fresh_user  # noqa: E402
from tests.harness.matrix_client import match  # noqa: E402

from bench import workload  # noqa: E402


def step(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Row:
    figure: str
    bot: str
    floor: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure, bot, floor="", ratio=None, target="", ok=None):
        self.rows.append(Row(figure, bot, floor, "" if ratio is None else f"{ratio:.2f}×", target, ok))

    def table(self) -> str:
        lines = ["| Mesure | ess-bot | plancher (bot écho) | rapport | objectif | atteint |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            status = "" if r.ok is None else ("oui" if r.ok else "**non**")
            lines.append(f"| {r.figure} | {r.bot} | {r.floor} | {r.ratio} | {r.target} | {status} |")
        return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found")


def reply_target(ev: dict) -> str | None:
    rel = (ev.get("content") or {}).get("m.relates_to") or {}
    return (rel.get("m.in_reply_to") or {}).get("event_id")


class BotProcess:
    """A bot in its own process (echo bot or ess-bot)."""

    def __init__(self, argv: list[str], env: dict | None = None, log: Path | None = None):
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def round_trips(client: TestUser, room: str, bot_id: str, bodies: list[str]) -> list[float]:
    """Sequential: send, wait for the bot's reply to that message; the time of each round trip."""
    times = []
    for body in bodies:
        t0 = time.perf_counter()
        event_id = await client.send_text(room, body)
        await client.wait_for(room, lambda ev, e=event_id: ev.get("sender") == bot_id and reply_target(ev) == e,
                              timeout=60)
        times.append(time.perf_counter() - t0)
    return times


async def cold_start(proc: BotProcess, client: TestUser, room: str, bot_id: str, body: str) -> tuple[float, bool]:
    """Process start → first command answered. Also checks that a message sent before the start is never
    answered. Returns (seconds, history_was_answered)."""
    before = await client.send_text(room, body + " (avant le démarrage)")
    await client.start_listening()
    proc.start()
    sent: list[str] = []

    async def keep_asking():
        while True:
            sent.append(await client.send_text(room, body))
            await asyncio.sleep(0.05)

    asker = asyncio.create_task(keep_asking())
    try:
        await client.wait_for(room, lambda ev: ev.get("sender") == bot_id and reply_target(ev) in sent, timeout=120)
        elapsed = time.perf_counter() - proc.started_at
    finally:
        asker.cancel()
        await asyncio.gather(asker, return_exceptions=True)
    await asyncio.sleep(1.0)
    await client.sync_once(timeout=0)
    answered_before = any(ev.get("sender") == bot_id and reply_target(ev) == before for ev in client.buffered(room))
    return elapsed, answered_before


async def burst(clients: list[TestUser], rooms: list[str], observer: TestUser, bot_id: str,
                make_body, total: int) -> tuple[float, dict[str, int], list[str]]:
    """``total`` commands from all clients over all rooms, as fast as the homeserver takes them.
    Returns (seconds until the last reply, replies per command event id, sent ids)."""
    await observer.start_listening()
    per_client = total // len(clients)
    sent: list[str] = []

    async def send_all(i: int, client: TestUser) -> None:
        for k in range(per_client):
            room = rooms[(i + k) % len(rooms)]
            sent.append(await client.send_text(room, make_body(i, k)))

    t0 = time.perf_counter()
    await asyncio.gather(*(send_all(i, c) for i, c in enumerate(clients)))
    replies = await observer.collect(None, lambda ev: ev.get("sender") == bot_id and ev.get("type") == "m.room.message",
                                     total, timeout=300, allow_fewer=True)  # a lost message shows in the counts
    elapsed = time.perf_counter() - t0
    extra = await observer.collect(None, lambda ev: ev.get("sender") == bot_id and ev.get("type") == "m.room.message",
                                   1, timeout=2, allow_fewer=True)
    counts: dict[str, int] = {}
    for ev in replies + extra:
        counts[reply_target(ev)] = counts.get(reply_target(ev), 0) + 1
    return elapsed, counts, sent


def versions() -> str:
    from importlib.metadata import version
    names = ["ess-bot", "matrix-nio", "matrix-synapse", "SQLAlchemy", "aiosqlite", "asyncpg", "dateparser"]
    return ", ".join(f"{n} {version(n)}" for n in names) + f", Python {platform.python_version()}"


async def main(args) -> int:
    res = Results()
    work = Path(tempfile.mkdtemp(prefix="ess-bot-bench-"))
    hs = SynapseServer(log_level="ERROR").start()
    pg = PostgresServer().start() if not args.no_postgres else None
    procs: list[BotProcess] = []
    users: list[TestUser] = []
    try:
        async def new_user(prefix, password=None):
            uid, token, dev = await hs.register_user_async(fresh_user(prefix), password=password)
            u = TestUser(hs.base_url, uid, token, dev)
            users.append(u)
            return u

        echo = await new_user("echo")
        ess_password = "bench-password"
        ess_id, _, _ = await hs.register_user_async(fresh_user("essbot"), password=ess_password)
        ess = TestUser(hs.base_url, *hs.login(ess_id, ess_password))
        users.append(ess)
        clients = [await new_user(f"conseil{i}") for i in range(10)]
        observer = await new_user("observateur")
        members = [c.user_id for c in clients]

        async def make_rooms(bot: TestUser, label: str) -> list[str]:
            rooms = []
            for n in range(8):
                room = await clients[0].create_room(name=f"{label} {n}", invite=[bot.user_id, observer.user_id,
                                                                                  *members[1:]])
                for u in [bot, observer, *clients[1:]]:
                    await u.join(room)
                rooms.append(room)
            return rooms

        echo_rooms = await make_rooms(echo, "écho")
        ess_rooms = await make_rooms(ess, "ess")
        await ess.close()
        for u in clients + [observer]:
            await u.start_listening()

        # -- processes ---------------------------------------------------------------------------
        echo_proc = BotProcess([sys.executable, "-m", "bench.echo_bot", hs.base_url, echo.user_id,
                                echo.access_token, echo.device_id], log=work / "echo.log")
        procs.append(echo_proc)
        db_url = f"sqlite+aiosqlite:///{work}/ess.db"
        config = workload.write_config(work, hs.base_url, ess_id, ess_password, db_url, members, ess_rooms)
        ess_proc = BotProcess([sys.executable, "-m", "ess_bot", "run", "-c", str(config)], log=work / "ess.log")
        procs.append(ess_proc)

        step("cold start (echo bot, then ess-bot)")
        # 4. cold start (first start of each bot: history skipped)
        c = clients[0]
        echo_cold, echo_hist = await cold_start(echo_proc, c, echo_rooms[0], echo.user_id, "bonjour")
        ess_cold, ess_hist = await cold_start(ess_proc, c, ess_rooms[0], ess_id, "!ping")
        codes = await workload.seed_projects(config, members)

        step(f"sequential round trips: {args.n} × echo, !ping, !suivi")
        # 1–2. sequential round trips
        n = args.n
        echo_rt = await round_trips(c, echo_rooms[0], echo.user_id, [f"message {i}" for i in range(n)])
        ping_rt = await round_trips(c, ess_rooms[0], ess_id, ["!ping"] * n)
        suivi_rt = await round_trips(c, ess_rooms[0], ess_id, [workload.suivi_line(codes, 0, i) for i in range(n)])
        for label, values in (("!ping", ping_rt), ("!suivi (écriture)", suivi_rt)):
            for q, target in ((50, 1.10), (95, None), (99, 1.25)):
                ratio = pct(values, q) / pct(echo_rt, q)
                res.add(f"{label} aller-retour p{q} ({n} messages)", ms(pct(values, q)), ms(pct(echo_rt, q)), ratio,
                        f"≤ {target:.2f}×" if target else "", ratio <= target if target else None)

        step(f"burst of {args.burst} (echo bot, then ess-bot)")
        # 3. burst
        total = args.burst
        echo_t, echo_counts, echo_sent = await burst(clients, echo_rooms, observer, echo.user_id,
                                                     lambda i, k: f"rafale {i}-{k}", total)
        ess_t, ess_counts, ess_sent = await burst(clients, ess_rooms, observer, ess_id,
                                                  lambda i, k: workload.suivi_line(codes, i, 1000 + k), total)
        echo_tp, ess_tp = total / echo_t, total / ess_t
        echo_lost = sum(1 for e in echo_sent if echo_counts.get(e, 0) == 0)
        if echo_lost:
            res.notes.append(f"Le bot écho a perdu {echo_lost} messages de la rafale (trou de synchronisation "
                             "« limited » ignoré par nio) : son débit est donc surestimé.")
        once = all(ess_counts.get(e) == 1 for e in ess_sent) and len(ess_counts) == total
        records = await workload.count_records(db_url)
        res.add(f"Rafale {total} `!suivi` (10 personnes, 8 salons) : débit", f"{ess_tp:.0f} msg/s",
                f"{echo_tp:.0f} msg/s", ess_tp / echo_tp, "≥ 0.90×", ess_tp / echo_tp >= 0.9)
        res.add("Rafale : délai jusqu'à la dernière réponse", f"{ess_t:.1f} s", f"{echo_t:.1f} s", ess_t / echo_t)
        res.add("Rafale : une réponse et une seule par commande ; suivis en base",
                f"{'oui' if once else 'NON'} ; {records['burst']} / {total}", "", None,
                f"exactement {total}", once and records["burst"] == total)
        rss = rss_mb(ess_proc.pid)
        res.add("Mémoire (RSS) après la rafale", f"{rss:.0f} Mo", "", None, "≤ 120 Mo", rss <= 120)

        res.add("Démarrage à froid → première commande traitée", f"{ess_cold:.2f} s", f"{echo_cold:.2f} s",
                ess_cold / echo_cold, "≤ 1.50×", ess_cold / echo_cold <= 1.5)
        res.add("Message envoyé avant le premier démarrage : resté sans réponse",
                "oui" if not ess_hist else "NON", "oui" if not echo_hist else "NON", None, "oui", not ess_hist)

        # 5. report over 100,000 accompaniments, SQLite and PostgreSQL
        for backend in ("sqlite", "postgresql") if args.records else ():
            if backend == "postgresql" and pg is None:
                continue
            url = f"sqlite+aiosqlite:///{work}/rapport.db" if backend == "sqlite" else pg.create_database("rapport")
            step(f"report over {args.records} records on {backend}")
            from bench import report_bench
            rep = await report_bench.run(url, args.records)
            ok = rep.bot_seconds <= 2 * rep.sql_seconds and (backend != "sqlite" or rep.bot_seconds < 0.5)
            res.add(f"`!rapport 2026` sur {args.records:,} suivis ({backend})".replace(",", " "),
                    ms(rep.bot_seconds), f"{ms(rep.sql_seconds)} (SQL brut)", rep.bot_seconds / rep.sql_seconds,
                    "≤ 2×" + (" et < 0,5 s" if backend == "sqlite" else ""), ok)

        step("date parsing")
        # 6. date parsing
        median = workload.date_parse_median()
        res.add("Analyse d'une date en français (médiane)", f"{median * 1000:.2f} ms", "", None, "≤ 5 ms",
                median <= 0.005)
    finally:
        for p in procs:
            p.stop()
        for u in users:
            await u.close()
        if pg:
            pg.stop()
        hs.stop()

    header = (f"Mesuré le {datetime.now():%d/%m/%Y à %H:%M} sur {platform.node()} — {platform.platform()}, "
              f"{os.cpu_count()} cœurs, {platform.processor() or platform.machine()}.\nVersions : {versions()}.")
    text = "\n\n".join([header, res.table(), *res.notes])
    print(text)
    (ROOT / "bench" / "RESULTS.md").write_text(f"# Résultats de `make bench`\n\n{text}\n", encoding="utf-8")
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description="Banc d'essai d'ess-bot contre un bot écho.")
    parser.add_argument("-n", type=int, default=300, help="messages séquentiels par mesure (300)")
    parser.add_argument("--burst", type=int, default=1000, help="commandes de la rafale (1000)")
    parser.add_argument("--records", type=int, default=100_000,
                        help="suivis générés pour le rapport (100 000 ; 0 = pas de mesure du rapport)")
    parser.add_argument("--no-postgres", action="store_true", help="ne pas mesurer le rapport sur PostgreSQL")
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(cli())

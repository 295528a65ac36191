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
    """Process start → first command answered. Also tells whether a message sent just before the start
    was answered (a first start must not; a restart must). Returns (seconds, that_message_was_answered)."""
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


async def sequential(res: Results, c: TestUser, echo_room: str, echo_id: str, ess_room: str, ess_id: str,
                     codes: list[str], n: int) -> None:
    """1–2: n round trips each of the echo bot, !ping and !suivi, interleaved (echo, ping, suivi, echo…)
    so that the three see the same homeserver (its database grows during the run)."""
    echo_rt: list[float] = []
    ping_rt: list[float] = []
    suivi_rt: list[float] = []
    for i in range(n):
        echo_rt += await round_trips(c, echo_room, echo_id, [f"message {i}"])
        ping_rt += await round_trips(c, ess_room, ess_id, ["!ping"])
        suivi_rt += await round_trips(c, ess_room, ess_id, [workload.suivi_line(codes, 0, i)])
    for label, values in (("!ping", ping_rt), ("!suivi (écriture)", suivi_rt)):
        for q, target in ((50, 1.10), (95, None), (99, 1.25)):
            ratio = pct(values, q) / pct(echo_rt, q)
            res.add(f"{label} aller-retour p{q} ({n} messages)", ms(pct(values, q)), ms(pct(echo_rt, q)), ratio,
                    f"≤ {target:.2f}×" if target else "", ratio <= target if target else None)


async def bursts(res: Results, clients: list[TestUser], echo_rooms: list[str], ess_rooms: list[str],
                 observer: TestUser, echo_id: str, ess_id: str, codes: list[str], total: int, db_url: str,
                 ess_proc: "BotProcess") -> None:
    """3: the same burst to the echo bot, to ess-bot, then to the echo bot again (the homeserver's
    database grows with each burst: the floor is the mean of the two around ess-bot's); exactly-once
    checked on replies and records."""
    echo_t1, echo_counts, echo_sent = await burst(clients, echo_rooms, observer, echo_id,
                                                  lambda i, k: f"rafale {i}-{k}", total)
    ess_t, ess_counts, ess_sent = await burst(clients, ess_rooms, observer, ess_id,
                                              lambda i, k: workload.suivi_line(codes, i, 1000 + k), total)
    echo_t2, echo_counts2, echo_sent2 = await burst(clients, echo_rooms, observer, echo_id,
                                                    lambda i, k: f"rafale bis {i}-{k}", total)
    echo_t = (echo_t1 + echo_t2) / 2
    res.notes.append(f"Rafales du bot écho avant et après celle d'ess-bot : {echo_t1:.1f} s et {echo_t2:.1f} s "
                     f"(le plancher est leur moyenne) ; ess-bot : {ess_t:.1f} s.")
    echo_tp, ess_tp = total / echo_t, total / ess_t
    echo_lost = sum(1 for e in echo_sent if echo_counts.get(e, 0) == 0) + \
        sum(1 for e in echo_sent2 if echo_counts2.get(e, 0) == 0)
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


# What each start imports, timed alone (after Synapse is stopped, a fresh interpreter each time): the
# part of a cold start that is Python loading modules, for ess-bot, for the echo bot, and for the stack
# ess-bot is built on (matrix-nio + SQLAlchemy).
IMPORTS = {
    "echo": "import nio",
    "stack": "import nio, sqlalchemy.orm, sqlalchemy.ext.asyncio, aiosqlite",
    "ess": "import nio, ess_bot.transports.matrix, ess_bot.app, ess_bot.storage.all_models, commands; commands.modules()",
}


def import_cpu_seconds(runs: int = 7) -> dict[str, float]:
    """Median CPU time (user + system) of a fresh ``python -c`` for each of IMPORTS, run in turn (so
    that the three see the same machine: this VM's speed drifts over a minute)."""
    import resource

    cpu: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for _ in range(runs):
        for name, code in IMPORTS.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {name: statistics.median(values) for name, values in cpu.items()}


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

        ess_password = "bench-password"
        echo = await new_user("echo", password=ess_password)
        stack = await new_user("pile", password=ess_password)  # the stack bot's own account (one room per start)
        ess_id, _, _ = await hs.register_user_async(fresh_user("essbot"), password=ess_password)
        ess = TestUser(hs.base_url, *hs.login(ess_id, ess_password))
        users.append(ess)
        clients = [await new_user(f"conseil{i}") for i in range(10)]
        observer = await new_user("observateur")
        members = [c.user_id for c in clients]

        async def make_rooms(bot: TestUser, label: str, *also: TestUser) -> list[str]:
            rooms = []
            for n in range(8):
                room = await clients[0].create_room(name=f"{label} {n}", invite=[bot.user_id, observer.user_id,
                                                                                  *members[1:], *(u.user_id for u in also)])
                for u in [bot, observer, *clients[1:], *also]:
                    await u.join(room)
                rooms.append(room)
            return rooms

        # the stack bot is in the echo bot's rooms too (it never runs during their measurements): a first sync
        # costs more with each joined room, so the three bots start with as many rooms as each other
        echo_rooms = await make_rooms(echo, "écho", stack)
        ess_rooms = await make_rooms(ess, "ess")
        for u in clients + [observer]:
            await u.start_listening()

        # -- processes ---------------------------------------------------------------------------
        def echo_process() -> BotProcess:
            # a new device each time, as ess-bot's first start logs in anew: Synapse caches initial syncs
            # per device for a while, and a restarted naive bot would otherwise get a stale one
            _, token, device = hs.login(echo.user_id, ess_password)
            proc = BotProcess([sys.executable, "-m", "bench.echo_bot", hs.base_url, echo.user_id, token, device],
                              log=work / "echo.log")
            procs.append(proc)
            return proc

        def stack_process(run: int) -> BotProcess:
            """The echo bot plus SQLAlchemy (bench/stack_bot.py): what the chosen stack alone costs."""
            _, token, device = hs.login(stack.user_id, ess_password)
            proc = BotProcess([sys.executable, "-m", "bench.stack_bot", hs.base_url, stack.user_id, token, device,
                               str(work / f"stack-{run}.db")], log=work / "stack.log")
            procs.append(proc)
            return proc

        def ess_process(run: int) -> tuple[BotProcess, str, Path]:
            """ess-bot on a fresh database and store: each run is a first start."""
            run_dir = work / f"ess-{run}"
            run_dir.mkdir()
            url = f"sqlite+aiosqlite:///{run_dir}/ess.db"
            path = workload.write_config(run_dir, hs.base_url, ess_id, ess_password, url, members, ess_rooms)
            wrapper = os.environ.get("BENCH_ESS_WRAPPER", "").split() or ["-m", "ess_bot"]  # for profiling
            proc = BotProcess([sys.executable, *wrapper, "run", "-c", str(path)], log=run_dir / "ess.log")
            procs.append(proc)
            return proc, url, path

        # 4. cold start, first start of each bot (history skipped), alternately, COLD_RUNS times each; then
        # ess-bot restarted on its database and device (what a deployment or a crash does): a message sent
        # while it was stopped must be answered. The last processes stay up for the other measurements.
        step(f"cold start × {args.cold_runs} (echo bot, echo bot + SQLAlchemy, ess-bot first start, ess-bot restart)")
        c = clients[0]
        echo_colds, ess_colds, echo_hist, ess_hist = [], [], False, False
        stack_colds: list[float] = []
        restarts: list[float] = []
        caught_up = True
        for run in range(args.cold_runs):
            # a new room per run (the client and the bot): every start sees the same short history
            last = run == args.cold_runs - 1
            stack_proc = stack_process(run)
            room = await c.create_room(name=f"démarrage pile {run}", invite=[stack.user_id])
            await stack.join(room)
            elapsed, hist = await cold_start(stack_proc, c, room, stack.user_id, "bonjour")
            stack_colds.append(elapsed)
            echo_hist |= hist
            stack_proc.stop()
            echo_proc = echo_process()
            room = await c.create_room(name=f"démarrage écho {run}", invite=[echo.user_id])
            await echo.join(room)
            elapsed, hist = await cold_start(echo_proc, c, room, echo.user_id, "bonjour")
            echo_colds.append(elapsed)
            echo_hist |= hist
            ess_proc, db_url, config_path = ess_process(run)
            room = await c.create_room(name=f"démarrage ess {run}", invite=[ess_id])
            await ess.join(room)
            elapsed, hist = await cold_start(ess_proc, c, room, ess_id, "!ping")
            ess_colds.append(elapsed)
            ess_hist |= hist
            ess_proc.stop()
            ess_proc = BotProcess(ess_proc.argv, log=config_path.parent / "ess-restart.log")
            procs.append(ess_proc)
            elapsed, answered_while_down = await cold_start(ess_proc, c, room, ess_id, "!ping")
            restarts.append(elapsed)
            caught_up &= answered_while_down
            if not last:
                echo_proc.stop()
                ess_proc.stop()
        echo_cold, ess_cold = statistics.median(echo_colds), statistics.median(ess_colds)
        ess_restart, stack_cold = statistics.median(restarts), statistics.median(stack_colds)
        res.notes.append("Démarrages à froid (s) — bot écho : " + ", ".join(f"{t:.2f}" for t in echo_colds)
                         + " ; bot écho + SQLAlchemy : " + ", ".join(f"{t:.2f}" for t in stack_colds)
                         + " ; ess-bot, premier démarrage : " + ", ".join(f"{t:.2f}" for t in ess_colds)
                         + " ; ess-bot, redémarrage : " + ", ".join(f"{t:.2f}" for t in restarts)
                         + " (médianes dans le tableau).")
        codes = await workload.seed_projects(config_path, members)
        only = set(args.only.split(",")) if args.only else {"rt", "burst", "cold", "report", "parse"}

        # 1–2. sequential round trips
        n = args.n
        if "rt" in only:
            step(f"sequential round trips: {args.n} × echo, !ping, !suivi")
            await sequential(res, c, echo_rooms[0], echo.user_id, ess_rooms[0], ess_id, codes, n)

        if "burst" in only:
            step(f"burst of {args.burst} (echo bot, then ess-bot)")
            await bursts(res, clients, echo_rooms, ess_rooms, observer, echo.user_id, ess_id, codes, args.burst,
                         db_url, ess_proc)

        if "cold" in only:
            res.add(f"Démarrage à froid → première commande traitée (médiane de {args.cold_runs})", f"{ess_cold:.2f} s",
                    f"{echo_cold:.2f} s",
                    ess_cold / echo_cold, "≤ 1.50×", ess_cold / echo_cold <= 1.5)
            res.add(f"Démarrage à froid du bot écho + SQLAlchemy, sans code d'ess-bot (médiane de {args.cold_runs})",
                    f"{stack_cold:.2f} s", f"{echo_cold:.2f} s", stack_cold / echo_cold)
            res.add("Démarrage à froid d'ess-bot rapporté à celui du bot écho + SQLAlchemy", f"{ess_cold:.2f} s",
                    f"{stack_cold:.2f} s", ess_cold / stack_cold)
            res.add("Message envoyé avant le premier démarrage : resté sans réponse",
                    "oui" if not ess_hist else "NON", "oui" if not echo_hist else "NON", None, "oui", not ess_hist)
            res.add(f"Redémarrage (base et appareil existants) → première commande traitée (médiane de "
                    f"{args.cold_runs})", f"{ess_restart:.2f} s", f"{echo_cold:.2f} s", ess_restart / echo_cold)
            res.add("Message envoyé pendant l'arrêt : traité au redémarrage", "oui" if caught_up else "NON", "",
                    None, "oui", caught_up)

        if "parse" in only:
            step("date parsing")
            # 6. date parsing
            median = workload.date_parse_median()
            res.add("Analyse d'une date en français (médiane)", f"{median * 1000:.2f} ms", "", None, "≤ 5 ms",
                    median <= 0.005)
    except BaseException:
        if pg:
            pg.stop()
        raise
    finally:
        for p in procs:
            p.stop()
        for u in users:
            await u.close()
        hs.stop()

    if "cold" in only:  # what the cold starts above spent importing modules, timed alone
        step("imports alone (ess-bot, echo bot, matrix-nio + SQLAlchemy)")
        imports = import_cpu_seconds()
        res.add("Démarrage : temps processeur des seuls imports, ess-bot / bot écho (médiane de 7)",
                f"{imports['ess']:.2f} s", f"{imports['echo']:.2f} s", imports["ess"] / imports["echo"])
        res.notes.append(
            f"Imports seuls (temps processeur, médianes de 7, en alternance) : matrix-nio {imports['echo']:.2f} s ; "
            f"matrix-nio et SQLAlchemy (ORM, asyncio, aiosqlite) {imports['stack']:.2f} s ; tous les modules "
            f"d'ess-bot {imports['ess']:.2f} s. L'écart de démarrage à froid ({ess_cold - echo_cold:.2f} s) comprend "
            f"donc environ {imports['ess'] - imports['echo']:.2f} s d'imports, dont "
            f"{imports['stack'] - imports['echo']:.2f} s pour SQLAlchemy.")

    # 5. the report needs no homeserver: measured once the bots and Synapse are stopped (a quiet machine),
    # over 100,000 accompaniments, on SQLite and PostgreSQL
    try:
        for backend in ("sqlite", "postgresql") if args.records and "report" in only else ():
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
    finally:
        if pg:
            pg.stop()
    if args.only:  # a partial run is for development: printed, not written to RESULTS.md
        print("\n\n".join([res.table(), *res.notes]))
        return 0

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
    parser.add_argument("--cold-runs", type=int, default=5, help="démarrages à froid de chaque bot (5)")
    parser.add_argument("--only", default="", help="mesures à faire, séparées par des virgules, parmi rt, burst, "
                        "cold, report, parse (mise au point : rien n'est écrit dans RESULTS.md)")
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(cli())

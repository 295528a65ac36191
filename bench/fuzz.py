"""``make fuzz``: 100,000 fuzzed lines through the real dispatcher (tests/fuzz_commands.py), outside
``make test``.

Every family and sub-command of the registry, mutated (shuffled, truncated, repeated arguments, huge
numbers, impossible dates, unicode, 10 kB lines, HTML, Markdown), typed by every role in every room kind,
with reactions, redactions, poll answers, files and the clock moving on in between; SQLite by default,
PostgreSQL with ``--postgres`` (a throw-away server started here). Every message also goes through the
tests' strict allow-list sanitiser check.

Prints the speed (lines per second), the failures (internal errors first) with the seed and line that
reproduce each, and the slowest lines; writes the figures to bench/FUZZ.md when every line was run with
the default settings. Exit code 1 when a failure that is not in the known list was found.

Replay a failure: ``python -m bench.fuzz --seed S --lines N`` (N: the failing line's number) — the same
seed gives the same lines and the same state.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import fuzz_commands as fz  # noqa: E402
from tests.sanitiser import SanitiserCheck, install  # noqa: E402

DEFAULT_LINES = 100_000
DEFAULT_SEED = 2026


def step(text: str) -> None:
    print(f"[fuzz {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def fuzz(lines: int, seed: int, db_url: str | None, tmp: Path) -> fz.Result:
    check = SanitiserCheck()
    patch = pytest.MonkeyPatch()
    install(patch, check)
    try:
        fuzzer = await fz.Fuzzer(tmp, seed, db_url=db_url, sanitiser=check).start()
        try:
            return await fuzzer.run(lines, keep_slowest=10, progress=lambda r: step(r.summary()))
        finally:
            await fuzzer.close()
    finally:
        patch.undo()


def report(result: fz.Result, backend: str) -> str:
    rate = result.lines / result.seconds if result.seconds else 0.0
    problems = collections.Counter(f.problem.split(":")[0] for f in result.failures)
    known = collections.Counter(f.problem.split(":")[0] for f in result.known)
    out = [f"Mesuré le {datetime.now():%d/%m/%Y à %H:%M} sur {platform.node()} — {platform.platform()}, "
           f"Python {platform.python_version()}, base {backend}, graine {result.seed}.", "",
           "| Mesure | Valeur |", "| --- | --- |",
           f"| Lignes | {result.lines} (dont {result.commands} commandes ; {result.replies} messages du bot) |",
           f"| Durée | {result.seconds:.0f} s |",
           f"| Débit | {rate:.0f} lignes/s |",
           f"| Erreurs internes | {result.internal_errors} |",
           f"| Autres échecs | {len(result.failures) - sum(1 for f in result.failures if 'internal error' in f.problem)} |",
           f"| Échecs connus (fichiers en cours de modification) | {len(result.known)} |", ""]
    for title, counter in (("Échecs", problems), ("Échecs connus", known)):
        if counter:
            out.append(f"{title} par nature :")
            out += [f"- {n} × {p}" for p, n in counter.most_common()]
            out.append("")
    out.append("Lignes les plus lentes :")
    out.append("")
    out += [f"- {elapsed * 1000:.0f} ms — `{line.describe(result.seed)[:240].replace('`', '´')}`"
            for elapsed, line in result.slowest]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ess-bot : lignes de commande fuzzées, sans erreur interne")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help=f"lignes à envoyer ({DEFAULT_LINES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"graine ({DEFAULT_SEED})")
    parser.add_argument("--postgres", action="store_true", help="sur un PostgreSQL démarré ici (au lieu de SQLite)")
    parser.add_argument("--no-write", action="store_true", help="ne pas écrire bench/FUZZ.md")
    args = parser.parse_args(argv)

    pg = None
    with tempfile.TemporaryDirectory(prefix="ess-fuzz-") as tmp:
        db_url = None
        if args.postgres:
            from tests.harness import PostgresServer

            step("starting PostgreSQL")
            pg = PostgresServer()
            pg.start()
            db_url = pg.create_database()
        try:
            step(f"{args.lines} lines, seed {args.seed}, on {'PostgreSQL' if pg else 'SQLite'}")
            result = asyncio.run(fuzz(args.lines, args.seed, db_url, Path(tmp)))
        finally:
            if pg is not None:
                pg.stop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    text = report(result, backend)
    print(text)
    for failure in result.failures[:50]:
        print("\n" + failure.describe(result.seed))
    if len(result.failures) > 50:
        print(f"\n… and {len(result.failures) - 50} more")
    for failure in result.known[:10]:
        print("\nknown: " + failure.describe(result.seed))
    if not args.no_write and args.lines == DEFAULT_LINES and args.seed == DEFAULT_SEED:
        path = ROOT / "bench" / ("FUZZ-postgres.md" if args.postgres else "FUZZ.md")
        path.write_text("# Fuzz des lignes de commande (`make fuzz`)\n\n" + text + "\n", encoding="utf-8")
        step(f"written to {path.relative_to(ROOT)}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())

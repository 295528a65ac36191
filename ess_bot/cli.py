"""Command line: ``ess-bot run | console | db upgrade | check-config``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from ess_bot import __version__
from ess_bot.config import Config, ConfigError, load_config, require_matrix, summary


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FICHIER",
                   help="fichier de configuration TOML (défaut : config.toml s'il existe, sinon l'exemple intégré)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ess-bot", description="Assistant Matrix du réseau ESS de Bourgogne-Franche-Comté.")
    parser.add_argument("--version", action="version", version=f"ess-bot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="journal détaillé (DEBUG)")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMANDE")

    run = sub.add_parser("run", help="lancer le bot sur le serveur Matrix configuré")
    _add_config(run)

    console = sub.add_parser("console", help="le même bot dans le terminal, sans serveur Matrix")
    _add_config(console)
    console.add_argument("--as", dest="as_user", metavar="USER_ID", help="expéditeur (défaut : le premier coordinateur)")
    console.add_argument("--room", metavar="SALON", help="salon : clé de la configuration (coordination, bge-fc…), "
                         "identifiant, ou direct (défaut : coordination)")
    console.add_argument("--now", metavar="ISO8601", help="figer l'horloge, par exemple 2026-11-24T10:00")
    console.add_argument("--json", action="store_true", help="une ligne JSON par sortie du bot")
    console.add_argument("--files-dir", metavar="DOSSIER", help="où écrire les fichiers envoyés (défaut : dossier temporaire)")

    db = sub.add_parser("db", help="base de données")
    db_sub = db.add_subparsers(dest="db_cmd", metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="appliquer les migrations")
    _add_config(up)

    check = sub.add_parser("check-config", help="valider un fichier de configuration et en afficher le résumé")
    check.add_argument("-c", "--config", metavar="FICHIER", required=True, help="fichier à vérifier")
    return parser


def _load(path: str | None) -> Config:
    if path is None and Path("config.toml").exists():
        path = "config.toml"
    return load_config(path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else
                        (logging.WARNING if args.cmd == "console" else logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:  # nio and the scheduler are chatty at INFO (one line per event / per tick)
        for noisy in ("nio", "apscheduler", "alembic", "peewee"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.cmd == "check-config":
            config = load_config(args.config)
            print(summary(config))
            return 0
        if args.cmd == "db":
            if args.db_cmd != "upgrade":
                parser.parse_args(["db", "--help"])
            return asyncio.run(_db_upgrade(_load(args.config)))
        if args.cmd == "console":
            return asyncio.run(_console(args, _load(args.config)))
        if args.cmd == "run":
            config = _load(args.config)
            require_matrix(config)
            return asyncio.run(_run(config))
    except ConfigError as exc:
        print(f"Erreur de configuration — {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:  # last resort: a French sentence, the traceback only in the log
        logging.getLogger("ess_bot").exception("fatal error")
        print("Erreur inattendue : le bot s'est arrêté (détails ci-dessus dans le journal). "
              "Vérifiez la configuration et la base de données, puis relancez.", file=sys.stderr)
        return 1
    return 0


async def _db_upgrade(config: Config) -> int:
    from ess_bot.clock import Clock
    from ess_bot.app import App
    from ess_bot.storage.db import Database

    app = App(config, Clock(config.bot.tz), Database(config.database.url), transport="console")
    await app.prepare()
    await app.close()
    print("Base de données à jour.")
    return 0


async def _console(args, config: Config) -> int:
    from ess_bot.app import App
    from ess_bot.clock import Clock
    from ess_bot.storage.db import Database
    from ess_bot.transports.console import ConsoleTransport, resolve_console_room

    tz = config.bot.tz
    if args.now:
        try:
            clock = Clock(tz, frozen_at=datetime.fromisoformat(args.now))
        except ValueError:
            print(f"Date illisible pour --now : {args.now!r}. Exemple : --now 2026-11-24T10:00", file=sys.stderr)
            return 2
    else:
        clock = Clock(tz)
    coordinators = config.members_with_role("coordinator") or list(config.members)
    sender = args.as_user or (coordinators[0].user_id if coordinators else "@invite:console")
    app = App(config, clock, Database(config.database.url), transport="console")
    room = resolve_console_room(app, args.room or "coordination", sender) if (args.room or config.rooms.coordination) \
        else resolve_console_room(app, "direct", sender)
    if room is None:
        print(f"Salon inconnu : {args.room!r}. Salons connus : {', '.join(config.room_keys())}, direct.", file=sys.stderr)
        return 2
    files_dir = Path(args.files_dir) if args.files_dir else Path(tempfile.mkdtemp(prefix="ess-bot-fichiers-"))
    console = ConsoleTransport(app, sender, room, json_output=args.json, files_dir=files_dir)
    try:
        await console.run()
    finally:
        await app.close()
    return 0


async def _run(config: Config) -> int:
    from ess_bot.transports.matrix import run_matrix_bot

    await run_matrix_bot(config)
    return 0

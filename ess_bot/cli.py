"""Command line: ``ess-bot run | console | db upgrade | check-config | rapport | import``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from ess_bot import __version__
from ess_bot.config import Config, ConfigError, load_config, require_matrix, summary
from ess_bot.errors import FatalError


_ERRORS = [  # argparse's English error messages → French
    (r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)",
     lambda m: f"{m[1]} : choix inconnu « {m[2]} » (possibles : {m[3].replace(chr(39), '')})"),
    (r"argument (\S+): expected one argument", lambda m: f"l'option {m[1]} attend une valeur"),
    (r"argument (\S+): invalid (\w+) value: '([^']*)'", lambda m: f"{m[1]} : valeur invalide « {m[3]} »"),
    (r"the following arguments are required: (.*)", lambda m: f"arguments obligatoires manquants : {m[1]}"),
    (r"unrecognized arguments: (.*)", lambda m: f"arguments non reconnus : {m[1]}"),
    (r"argument (\S+): not allowed with argument (\S+)", lambda m: f"{m[1]} ne peut pas aller avec {m[2]}"),
]


def _french_error(message: str) -> str:
    for pattern, make in _ERRORS:
        m = re.fullmatch(pattern, message)
        if m:
            return make(m)
    return message


class _FrenchFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, "utilisation : " if prefix is None else prefix)


class FrenchParser(argparse.ArgumentParser):
    """argparse with French headings, help and errors (everything a person reads is in French)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("formatter_class", _FrenchFormatter)
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        self.add_argument("-h", "--help", action="help", help="afficher cette aide et quitter")

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog} : erreur : {_french_error(message)}\nAide : {self.prog} --help\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FICHIER",
                   help="fichier de configuration TOML (défaut : config.toml s'il existe, sinon l'exemple intégré)")


def build_parser() -> argparse.ArgumentParser:
    parser = FrenchParser(prog="ess-bot", description="Assistant Matrix du réseau ESS de Bourgogne-Franche-Comté.")
    parser.add_argument("--version", action="version", version=f"ess-bot {__version__}", help="afficher la version")
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

    report = sub.add_parser("rapport", help="bilan d'activité d'une période : résumé, tableau CSV, classeur XLSX, "
                            "graphique PNG")
    _add_config(report)
    report.add_argument("--periode", "--période", dest="periode", metavar="PÉRIODE", default="",
                        help='"2026", "T3 2026", "S1 2026", "novembre 2026", "du 01/01/2026 au 30/06/2026", '
                             '"trimestre dernier"… (défaut : le trimestre en cours)')
    report.add_argument("--partenaire", metavar="SLUG", help="les chiffres d'une seule structure (défaut : tout le réseau)")
    report.add_argument("--sortie", metavar="DOSSIER", default=".", help="dossier des fichiers (défaut : le dossier courant)")
    report.add_argument("--now", metavar="ISO8601", help="figer l'horloge, par exemple 2026-11-24T10:00")

    imp = sub.add_parser("import", help="importer un tableau de suivis existant (CSV ou XLSX) ; essai sans --apply")
    _add_config(imp)
    imp.add_argument("file", metavar="FICHIER", help="tableau .csv ou .xlsx (une ligne par suivi, intitulés en 1re ligne)")
    imp.add_argument("--partner", "--partenaire", dest="partner", metavar="SLUG", required=True,
                     help="structure qui a réalisé ces suivis (slug de la configuration)")
    imp.add_argument("--apply", action="store_true",
                     help="enregistrer pour de bon (sinon : essai, rien n'est écrit) ; tout ou rien")
    imp.add_argument("--mapping", metavar="CORRESPONDANCES",
                     help='intitulés du fichier vers les champs, par exemple "Intitulé=projet,Temps passé (min)='
                          'duree_minutes" (champs : code, projet, date, phase, modalite, duree, duree_minutes, '
                          'duree_heures, themes, note, departement, forme, nature, collectif, esus, genre, age, statut, '
                          'minima, qpv, frr, ou ignorer)')
    imp.add_argument("--conseiller", metavar="@USER:SERVEUR",
                     help="conseiller·ère à qui attribuer les suivis (membre de la structure ; défaut : « import »)")
    imp.add_argument("--now", metavar="ISO8601", help="figer l'horloge, par exemple 2026-11-24T10:00")
    return parser


def _database_url(args) -> str:
    """The database URL the command used (for a message), without failing."""
    try:
        return _load(getattr(args, "config", None)).database.url
    except Exception:
        return ""


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
                        (logging.WARNING if args.cmd in ("console", "rapport", "import") else logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:  # nio and the scheduler are chatty at INFO (one line per event / per tick)
        for noisy in ("nio", "apscheduler", "alembic", "peewee"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    os.umask(0o077)  # whatever the caller's umask: what the bot writes is for its own user only
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
        if args.cmd == "rapport":
            return asyncio.run(_rapport(args, _load(args.config)))
        if args.cmd == "import":
            return asyncio.run(_import(args, _load(args.config)))
    except ConfigError as exc:
        print(f"Erreur de configuration — {exc}", file=sys.stderr)
        return 2
    except FatalError as exc:
        logging.getLogger("ess_bot").debug("stopped", exc_info=True)  # the traceback with --verbose only
        print(exc.message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from ess_bot.storage.db import is_unavailable, unreachable_message

        if is_unavailable(exc):
            logging.getLogger("ess_bot").debug("database unavailable", exc_info=True)
            print(unreachable_message(_database_url(args), exc), file=sys.stderr)
            return 2
        # last resort: a French sentence, the traceback only in the log
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
    from ess_bot.clock import Clock
    from ess_bot.runner import Runner
    from ess_bot.transports.console import ConsoleTransport, resolve_console_room, resolve_sender

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
    sender = (resolve_sender(config, args.as_user, lambda text: print(text, file=sys.stderr)) if args.as_user
              else coordinators[0].user_id if coordinators else "@invite:console")
    room = resolve_console_room(config, args.room or "coordination", sender) \
        if (args.room or config.rooms.coordination) else resolve_console_room(config, "direct", sender)
    if room is None:
        print(f"Salon inconnu : {args.room!r}. Salons connus : {', '.join(config.room_keys())}, direct.", file=sys.stderr)
        return 2
    files_dir = Path(args.files_dir) if args.files_dir else Path(tempfile.mkdtemp(prefix="ess-bot-fichiers-"))
    runner = Runner(config, ConsoleTransport(config, sender, room, json_output=args.json, files_dir=files_dir),
                    clock)
    try:
        await runner.run()
    finally:
        await runner.stop()
    return 0


async def _run(config: Config) -> int:
    from ess_bot.transports.matrix import run_matrix_bot

    await run_matrix_bot(config)
    return 0


def _clock(config: Config, now: str | None):
    """The live clock, or one frozen at ``--now`` (None and a French message when unreadable)."""
    from ess_bot.clock import Clock

    if not now:
        return Clock(config.bot.tz)
    try:
        return Clock(config.bot.tz, frozen_at=datetime.fromisoformat(now))
    except ValueError:
        print(f"Date illisible pour --now : {now!r}. Exemple : --now 2026-11-24T10:00", file=sys.stderr)
        return None


def _existing_database(config: Config) -> bool:
    path = config.database_path()
    if path is not None and not path.exists():
        print(f"Base de données introuvable : {path}. Vérifiez database.url (ou ESS_BOT_DATABASE_URL), ou lancez "
              "d'abord le bot.", file=sys.stderr)
        return False
    return True


async def _rapport(args, config: Config) -> int:
    from ess_bot.files import write_private
    from ess_bot.framework.messages import render_markdown
    from ess_bot.report_files import render_files, summary_markdown
    from ess_bot.services.periods import PeriodError, parse_period
    from ess_bot.services.reports import ReportService
    from ess_bot.storage.db import Database

    clock = _clock(config, args.now)
    if clock is None:
        return 2
    try:
        period = parse_period(args.periode, clock.today())
    except PeriodError as exc:
        print(render_markdown(exc.message)[0], file=sys.stderr)
        return 2
    if args.partenaire and config.partner(args.partenaire) is None:
        print(f"Partenaire inconnu : {args.partenaire!r}. Partenaires : "
              f"{', '.join(p.slug for p in config.partners)}.", file=sys.stderr)
        return 2
    if not _existing_database(config):
        return 2
    db = Database(config.database.url)
    try:
        await db.upgrade()
        async with db.sessions() as session:
            report = await ReportService(config, clock).build(session, period, args.partenaire or None)
    finally:
        await db.dispose()
    out = Path(args.sortie)
    out.mkdir(parents=True, exist_ok=True)
    print(render_markdown(summary_markdown(report))[0])
    print("Fichiers écrits :")
    for f in render_files(report):
        write_private(out / f.name, f.data)  # figures of the network's projects: for the caller only
        print(f"  {out / f.name}")
    return 0


async def _import(args, config: Config) -> int:
    from ess_bot.importer import ImportFileError, Importer, format_result
    from ess_bot.storage.db import Database

    clock = _clock(config, args.now)
    if clock is None:
        return 2
    path = config.database_path()
    if path is not None:  # a first installation may start with an import: create the database
        path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(config.database.url)
    try:
        await db.upgrade()
        result = await Importer(config, clock).run(db, Path(args.file), args.partner, apply=args.apply,
                                                   mapping=args.mapping, advisor=args.conseiller)
    except ImportFileError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(format_result(result, apply=args.apply))
    return 0 if result.ok else 1

"""A recorded terminal session of every README example (issue 13: "byte-identical replies before and after").

Every command a person would type to the bot, found in README.md (the examples of the tables of
« Commandes du bot », the commands named in the text, the terminal's ``/as``, ``/room``, ``/now``, ``/aide``
and ``/quit``), is run in README order through the real terminal transport
(``ess_bot.transports.console.ConsoleTransport``, JSON output) with the example configuration, a fresh
SQLite database, a frozen clock, a fixed console session id and a seeded project-code generator. What the
bot says is written one JSON line per output, each input preceded by its own line.

    python -m tests.golden.readme_session            # compare with the recording; a diff and exit 1 if it differs
    python -m tests.golden.readme_session --record   # rewrite the recording (after a change a user *should* see)
    python -m tests.golden.readme_session --list     # the README examples found, run or not (and why not)

Each distinct example runs once, where the README shows it in a table's Exemple column (else at its first
mention), as the member and in the room the README implies (``CONTEXT_BY_PREFIX``). The README's
placeholder codes and numbers (project ``P-7K3Q``, record n°42, tool, event and meeting n°3) are replaced
by those of the state the session creates, as a person would: ``SETUP_BEFORE`` creates what an example
needs, ``CAPTURES`` reads codes and numbers from the replies, ``CODE_PLACEHOLDERS`` and
``NUMBER_PLACEHOLDERS`` put them in; ``FOLLOW_UP`` is a person's next try after "which poll?";
``AFTER_EXAMPLES`` moves the clock so that the reminders fire. Every such input is recorded with
``"setup": true``. Files sent by the bot are recorded by a stable digest (``file_digest``). The one hook
on the product's internals is ``seed_project_codes``.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import hashlib
import io
import json
import logging
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ess_bot.transports.console import ConsoleTransport

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONFIG = ROOT / "config.example.toml"
RECORDING = Path(__file__).with_suffix(".jsonl")

START = datetime(2026, 11, 24, 10, 0)  # the README's own `--now 2026-11-24T10:00`
SESSION_ID = "golden"
PROJECT_CODE_SEED = 12

KARIM_BGE = ("@karim:example.org", "bge-fc")          # an advisor, in his structure's room
CLAIRE_COORD = ("@claire:example.org", "coordination")  # a coordinator, in the coordination room
MARC_URSCOP = ("@marc:example.org", "urscop")          # an advisor of the structure a project is referred to

# Where each example is typed (the README says who may use a command and where); anything else: KARIM_BGE.
CONTEXT_BY_PREFIX: list[tuple[str, tuple[str, str]]] = [
    ("!reunion proposer", CLAIRE_COORD),
    ("!reunion clore", CLAIRE_COORD),
    ("!reunion deplacer", CLAIRE_COORD),
    ("!reunion prolonger", CLAIRE_COORD),
    ("!reunion annuler", CLAIRE_COORD),
    ("!projet accepter", MARC_URSCOP),
    ("!rapport 2026", CLAIRE_COORD),  # `!rapport 2026 urscop` and the benchmark's `!rapport 2026`: all structures
]


@dataclass(frozen=True)
class Step:
    """An input that is not a README example: state an example needs, created as a person would, or a
    person's next try after a reply that asks for more. ``{name}`` is replaced by a captured value."""

    text: str
    who: tuple[str, str]
    capture: tuple[str, str] | None = None  # (name, pattern): group 1 of the first match in the replies


# Created just before the example named by the key (its README text).
SETUP_BEFORE: dict[str, list[Step]] = {
    # the report of a past quarter has something to count
    "!rapport T3 2026": [Step('!suivi {project} émergence 2h le 15/09 "premier rendez-vous"', KARIM_BGE)],
    # a tool that `!outil statuts scic` finds, `!outil liste #scop` lists and `!outil modifier 3 …` edits
    "!outil statuts scic": [Step('!outil ajouter "Modèle de statuts de SCIC" https://exemple.org/statuts-scic.odt '
                                 "#scop #brouillon type=modele", KARIM_BGE, ("tool", r"Outil n°(\d+) «"))],
    # an event to cancel, so that the inauguration of the README keeps its reminders
    '!evenement annuler 3 "salle indisponible"': [
        Step('!evenement ajouter "Atelier finance solidaire" 10/12/2026 9h30 fin=12h lieu="Dijon"', KARIM_BGE,
             ("spare_event", r"Événement n°(\d+) «"))],
    # a poll to cancel, so that the README's two polls go on to their dates and reminders
    '!reunion annuler 3 "grève"': [Step('!reunion proposer "Rencontre de printemps" 6/05 14h, 12/05 14h',
                                        CLAIRE_COORD, ("spare_poll", r"Sondage n°(\d+) ouvert"))],
}

# Typed just after the example named by the key: with two polls open, the README's `!reunion dispo`,
# `etat` and `clore` (no poll number) are asked which one; a person then names it.
FOLLOW_UP: dict[str, list[Step]] = {
    "!reunion dispo 1=oui 2=sibesoin 3=non": [
        Step("!reunion dispo {auto_poll} 1=oui 2=sibesoin 3=non", KARIM_BGE),
        Step("!reunion dispo {dated_poll} 1=oui 2=non", KARIM_BGE),
        Step("!reunion dispo {dated_poll} 1=oui 2=sibesoin", MARC_URSCOP),
    ],
    "!reunion etat": [Step("!reunion etat {dated_poll}", KARIM_BGE)],
    "!reunion clore": [Step("!reunion clore {dated_poll}", CLAIRE_COORD)],
}

# After the README examples, before `/quit`: the clock moves so that the event reminders, the poll
# reminder, the automatic close of a poll and the meeting reminders fire (and are recorded).
AFTER_EXAMPLES: list[Step] = [
    Step("/now 2027-01-08T09:00", KARIM_BGE),   # J-7 of the inauguration (15/01/2027)
    Step("/now 2027-01-14T09:00", KARIM_BGE),   # its J-1
    Step("/now 2027-02-25T09:00", KARIM_BGE),   # the poll reminder, 2 days before the extended deadline (27/02)
    Step("/now 2027-02-27T18:00", KARIM_BGE),   # the poll closes by itself at its deadline
    Step("/now 2027-03-01T09:00", KARIM_BGE),   # J-1 of the meeting it fixed
    Step("/now 2027-03-12T09:00", KARIM_BGE),   # J-7 of the meeting moved to 19/03
    Step("/now 2027-03-18T09:00", KARIM_BGE),   # its J-1
    Step("!reunion liste", KARIM_BGE),
    Step("!agenda", KARIM_BGE),
]

# Values read from the replies to a README example (key: its README text); name → (pattern, group 1).
CAPTURES: dict[str, tuple[str, str]] = {
    '!projet nouveau "Café culturel Pixel" dep=25 forme=association collectif':
        ("project", r"Projet (P-[0-9A-Z]{4}) créé"),
    "!suivi P-7K3Q émergence 1h30 hier": ("record", r"Suivi n°(\d+) enregistré"),
    '!reunion proposer "Rencontre du réseau" entre 1/03 et 15/04 limite=20/02':
        ("auto_poll", r"Sondage n°(\d+) ouvert"),
    '!reunion proposer "Rencontre du réseau" 12/03 14h, 19/03 14h': ("dated_poll", r"Sondage n°(\d+) ouvert"),
    '!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon"':
        ("event", r"Événement n°(\d+) «"),
}

# The README's placeholders → captured names. A code is replaced wherever it appears; a number only as
# the token at the given position (0 = the command word) of the named example.
CODE_PLACEHOLDERS = {"P-7K3Q": "project"}
NUMBER_PLACEHOLDERS: dict[str, tuple[int, str]] = {
    "!suivi modifier 42 durée=2h": (2, "record"),
    "!suivi annuler 42": (2, "record"),
    "!reunion deplacer 3 19/03 14h": (2, "dated_poll"),    # the meeting `!reunion clore` fixed
    "!reunion prolonger 3 27/02": (2, "auto_poll"),       # the poll still open
    '!reunion annuler 3 "grève"': (2, "spare_poll"),
    "!outil modifier 3 #statuts -#brouillon type=guide": (2, "tool"),
    '!evenement annuler 3 "salle indisponible"': (2, "spare_event"),
    "!evenement voir 3": (2, "event"),
}

SLASH_COMMANDS = ("/as", "/room", "/now", "/aide", "/quit")
PLACEHOLDER_MARKS = ("<", "[", "…", "|")
# The README sentence that names the other `/room` arguments (its `direct` and `urscop` are run as `/room …`).
ROOM_SENTENCE = "`/room coordination` (ou `direct`, ou la clé d'un partenaire comme `urscop`)"


class GoldenError(Exception):
    """The session cannot be recorded as it is (an internal error, an unreadable reply…)."""


# -- the README's examples ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    text: str          # as written in the README (a table cell's `\|` unescaped)
    line: int          # README line
    where: str         # "exemple" (a table's Exemple column), "commande" (its Commande column), "texte", "code"
    order: int         # position in the README (line, then place in the line)
    skipped: str = ""  # why it is not run (empty: run)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return re.split(r"(?<!\\)\|", row)


def _why_not_run(text: str) -> str:
    if text.startswith("/"):
        word, _, rest = text.partition(" ")
        if word not in SLASH_COMMANDS:
            return "pas une commande (chemin ou adresse HTTP)"
        if word in ("/as", "/room", "/now") and not rest:
            return "nom d'une commande du terminal, sans argument"
        return ""
    if len(text) == 1 or not text[1].isalpha():
        return "pas une commande (préfixe seul, ou identifiant de compte)"
    if any(mark in text for mark in PLACEHOLDER_MARKS):
        return "syntaxe (paramètres à remplacer)"
    return ""


def readme_examples(text: str) -> list[Example]:
    """Every `!…` or `/…` code span of the README, in order, each with why it is not run (if so)."""
    found: list[Example] = []
    fence = False
    header: list[str] | None = None
    carried: tuple[int, str] | None = None  # a prose line whose code span goes on to the next line
    order = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:  # shell lines: only what they type to the bot (`printf '!ping\n!aide\n' | ess-bot console`)
            for m in re.finditer(r"(?:^|[\s'\"]|\\n)(![a-zA-Z][^\s'\"\\]*)", line):
                order += 1
                found.append(Example(m.group(1), number, "code", order, _why_not_run(m.group(1))))
            continue
        if line.startswith("|"):
            cells = _cells(line)
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells):
                continue
        else:
            header = None
            if carried is not None:
                number, line = carried[0], carried[1] + " " + line
                carried = None
            if line.count("`") % 2:
                carried = (number, line)
                continue
            cells = [line]
        for index, cell in enumerate(cells):
            column = header[index] if header is not None and index < len(header) else ""
            where = {"Exemple": "exemple", "Commande": "commande"}.get(column, "texte")
            for m in re.finditer(r"`([^`]+)`", cell):
                span = m.group(1).replace("\\|", "|") if header is not None else m.group(1)
                if not span.startswith(("!", "/")):
                    continue
                order += 1
                found.append(Example(span, number, where, order, _why_not_run(span)))
        if ROOM_SENTENCE in line:
            for room in ("direct", "urscop"):
                order += 1
                found.append(Example(f"/room {room}", number, "texte", order))
    if ROOM_SENTENCE not in text:
        raise GoldenError(f"README.md no longer has the sentence {ROOM_SENTENCE!r}: adapt ROOM_SENTENCE")
    return found


def examples_to_run(examples: list[Example]) -> list[Example]:
    """The distinct runnable examples, each once: at its first place in a table's Exemple column if it has
    one (where the README shows it in use), else at its first mention; ``/quit`` last."""
    chosen: dict[str, Example] = {}
    for ex in examples:
        if ex.skipped:
            continue
        kept = chosen.get(ex.text)
        if kept is None or (kept.where != "exemple" and ex.where == "exemple"):
            chosen[ex.text] = ex
    return sorted(chosen.values(), key=lambda ex: (ex.text == "/quit", ex.order))


# -- files, stably -----------------------------------------------------------------------------------


def _cell_value(value):
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return value


def file_digest(name: str, data: bytes):
    """What a file says, without what changes from one run to the next (XLSX and PNG embed times)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".ics", ".txt", ".md"):
        return {"text": data.decode("utf-8")}
    if suffix == ".xlsx":  # the bytes hold the wall-clock time (zip entries, docProps): what the cells say
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data))
        return {"sheets": [{"title": sheet.title,
                            "rows": [[_cell_value(c.value) for c in row] for row in sheet.iter_rows()],
                            "number_formats": {c.coordinate: c.number_format for row in sheet.iter_rows()
                                               for c in row if c.number_format != "General"},
                            "widths": {key: dim.width for key, dim in sorted(sheet.column_dimensions.items())}}
                           for sheet in book.worksheets]}
    if suffix == ".png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            raise GoldenError(f"{name}: not a PNG image")
        return {"png": [int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")]}
    return {"sha256": hashlib.sha256(data).hexdigest()}


# -- the session -------------------------------------------------------------------------------------


INTERNAL_ERROR = re.compile(r"\bE-[0-9A-F]{6}\b")


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def seed_project_codes(app, seed: int = PROJECT_CODE_SEED) -> None:
    """The one hook on the product's internals: project codes come from a seeded generator instead of
    ``secrets`` (adapt this function if the refactor moves the attribute)."""
    app.services.accompaniments.rng = random.Random(seed)


@dataclass
class Recorder:
    """Types into the terminal transport and writes down each input and what follows it."""

    console: "ConsoleTransport"
    runner: "Runner"
    out: io.StringIO
    err: io.StringIO
    lines: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    room_labels: dict[str, str] = field(default_factory=dict)

    def where(self) -> tuple[str, str]:
        room = self.console.room
        label = "direct" if room.startswith("!direct-") else self.room_labels.get(room, room)
        return self.console.sender, label

    async def go_to(self, who: tuple[str, str]) -> None:
        sender, room = who
        if self.console.sender != sender:
            await self.type(f"/as {sender}", setup=True)
        if self.where()[1] != room:
            await self.type(f"/room {room}", setup=True)

    async def type(self, text: str, *, setup: bool, example: Example | None = None) -> list[dict]:
        sender, room = self.where()
        record = {"input": text, "as": sender, "room": room}
        if example is not None:
            record["readme_line"] = example.line
            if example.text != text:
                record["readme"] = example.text
        record["setup"] = setup
        self.lines.append(_dump(record))
        out_at, err_at = self.out.tell(), self.err.tell()
        await self.console.type(text)
        await self._settle()
        outputs = [json.loads(line) for line in self.out.getvalue()[out_at:].splitlines() if line]
        for output in outputs:
            self._check(text, output)
            if output.get("filename"):
                path = Path(output["filename"])
                output["filename"] = path.name
                output["file"] = file_digest(path.name, path.read_bytes())
            self.lines.append(_dump(output))
        for note in self.err.getvalue()[err_at:].splitlines():
            self.lines.append(_dump({"note": note}))
        return outputs

    async def _settle(self) -> None:
        """Let what the input started go out (``type`` returns once the bot handled the line and its
        replies were sent; a scheduler run a clock move started may still be queuing messages)."""
        for _ in range(3):
            if await self.runner.sender.settled(10.0):
                break
        await self.runner.sender.drain()

    @staticmethod
    def _check(text: str, output: dict) -> None:
        for key in ("body", "html"):
            value = output.get(key) or ""
            if INTERNAL_ERROR.search(value):
                raise GoldenError(f"internal error after {text!r}: {value!r}")

    def substitute(self, ex: Example) -> str:
        """The README example with its placeholder code and number replaced by the real ones."""
        text = ex.text
        for placeholder, name in CODE_PLACEHOLDERS.items():
            if placeholder in text:
                text = text.replace(placeholder, self.value(name, ex.text))
        if ex.text in NUMBER_PLACEHOLDERS:
            position, name = NUMBER_PLACEHOLDERS[ex.text]
            tokens = text.split(" ")
            tokens[position] = self.value(name, ex.text)
            text = " ".join(tokens)
        return text

    def value(self, name: str, needed_by: str) -> str:
        if name not in self.state:
            raise GoldenError(f"{needed_by!r} needs {name!r}, which no earlier reply gave")
        return self.state[name]

    def capture(self, capture: tuple[str, str] | None, typed: str, outputs: list[dict]) -> None:
        if capture is None:
            return
        name, pattern = capture
        for output in outputs:
            m = re.search(pattern, output.get("body") or "")
            if m:
                self.state[name] = m.group(1)
                return
        raise GoldenError(f"no {name!r} ({pattern}) in the replies to {typed!r}: {outputs!r}")

    async def step(self, step: Step) -> None:
        await self.go_to(step.who)
        text = re.sub(r"\{(\w+)\}", lambda m: self.value(m.group(1), step.text), step.text)
        outputs = await self.type(text, setup=True)
        self.capture(step.capture, text, outputs)

    async def example(self, ex: Example) -> None:
        who = context_for(ex.text)
        if who is not None:
            await self.go_to(who)
        text = self.substitute(ex)
        outputs = await self.type(text, setup=False, example=ex)
        self.capture(CAPTURES.get(ex.text), text, outputs)


def context_for(text: str) -> tuple[str, str] | None:
    if text.startswith("/"):
        return None  # the terminal's commands are typed wherever the session is
    for prefix, who in CONTEXT_BY_PREFIX:
        if text.startswith(prefix):
            return who
    return KARIM_BGE


async def _session(workdir: Path) -> list[str]:
    from ess_bot.clock import Clock
    from ess_bot.config import load_config
    from ess_bot.runner import Runner
    from ess_bot.transports.console import ConsoleTransport, resolve_console_room

    # env given explicitly: nothing of the caller's environment (ESS_BOT_*) reaches the configuration
    config = load_config(CONFIG, env={"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'ess-bot.db'}"})
    clock = Clock(config.bot.tz, frozen_at=START)
    sender = config.members_with_role("coordinator")[0].user_id  # as `ess-bot console` starts
    room = resolve_console_room(config, "coordination", sender)
    out, err = io.StringIO(), io.StringIO()
    files_dir = workdir / "fichiers"
    console = ConsoleTransport(config, sender, room, json_output=True, files_dir=files_dir, out=out, err=err,
                               session_id=SESSION_ID, stdin=None)
    runner = Runner(config, console, clock)
    recorder = Recorder(console, runner, out, err,
                        room_labels={room_id: key for key, room_id in config.room_keys().items()})
    try:
        await runner.start()  # as `ess-bot console` starts: database, scheduler, nothing due yet
        seed_project_codes(runner.app)
        examples = examples_to_run(readme_examples(README.read_text(encoding="utf-8")))
        quit_ = [ex for ex in examples if ex.text == "/quit"]
        for ex in examples[:len(examples) - len(quit_)]:
            for step in SETUP_BEFORE.get(ex.text, []):
                await recorder.step(step)
            await recorder.example(ex)
            for step in FOLLOW_UP.get(ex.text, []):
                await recorder.step(step)
        for step in AFTER_EXAMPLES:
            await recorder.step(step)
        for ex in quit_:
            await recorder.example(ex)
    finally:
        await runner.stop()
    return recorder.lines


def _dump(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


def run_session() -> list[str]:
    """The session's lines, from a fresh database in a temporary folder."""
    errors = _Errors()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        with tempfile.TemporaryDirectory(prefix="ess-bot-golden-") as workdir:
            lines = asyncio.run(_session(Path(workdir)))
    finally:
        root.removeHandler(errors)
    if errors.messages:
        raise GoldenError("the bot logged errors during the session:\n" + "\n".join(errors.messages))
    return lines


# -- comparing ---------------------------------------------------------------------------------------


def _render(record: dict) -> list[str]:
    """A record as readable lines: one per field, texts cut at their line breaks, one line per table row."""
    lines: list[str] = []

    def put(key: str, value, indent: str) -> None:
        if isinstance(value, str) and ("\n" in value or len(value) > 100):
            lines.append(f"{indent}{key}:")
            lines.extend(f"{indent}    | {part}" for part in value.replace("\r\n", "\n").split("\n"))
        elif isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            for sub, item in value.items():
                put(sub, item, indent + "    ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{indent}{key}:")
            for number, item in enumerate(value, 1):
                put(f"#{number}", item, indent + "    ")
        elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            lines.append(f"{indent}{key}:")
            lines.extend(f"{indent}    {json.dumps(item, ensure_ascii=False)}" for item in value)
        else:
            lines.append(f"{indent}{key}: {json.dumps(value, ensure_ascii=False)}")

    for key, value in record.items():
        put(key, value, "")
    return lines


def _blocks(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """The lines grouped by input: (the input line, the lines that follow it)."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        if line.startswith('{"input": '):
            blocks.append((line, []))
        else:
            blocks[-1][1].append(line)
    return blocks if blocks[0][1] else blocks[1:]


def _describe_input(line: str | None) -> str:
    if line is None:
        return "(before the first input: the session's start)"
    record = json.loads(line)
    where = f"as {record['as']} in {record['room']}"
    origin = (f"README line {record['readme_line']}" + (f", README text {record['readme']!r}" if "readme" in record
                                                          else "")) if "readme_line" in record else ""
    kind = "setup step" if record.get("setup") else "README example"
    return f"{record['input']!r} ({kind}; {where}{'; ' + origin if origin else ''})"


def compare(expected: list[str], got: list[str], source: Path = RECORDING, max_blocks: int = 3,
            max_lines: int = 60) -> str:
    """Empty when identical; else a readable account of the first differences (input, expected vs got)."""
    if expected == got:
        return ""
    name = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    report = [f"The README session differs from {name} (expected {len(expected)} lines, got {len(got)})."]
    want, have = _blocks(expected), _blocks(got)
    shown = 0
    for index in range(max(len(want), len(have))):
        w = want[index] if index < len(want) else None
        h = have[index] if index < len(have) else None
        if w == h:
            continue
        shown += 1
        if shown > max_blocks:
            report.append("… (further differences not shown)")
            break
        if w is None or h is None:
            side, block = ("got", h) if w is None else ("expected", w)
            report.append(f"\n#{shown} only {side}: input {_describe_input(block[0])} and {len(block[1])} line(s)")
            continue
        if w[0] != h[0]:
            report.append(f"\n#{shown} the inputs differ (README or script changed?):\n"
                          f"  expected: {_describe_input(w[0])}\n  got:      {_describe_input(h[0])}")
        else:
            report.append(f"\n#{shown} after input {_describe_input(w[0])}:")
        want_lines = [f"[{i + 1}] {text}" for i, line in enumerate(w[1]) for text in _render(json.loads(line))]
        have_lines = [f"[{i + 1}] {text}" for i, line in enumerate(h[1]) for text in _render(json.loads(line))]
        diff = list(difflib.unified_diff(want_lines, have_lines, "expected", "got", lineterm="", n=2))
        if not diff and w[1] != h[1]:  # same content, other bytes (key order, escaping)
            diff = [f"- {a}\n+ {b}" for a, b in zip(w[1], h[1]) if a != b] or ["(outputs differ in number)"]
        report.extend("  " + line for line in diff[:max_lines])
        if len(diff) > max_lines:
            report.append(f"  … ({len(diff) - max_lines} more diff lines)")
    report.append("\nIf the change is wanted (a user *should* see it), from the repository:\n"
                  "  .venv/bin/python -m tests.golden.readme_session --record")
    return "\n".join(report)


def read_recording(path: Path = RECORDING) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def write_recording(lines: list[str], path: Path = RECORDING) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _list_examples() -> str:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    run = examples_to_run(examples)
    run_ids = {id(ex) for ex in run}
    out = []
    for ex in examples:
        if id(ex) in run_ids:
            status = "run"
        elif ex.skipped:
            status = f"not run: {ex.skipped}"
        else:
            status = "run once, elsewhere (same text)"
        out.append(f"{ex.line:4d} {ex.where:9s} {ex.text!r:90s} {status}")
    out.append(f"\n{len(examples)} code spans found; {len(run)} distinct examples run; "
               f"{sum(1 for ex in examples if ex.skipped)} not run.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.readme_session", description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="rewrite the recording")
    parser.add_argument("--list", action="store_true", help="list the README examples found, run or not")
    parser.add_argument("--recording", type=Path, default=RECORDING, help="the recording to compare with or write")
    args = parser.parse_args(argv)
    if args.list:
        print(_list_examples())
        return 0
    try:
        lines = run_session()
    except GoldenError as exc:
        print(f"The README session could not run: {exc}", file=sys.stderr)
        return 2
    if args.record:
        write_recording(lines, args.recording)
        inputs = sum(1 for line in lines if line.startswith('{"input": '))
        print(f"{args.recording}: {len(lines)} lines, {inputs} inputs.")
        return 0
    if not args.recording.exists():
        print(f"{args.recording} does not exist: record it with --record.", file=sys.stderr)
        return 2
    diff = compare(read_recording(args.recording), lines, args.recording)
    if diff:
        print(diff)
        return 1
    print(f"README session identical to {args.recording} ({len(lines)} lines).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A grammar-aware fuzzer for the command lines: what tests/unit/test_fuzz_commands.py samples inside
``make test`` and bench/fuzz.py runs 100,000 times.

Lines are built from the real registry (``commands.build_registry()``): every command and alias, every
sub-command and alias, the arguments of their usages and examples — then mutated: arguments shuffled,
truncated, repeated, replaced by huge numbers, impossible dates, unicode (combining marks, right-to-left
marks, emoji, NUL and control characters), 10 kB words and lines, HTML, Markdown links, quotes left
open and typographic quotes. Each line is typed by one of the roles (advisor, coordinator, admin,
stranger) in one of the room kinds (direct, partner, coordination, announcements, other) and goes
through the real dispatcher on a real SQLite database (or PostgreSQL) with a frozen clock; between the
lines come reactions, redactions, native poll answers and files pointing at earlier events, commands sent
as replies, and the clock moving on (the scheduler's reminders and automatic closes run then).

The oracle (:meth:`Fuzzer.run_line`), for every line the dispatcher reads as a command: at least one reply
in the same room, in French (no English or Python error words, no placeholder left, a French word or
letter), no internal error (neither the "erreur interne" reply nor an ERROR record of the ``ess_bot``
loggers, scheduled jobs included), no exception escaping, every message small enough for a Matrix event,
nothing written that PostgreSQL would refuse (:class:`StrictColumns`: a text longer than its column, a
NUL, an integer beyond its type — SQLite stores them all). A line that is not a command gets no reply.

Everything derives from one seed: a failure prints the seed, the line number, the sender, the room and
the line (``repr``); the same seed and the same number of lines replay it, the state the earlier lines
built included (project codes come from the seed too).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from decimal import Decimal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import BigInteger, Integer, Numeric, String, event

import commands
from ess_bot.framework.command import Registry
from ess_bot.framework.dispatcher import parse_command
from ess_bot.framework.messages import Outgoing
from ess_bot.services.tools import FILE_MSGTYPES
from ess_bot.storage.models import Base
from tests.support import PARIS, Harness, Recorder, make_config

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)  # a Friday morning

# -- who types, and where ----------------------------------------------------------------------

EXTRA_CONFIG = """
[[partners]]
slug = "aldess"
name = "Aldess"
departments = ["58"]
room = "!aldess:test"

[[members]]
user_id = "@ali:test"
partner = "aldess"
role = "advisor"
name = "Ali"

[[members]]
user_id = "@sophie:test"
partner = "urscop"
role = "coordinator"
name = "Sophie"

[[permanences]]
partner = "bge-fc"
town = "Besançon"
weekday = "monday"
hours = "09:00-12:30, 13:30-17:30"
address = "BGE Franche-Comté, 4 rue Gabriel Plançon, 25000 Besançon"

[[permanences]]
partner = "bge-fc"
town = "Belfort"
weekday = "wednesday"
hours = "09:00-12:00, 14:00-17:00"
address = "Pépinière d'entreprises, 10 rue de la Découverte, 90000 Belfort"

[[permanences]]
partner = "urscop"
town = "Dijon"
weekday = "thursday"
hours = "14:00-17:00"
address = "URSCOP, 2 rue de Vesoul, 21000 Dijon"
"""

# (user id, role) — the admin is a technical account of BGE; the stranger is in no configuration
SENDERS = [
    ("@karim:test", "advisor"), ("@marc:test", "advisor"), ("@ali:test", "advisor"),
    ("@claire:test", "coordinator"), ("@sophie:test", "coordinator"),
    ("@admin:test", "admin"),
    ("@intrus:test", "stranger"),
]
SENDER_WEIGHTS = [4, 2, 1, 4, 1, 2, 1]
HOME = {"@karim:test": "!bge:test", "@marc:test": "!urscop:test", "@ali:test": "!aldess:test",
        "@claire:test": "!bge:test", "@sophie:test": "!urscop:test", "@admin:test": "!bge:test"}
ROLE_ORDER = ["advisor", "coordinator", "admin"]
ROOMS = {  # room kind → rooms of that kind ("direct" is the sender's own direct chat)
    "direct": ["!dm-{user}:test"],
    "partner": ["!bge:test", "!urscop:test", "!aldess:test"],
    "coordination": ["!coord:test"],
    "announcements": ["!annonces:test"],
    "other": ["!autre:test"],
}
ROOM_WEIGHTS = {"direct": 3, "partner": 4, "coordination": 3, "announcements": 1, "other": 1}

# -- the vocabulary of mutations ----------------------------------------------------------------

HUGE_NUMBERS = ["0", "-1", "-0", "00", "007", str(10**30), str(2**31), str(2**31 - 1), str(2**63), str(2**64),
                "-" + str(2**63), "9" * 400, "1e308", "1e9999", "NaN", "inf", "-inf", "0x10", "1_000", "١٢",
                "１２", "²", "3,5", "3.5", "1/0", "n°" + str(10**30), "#" + str(2**63), "n°0", "#-1"]
DATES = ["31/02", "30/02/2027", "29/02/2027", "29/02/2028", "31/12/9999", "01/01/9999", "00/00/0000", "1/1/1",
         "0/0", "32/13", "31/04", "1/13/2027", "12/11/1969", "01/01/1970", "31/12/2099", "15/01/2027",
         "01/01/10000", "1/1/99999999999999999999", "demain", "hier", "aujourd'hui", "après-demain",
         "jeudi", "lundi prochain", "dimanche", "3 février 2027", "31 février", "30 février 2027",
         "1er janvier 9999", "décembre 9999", "12/9999", "2027-01-15", "15.01.2027", "le 12/11",
         "il y a 200 semaines", "dans 99999 jours", "il y a 99999999 jours", "T3 2026", "S1 9999",
         "2026", "9999", "0000",
         # daylight saving time: 2 h 30 does not exist on 28/03/2027 and happens twice on 31/10/2027 in Paris
         "28/03/2027 2h30", "31/10/2027 2h30", "28/03/2027", "31/10/2027", "29/03/2026", "25/10/2026",
         "01/01/2020", "31/12/2026 23h59", "1/1/2027 0h", "5/11/2031", "21/11/2031", "19/11/2031"]
HOURS = ["14h", "9h30", "18h30", "00h00", "23h59", "24h", "25h", "23h61", "99h", "-1h", "14h-17h", "17h-14h",
         "14h-14h", "9h-9h01", "14:00", "14h00-", "-17h", "h", "1h30", "0h", "999h", "90min", "0min",
         "9999999999h", "1,5h", "2h", "45min", "midi", "minuit", "2h30", "3h", "1h59", "02:30", "23h-1h"]
WORDS = ["oui", "non", "sibesoin", "si", "besoin", "tout=oui", "tout=non", "1=oui", "2=sibesoin", "3=non",
         "99=oui", "0=oui", "1=peut-être", "entre", "et", "au", "du", "n=4", "n=0", "n=-1", "n=999999",
         "durée=3h", "durée=0h", "durée=999h", "limite=20/02", "limite=31/12/9999", "date=2", "date=99",
         "date=31/02", "heure=25h", "fin=3h", "fin=31/12/9999", "lieu=", 'lieu="Le Pixel, Besançon"',
         "lien=https://exemple.org/x", "lien=javascript:alert(1)", "lien=ftp://x", "lien=", "public=porteurs",
         "titre=", 'titre="Nouveau titre"', "type=trame", "type=zorglub", "phase=émergence", "phase=",
         "description=", "tags=", "tags=a,b", "tags=,,,", "#scop", "#", "-#", "-#scop", "##", "#" + "x" * 300,
         "organisateur=urscop", "organisateur=réseau", "organisateur=zorglub", "dep=25", "dep=2A", "dep=999",
         "forme=scic", "nature=reprise", "esus=oui", "collectif", "collectif=peut-être", "emplois=2",
         "emplois=-1", "emplois=" + str(10**30), "qpv=non", "frr=nc", "femme", "26-49", "rsa",
         "themes=juridique", "note=-", "création", "abandon", "report", "urscop", "bge-fc", "aldess",
         "inconnu", "visio", "tel", "ante", "financement", "Pixel", "Besançon", "besancon", "25", "90000",
         "lons", "décembre", "janvier", "2027", "5", "50", "51", "trimestre", "dernier", "prochain", "mois",
         "ce", "=", "==", "=x", "x=", "a=b=c", ",", ";", "-", "--", "…", "n°", "#2", "P-", "P-0000", "p-2222",
         "aide", "ping", "liste", "voir", "ajouter", "annuler", "modifier", "proposer"]
UNICODE = [
    "e\u0301" * 3, "\u0301", "a" + "\u0300" * 200, "\u202eTXET\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd",
    "مرحبا", "\u200b", "\u200d", "\ufeff", "\u00ad", "\u2028", "\u2029", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🙂" * 50,
    "\x00", "x\x00y", "\x07", "\x1b[31m", "\x7f", "\r", "\r\n", "\t", "\x0b", "\x0c", "\u0085",
    "ﬁ", "Ⅻ", "①", "𝟙𝟚", "Ｐｉｘｅｌ", "İ", "ß", "ǅ", "\U0001F600", "\U000E0041", "\uFFFD", "\uFFFF",
    "\U0010FFFF", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
]
HOSTILE = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>',
    "[clic](javascript:alert(1))", "[x](https://matrix.to/#/@x:test)", "[@x](https://matrix.to/#/@x:test)",
    "![img](https://exemple.org/x.png)", "<https://exemple.org>", "**gras**", "_it_", "`code`", "``",
    "```", "\\", "\\*", "# titre", "> cité", "1. liste", "- puce", "&amp;", "&lt;b&gt;", "&#x3C;", "|a|b|",
    "---", "<!-- x -->", "]]>", "{}", "{0}", "{name}", "%s", "%(x)s", "$1", "\\n", "@room", "@karim:test",
    "https://matrix.to/#/!coord:test", "mailto:x@y.fr", "data:text/html,x", "javascript:alert(1)",
]
QUOTES = ['"', '""', '"x', 'x"', '"a" "b', "«", "»", "« x »", "«x", "“x”", "“x", "‘x’", "'x", "„x“",
          '"\u00a0"', "\u00a0", "\u202f", "`"]
MAX_BODY_BYTES = 60_000
BIG = ["x" * 10_000, "mot " * 2_500, "é" * 5_000, "🙂" * 2_500, '"' + "a " * 5_000 + '"', "1" * 10_000,
       "#" + "a" * 10_000, "lieu=" + "y" * 10_000, "x" * 50_000]


_WORD = re.compile(r'(?:[^\s"]*"[^"]*")+[^\s"]*|\S+')


def _args_of(text: str) -> list[str]:
    """The words of a usage or example as written, quotes kept: ``lieu="Le Pixel, Besançon"`` is one."""
    return _WORD.findall(text)


@dataclass
class Family:
    names: list[str]                 # the command's name and aliases
    subs: list[list[str]]            # each sub-command's name and aliases
    argument_lists: list[list[str]]  # arguments of the examples and usages (after the command words)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (role required, example as written)


def grammar(registry: Registry) -> list[Family]:
    families = []
    for cmd in registry.all():
        subs = [s.names() for s in cmd.subcommands]
        sub_words = {w for names in subs for w in names}
        lists = []
        for text in [cmd.usage, *cmd.examples, *(x for s in cmd.subcommands for x in (s.usage, *s.examples))]:
            args = _args_of(text)[1:]  # after "!cmd"
            if args and args[0] in sub_words:
                args = args[1:]
            # usages: "[fin=…]" → "fin=…", "<n°>" → "1", "a|b" → "a"
            cleaned = []
            for a in args:
                a = a.strip("[]")
                if a.startswith("<") and a.endswith(">"):
                    a = "1"
                a = a.split("|")[0] if "|" in a and "=" not in a else a
                if a and a != "…":
                    cleaned.append(a)
            lists.append(cleaned)
        examples = [(cmd.role, e) for e in cmd.examples] + [(max(cmd.role, s.role, key=ROLE_ORDER.index), e)
                                                             for s in cmd.subcommands for e in s.examples]
        families.append(Family(cmd.names(), subs, lists, examples))
    return families


@dataclass
class Line:
    """One thing that happens: a message typed (``event="message"``), a reaction, a redaction, a native
    poll answer or a file posted, or the clock moving (``event="tick"``, ``hours`` later)."""

    n: int
    body: str
    sender: str
    role: str
    room: str
    kind: str                       # the room kind
    event: str = "message"
    reply_to: str | None = None
    relates_to: str | None = None
    key: str | None = None
    answers: tuple[str, ...] = ()
    content: dict = field(default_factory=dict)
    hours: float = 0.0

    def describe(self, seed: int) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + f"… ({len(self.body)} characters)"
        where = f"seed={seed} line #{self.n}"
        if self.event == "tick":
            return f"{where}: the clock moves {self.hours:g} h on"
        extra = "".join(f" {name}={value!r}" for name, value in [("reply_to", self.reply_to),
                                                                  ("relates_to", self.relates_to),
                                                                  ("key", self.key), ("answers", self.answers),
                                                                  ("content", self.content)] if value)
        what = "body" if self.event == "message" else f"{self.event}: body"
        return f"{where} sender={self.sender} ({self.role}) room={self.room} ({self.kind}) {what}={body!r}{extra}"


@dataclass
class Seen:
    """What the bot did so far, for events that point at earlier ones (kept by the Fuzzer)."""

    sent: int = 0                                       # the recorder names them $sent-1, $sent-2…
    incoming: list[str] = field(default_factory=list)   # event ids of the lines typed
    files: list[str] = field(default_factory=list)      # event ids of the files posted
    year: int = NOW.year                                # the clock's year: examples' years follow it


class Generator:
    """Seeded lines: the same seed gives the same lines (and the same ids, codes are given later)."""

    def __init__(self, seed: int, registry: Registry | None = None, values: dict[str, list[str]] | None = None,
                 seen: Seen | None = None, tick_every: int = 150):
        self.seed = seed
        self.seen = seen or Seen()
        self.tick_every = tick_every
        self.rng = random.Random(seed)
        self.families = grammar(registry or commands.build_registry())
        self.values = values or {}   # real identifiers found while seeding the state: codes, numbers
        self.n = 0
        self.all_words = sorted({w for f in self.families for lst in f.argument_lists for w in lst})

    # -- pieces
    def value(self) -> str:
        r = self.rng
        pool = r.choices([HUGE_NUMBERS, DATES, HOURS, WORDS, UNICODE, HOSTILE, QUOTES, self.all_words,
                          self.values.get("ids", ["1"]), self.values.get("codes", ["P-2222"]), BIG],
                         weights=[3, 4, 3, 6, 2, 2, 1, 4, 4, 3, 0.15])[0]
        v = r.choice(pool)
        if r.random() < 0.1 and pool is not BIG:  # glue: key=value, value+unicode, value+hostile
            v = r.choice([f"{r.choice(['date', 'heure', 'fin', 'lieu', 'titre', 'n', 'durée', 'limite', 'lien'])}={v}",
                          v + r.choice(UNICODE), r.choice(HOSTILE) + v, f'"{v}"', f"«{v}»"])
        return v

    def command_words(self, family: Family) -> list[str]:
        r = self.rng
        name = r.choice(family.names)
        name = r.choices([name, name.upper(), name.capitalize(), name[:-1] or name, name + "x"],
                         weights=[30, 2, 2, 1, 1])[0]
        if r.random() < 0.003:  # a command name of 10 to 40 kB
            unit = r.choice(["x", "é", "a\u0301", "🙂"])
            name = unit * (r.randint(10_000, 40_000) // len(unit.encode()))
        words = [name]
        if family.subs and r.random() < 0.85:
            sub = r.choice(r.choice(family.subs))
            sub = r.choices([sub, sub.upper(), sub[:-1] or sub], weights=[20, 1, 1])[0]
            words.append(sub)
        return words

    def arguments(self, family: Family) -> list[str]:
        r = self.rng
        args = list(r.choice(family.argument_lists)) if family.argument_lists else []
        if len(family.argument_lists) > 1 and r.random() < 0.1:
            args += r.choice(family.argument_lists)
        for _ in range(r.choice([0, 1, 1, 2, 3])):
            mutation = r.choice(["shuffle", "truncate", "repeat", "replace", "replace", "insert", "insert",
                                 "drop", "id"])
            if mutation == "shuffle":
                r.shuffle(args)
            elif mutation == "truncate" and args:
                args = args[:r.randrange(len(args) + 1)]
            elif mutation == "repeat" and args:
                i = r.randrange(len(args))
                args[i:i] = [args[i]] * r.choice([1, 2, 10, 50])
            elif mutation == "replace" and args:
                args[r.randrange(len(args))] = self.value()
            elif mutation == "insert":
                args.insert(r.randrange(len(args) + 1), self.value())
            elif mutation == "drop" and args:
                del args[r.randrange(len(args))]
            elif mutation == "id":
                pool = self.values.get("ids", ["1"]) + self.values.get("codes", [])
                if args:
                    args[0] = r.choice(pool)
                else:
                    args.append(r.choice(pool))
        return args

    def body(self) -> str:
        r = self.rng
        family = r.choice(self.families)
        words = self.command_words(family) + self.arguments(family)
        separator = r.choices([" ", "  ", "\u00a0", "\t", "\n"], weights=[20, 1, 1, 1, 1])[0]
        text = "!" + separator.join(words)
        shape = r.random()
        if shape < 0.02:    # a 10 kB line
            while len(text) < 10_000:
                text += " " + r.choice(words[1:] or words)
        elif shape < 0.03:  # cut in the middle (a quote, a key=value…)
            text = text[:r.randrange(2, len(text) + 1)] if len(text) > 2 else text
        elif shape < 0.04:  # quoted reply, old style
            text = "> <@x:test> un message cité\n\n" + text
        elif shape < 0.05:  # what comes after the command on more lines
            text = text + "\n" + r.choice(["suite", "\n\n", "```\ncode\n```", "> cité", "- a\n- b"])
        elif shape < 0.06:  # not a command: no answer expected
            text = r.choice(["bonjour", "! ping", "!", "!!", "!1", "!?", "!«aide»", " ", "", "ping", "!\u00a0aide",
                             "?aide", "!" + r.choice(UNICODE), "!#", "!-aide", "!" + "1" * 10_000])
        elif shape < 0.07:  # leading junk the normaliser removes
            text = r.choice(["\ufeff", "\u200b", " ", "\x00", "\u202e", "\n"]) + text
        # a Matrix event is at most 64 kB: a longer body never reaches the bot
        while len(text.encode()) > MAX_BODY_BYTES:
            text = text[:len(text) * MAX_BODY_BYTES // len(text.encode())]
        return text

    def earlier(self, sent_share: float = 0.8) -> str:
        """An event id the bot knows (one it sent, one it was sent) or not."""
        r = self.rng
        if self.seen.sent and r.random() < sent_share:
            return f"$sent-{r.randint(max(1, self.seen.sent - 60), self.seen.sent)}"
        if self.seen.incoming and r.random() < 0.9:
            return r.choice(self.seen.incoming[-200:])
        return r.choice(["$inconnu", "", "$" + "x" * 300, "$sent-0", "$sent--1", "$sent-" + str(10**30)])

    def valid_line(self) -> Line:
        """An example of the registry as written, with real numbers and codes, typed by someone allowed
        to in a room where it works (so that creations, changes and closes really happen), sometimes
        with one value replaced."""
        r = self.rng
        family = r.choice([f for f in self.families if f.examples])
        needed, text = r.choice(family.examples)
        allowed = [(u, role) for u, role in SENDERS
                   if role != "stranger" and ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)]
        sender, role = r.choice(allowed)
        if family.names[0] == "reunion" or r.random() < 0.1:
            room, kind = "!coord:test", "coordination"
        elif r.random() < 0.7:
            room, kind = HOME[sender], "partner"
        else:
            room, kind = ROOMS["direct"][0].format(user=sender[1:].split(":")[0]), "direct"
        codes, ids = self.values.get("codes", ["P-2222"]), self.values.get("ids", ["1"])
        text = re.sub(r"\b20[2-9][0-9]\b", lambda m: str(int(m.group(0)) - 2026 + self.seen.year), text)
        words = _args_of(text)
        words = [r.choice(codes) if w == "P-7K3Q" else r.choice(ids) if w in ("3", "42") and i <= 2 else w
                 for i, w in enumerate(words)]
        if len(words) > 2 and r.random() < 0.3:
            words[r.randrange(2, len(words))] = self.value()
        return Line(self.n, " ".join(words), sender, role, room, kind)

    def line(self) -> Line:
        r = self.rng
        self.n += 1
        if r.random() < 0.12:
            return self.valid_line()
        sender, role = r.choices(SENDERS, weights=SENDER_WEIGHTS)[0]
        kind = r.choices(list(ROOM_WEIGHTS), weights=list(ROOM_WEIGHTS.values()))[0]
        room = r.choice(ROOMS[kind]).format(user=sender[1:].split(":")[0])
        line = Line(self.n, "", sender, role, room, kind)
        event = r.choices(["message", "reaction", "redaction", "poll_response", "file", "tick"],
                          weights=[90, 5, 1.5, 1, 1, 100 / self.tick_every if self.tick_every else 0])[0]
        line.event = event
        if event == "message":
            line.body = self.body()
            if r.random() < 0.05:   # a command sent as a reply (to a file, a bot message, anything)
                line.reply_to = r.choice(self.seen.files[-20:]) if self.seen.files and r.random() < 0.5 \
                    else self.earlier()
        elif event == "reaction":
            line.relates_to = self.earlier(0.95)
            line.key = r.choice(["✅", "✅", "🤔", "❌", "✔️", "👍", "👎", "❓", "1️⃣", "oui", "", "✅️", "x" * 500,
                                 r.choice(UNICODE), r.choice(HOSTILE)])
        elif event == "redaction":
            line.relates_to = self.earlier(0.5)
        elif event == "poll_response":
            line.relates_to = self.earlier(0.95)
            line.answers = tuple(r.choice(["1", "2", "3", "0", "-1", "99", "999", "1" * 50, "x", "", "1.5", "²"])
                                 for _ in range(r.choice([0, 1, 1, 2, 3, 30])))
        elif event == "file":
            name = r.choice(["trame.docx", "Grille ESUS.pdf", r.choice(HOSTILE) + ".pdf", r.choice(UNICODE),
                             "x" * 1000, "", "a/../../etc/passwd"])
            line.body = name
            line.content = r.choice([
                {"msgtype": "m.file", "body": name, "url": "mxc://test/abc", "info": {"size": 1234,
                                                                                       "mimetype": "application/pdf"}},
                {"msgtype": "m.image", "body": name, "url": "mxc://test/img", "info": {"size": -1, "mimetype": 3}},
                {"msgtype": "m.file", "body": name, "url": "https://exemple.org/x"},
                {"msgtype": "m.file", "body": name, "file": {"url": "mxc://test/enc", "key": {}}, "info": "x"},
                {"msgtype": "m.file", "filename": name, "url": "mxc://test/" + "z" * 300,
                 "info": {"size": 2**63, "mimetype": "x" * 1000}},
                {"msgtype": "m.text", "body": name},
            ])
        else:
            line.hours = r.choice([0.5, 1, 3, 6, 12, 24, 48, 72, 24 * 7])
        return line


# -- the oracle ---------------------------------------------------------------------------------

ENGLISH = ["Traceback", "Error", "Exception", "exception", "None", "NoneType", "object has no attribute",
           "invalid literal", "Errno", "not supported", "unsupported", "is not", "<built-in",
           "<function", "<class", "line ", "raise ", "self.", "datetime.", "sqlalchemy", "SELECT "]
PLACEHOLDER = re.compile(r"\{[a-z_][a-z_0-9.]*(?:![rs])?(?::[^{}]*)?\}|\{\}|%\([a-z_]+\)s|%s|%d")
FRENCH_WORDS = re.compile(r"(?i)\b(le|la|les|l|de|des|du|d|un|une|et|ou|pour|pas|est|vous|votre|vos|je|j|à|au|aux|en|"
                          r"sur|dans|par|avec|aucun|aucune|il|n|ne|ce|cette|qui|que|commande|exemple|tapez|"
                          r"syntaxe|merci|désolé|bonjour|prochaine|prochaines|réunion|sondage|outil|projet)\b|"
                          r"[àâçéèêëîïôûùüÿœ«»]")
INTERNAL = re.compile(r"erreur interne|\bE-[0-9A-F]{6}\b")
MAX_EVENT_BYTES = 60_000  # a Matrix event is at most 65,536 bytes, JSON envelope and signatures included


def french_problems(out: Outgoing, typed: str) -> list[str]:
    """What makes one reply not French, not finished or not sendable (empty: fine)."""
    problems = []
    body = out.body or ""
    if out.kind in ("notice", "text"):
        if not body.strip():
            problems.append("empty reply")
        for word in ENGLISH:
            if word in body and word not in typed:
                problems.append(f"English or Python words in the reply: {word!r}")
        for m in PLACEHOLDER.finditer(body):
            if m.group(0) not in typed:
                problems.append(f"placeholder left in the reply: {m.group(0)!r}")
        if not FRENCH_WORDS.search(body):
            problems.append("no French word in the reply")
    size = len(json.dumps({"body": body, "formatted_body": out.html or "", **(out.extra or {})},
                          ensure_ascii=False).encode())
    if size > MAX_EVENT_BYTES:
        problems.append(f"a message of {size} bytes: more than a Matrix event may carry")
    return problems


class StrictColumns:
    """What PostgreSQL would refuse and SQLite stores anyway, checked on every write: a text longer than
    its VARCHAR, an INTEGER beyond 32 bits, a NUMERIC beyond its precision (mapper events, before each
    row is inserted or updated); a NUL character in a text, an integer beyond 64 bits (every statement's
    parameters). Each finding is kept in ``found`` (the fuzzer turns it into a failure of its line)."""

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.found: list[str] = []

    def install(self) -> None:
        event.listen(Base, "before_insert", self._row, propagate=True)
        event.listen(Base, "before_update", self._row, propagate=True)
        event.listen(self.engine, "before_cursor_execute", self._statement)

    def remove(self) -> None:
        event.remove(Base, "before_insert", self._row)
        event.remove(Base, "before_update", self._row)
        event.remove(self.engine, "before_cursor_execute", self._statement)

    def _row(self, mapper, _connection, target) -> None:
        table = mapper.local_table.name
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            value = getattr(target, attr.key, None)
            kind = column.type
            if isinstance(value, str) and isinstance(kind, String) and kind.length and len(value) > kind.length:
                self.found.append(f"{table}.{column.name}: {len(value)} characters in a VARCHAR({kind.length})")
            elif isinstance(value, int) and not isinstance(value, bool) and isinstance(kind, Integer) \
                    and not isinstance(kind, BigInteger) and not -2**31 <= value < 2**31:
                self.found.append(f"{table}.{column.name}: {value} does not fit PostgreSQL's INTEGER")
            elif isinstance(value, (int, Decimal)) and not isinstance(value, bool) and isinstance(kind, Numeric) \
                    and not isinstance(kind, Integer) and kind.precision is not None \
                    and abs(Decimal(value)) >= Decimal(10) ** (kind.precision - (kind.scale or 0)):
                self.found.append(f"{table}.{column.name}: {value} does not fit NUMERIC({kind.precision}, "
                                  f"{kind.scale})")

    def _statement(self, _conn, _cursor, statement, parameters, _context, _executemany) -> None:
        rows = parameters if isinstance(parameters, list) else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row if isinstance(row, (tuple, list)) else ()
            for value in values:
                if isinstance(value, str) and "\x00" in value:
                    self.found.append(f"a NUL character in a text parameter of {statement.split()[0]} "
                                      f"({value[:60]!r}…): PostgreSQL refuses it")
                elif isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
                    self.found.append(f"{value} in a parameter of {statement.split()[0]}: beyond 64 bits")


class _Errors(logging.Handler):
    """ERROR records of the bot's loggers (the dispatcher logs every internal error there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Failure:
    line: Line
    problem: str
    replies: list[str] = field(default_factory=list)

    def describe(self, seed: int) -> str:
        shown = "; ".join(repr(r[:200]) for r in self.replies[:3])
        return f"{self.problem}\n    {self.line.describe(seed)}\n    replies: {shown}"


@dataclass
class Result:
    seed: int
    lines: int = 0
    commands: int = 0
    replies: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    known: list[Failure] = field(default_factory=list)     # failures matching KNOWN_FAILURES
    slowest: list[tuple[float, Line]] = field(default_factory=list)

    @property
    def internal_errors(self) -> int:
        return sum(1 for f in self.failures + self.known if f.problem.startswith("internal error"))

    def summary(self) -> str:
        rate = self.lines / self.seconds if self.seconds else 0.0
        return (f"seed {self.seed}: {self.lines} lines ({self.commands} commands, {self.replies} replies) in "
                f"{self.seconds:.1f} s, {rate:.0f} lines/s; {len(self.failures)} failure(s), "
                f"{len(self.known)} known failure(s), {self.internal_errors} internal error(s)")


# A failure whose fix belongs to a file this fuzzer's owner may not edit: (family, part of the problem,
# why). Matched on the command name and the problem; counted in the result apart from the other failures
# (shown, not failing the run). Each entry has its exact reproducer in tests/unit/test_fuzz_commands.py
# KNOWN, an xfail(strict=True) test that fails once the fix lands: then remove both.
KNOWN_FAILURES: list[tuple[str, str, str]] = []


def _family_of(body: str, registry: Registry) -> str:
    parsed = parse_command(body, "!")
    cmd = registry.get(parsed.name) if parsed else None
    return cmd.name if cmd else ""


class CountingRecorder(Recorder):
    """The tests' recorder, numbering what it sent on its own (the fuzzer empties ``sent`` after each
    line: 100,000 lines of replies are not kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def __call__(self, out: Outgoing, txn_id: str) -> str:
        self.count += 1
        self.sent.append(out)
        return f"$sent-{self.count}"


class Fuzzer:
    """A started bot with some state, and the oracle. ``sanitiser``: a tests.sanitiser.SanitiserCheck
    already installed, whose findings become failures of the line that caused them."""

    def __init__(self, tmp_path: Path, seed: int, now: datetime = NOW, tick_every: int = 150,
                 db_url: str | None = None, sanitiser=None):
        self.seed = seed
        self.sanitiser = sanitiser
        self.tick_every = tick_every
        db_url = db_url or f"sqlite+aiosqlite:///{tmp_path}/fuzz.db"
        self.harness = Harness(db_url, now, make_config(db_url, EXTRA_CONFIG, base_dir=tmp_path))
        self.harness.recorder = CountingRecorder()
        self.harness.sender = self.harness.app.outbox_sender(self.harness.recorder)
        self.registry = self.harness.app.registry
        self.typed_markers: set[str] = set()  # English words and placeholders people typed (shown again later)
        # project codes from the seed too, so that a replay gives the same codes
        self.harness.app.services.accompaniments.rng = random.Random(seed)
        self.errors = _Errors()
        self._level = logging.NOTSET
        self.columns = StrictColumns(self.harness.app.db.engine)
        self.seen = Seen()
        self._delivered = 0
        self.generator: Generator | None = None
        self.known_seen: set[int] = set()

    async def start(self) -> "Fuzzer":
        await self.harness.start()
        bot_log = logging.getLogger("ess_bot")
        self._level = bot_log.level
        if bot_log.getEffectiveLevel() > logging.ERROR:
            bot_log.setLevel(logging.ERROR)  # the ERROR records must reach the handler whatever the log level
        bot_log.addHandler(self.errors)
        self.columns.install()
        values = await self.seed_state()
        self.seen.sent = self.harness.recorder.count
        self.harness.recorder.sent.clear()
        self.generator = Generator(self.seed, self.registry, values, self.seen, self.tick_every)
        return self

    async def close(self) -> None:
        logging.getLogger("ess_bot").removeHandler(self.errors)
        logging.getLogger("ess_bot").setLevel(self._level)
        self.columns.remove()
        await self.harness.close()

    async def seed_state(self) -> dict[str, list[str]]:
        """A project with a follow-up and a referral, a tool, an event, a meeting poll with a vote: the
        numbers and codes that sub-commands reference reach deep code paths."""
        h = self.harness
        codes: list[str] = []
        setup = [
            ('!projet nouveau "Café culturel Pixel" dep=25 forme=association collectif', "@karim:test", "!bge:test"),
            ('!projet nouveau "Recyclerie du Haut-Doubs" dep=25 nature=reprise forme=scic', "@marc:test",
             "!urscop:test"),
            ('!outil ajouter "Trame de business plan ESS" https://exemple.org/trame-bp.docx #businessplan #scop '
             'type=trame phase=ante-création', "@karim:test", "!bge:test"),
            ('!outil ajouter "Grille ESUS" https://exemple.org/esus.pdf #esus type=grille', "@marc:test",
             "!urscop:test"),
            ('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon"',
             "@karim:test", "!bge:test"),
            ('!evenement ajouter "Café ESS" jeudi 9h lieu="Le Pixel, Besançon" #cafe', "@marc:test", "!urscop:test"),
            ('!reunion proposer "Rencontre du réseau" 10/12 14h, 14/12 14h, 17/12 9h30 limite=05/12',
             "@claire:test", "!coord:test"),
            ('!reunion proposer "Comité" entre 4/01 et 15/01 n=3 durée=2h lieu=Dijon', "@claire:test",
             "!coord:test"),
            ("!reunion dispo 1=oui 2=sibesoin 3=non", "@karim:test", "!coord:test"),
        ]
        for body, sender, room in setup:
            outs = await h.say(body, sender=sender, room=room)
            for out in outs:
                codes += re.findall(r"P-[2-9A-HJKMNP-Z]{4}", out.body or "")
        for code in codes[:1]:
            await h.say(f"!suivi {code} accueil 1h hier", sender="@karim:test", room="!bge:test")
            await h.say(f"!projet orienter {code} urscop \"passage en SCOP\"", sender="@karim:test", room="!bge:test")
        codes = sorted(set(codes))
        assert codes, "the fuzzer's setup created no project"
        return {"codes": codes, "ids": ["1", "2", "3", "4", "5", "10"]}

    async def deliver(self, line: Line) -> list[Outgoing]:
        """Hand one line to the bot as the transport would; what the bot sent in answer."""
        h = self.harness
        if line.event == "tick":
            h.clock.advance(timedelta(hours=line.hours))
            self.seen.year = h.clock.today().year
            await h.app.scheduler.run_due()
            return await h.flush()
        self._delivered += 1
        event_id = f"$fz{self._delivered}"
        self.seen.incoming.append(event_id)
        common = dict(event_id=event_id, room_id=line.room, sender=line.sender, timestamp=h.clock.now(),
                      is_direct=line.kind == "direct")
        if line.event == "message":
            return await h.event(kind="message", body=line.body, reply_to=line.reply_to, **common)
        if line.event == "file":
            msgtype = str(line.content.get("msgtype", "m.file"))
            kind = "file" if msgtype in FILE_MSGTYPES else "message"
            if kind == "file":
                self.seen.files.append(event_id)
            return await h.event(kind=kind, body=line.body, msgtype=msgtype, content=line.content, **common)
        return await h.event(kind=line.event, relates_to=line.relates_to, key=line.key, answers=line.answers,
                             **common)

    def is_command(self, line: Line) -> bool:
        return line.event in ("message", "file") and parse_command(line.body, "!") is not None \
            and (line.event == "message" or line.content.get("msgtype") not in FILE_MSGTYPES)

    async def run_line(self, line: Line) -> tuple[list[Outgoing], list[Failure]]:
        before, columns_before = len(self.errors.records), len(self.columns.found)
        sanitiser_before = len(self.sanitiser.findings) if self.sanitiser is not None else 0
        failures: list[Failure] = []
        outs: list[Outgoing] = []
        try:
            outs = await self.deliver(line)
        except Exception as exc:  # noqa: BLE001 - an exception escaping the dispatcher is what we look for
            failures.append(Failure(line, f"exception escaped: {exc!r}"))
        self.seen.sent = self.harness.recorder.count
        self.harness.recorder.sent.clear()
        self.harness.recorder.txn_ids.clear()
        answers = [o for o in outs if o.room_id == line.room and o.kind != "reaction"]
        texts = [o.body for o in outs]
        is_command = self.is_command(line)
        if self.errors.records[before:]:
            record = self.errors.records[before]
            failures.append(Failure(line, f"internal error (ERROR log): {record.getMessage()[:200]}"
                                          + (f" — {record.exc_info[1]!r}" if record.exc_info else ""), texts))
        elif any(INTERNAL.search(t or "") for t in texts):
            failures.append(Failure(line, "internal error (reply)", texts))
        for finding in self.columns.found[columns_before:][:1]:
            failures.append(Failure(line, f"internal error on PostgreSQL: {finding}", texts))
        if self.sanitiser is not None:
            for finding in self.sanitiser.findings[sanitiser_before:][:1]:
                failures.append(Failure(line, f"unsafe message: {finding.splitlines()[0]}", texts))
        if is_command and not answers and not failures:
            failures.append(Failure(line, "no reply in the room", texts))
        if not is_command and line.event in ("message", "file") and answers:
            failures.append(Failure(line, "a reply to a line that is not a command", texts))
        self.learn(outs)
        self.typed_markers.update(w for w in ENGLISH if w in line.body)
        self.typed_markers.update(m.group(0) for m in PLACEHOLDER.finditer(line.body))
        typed = line.body + "\n" + "\n".join(sorted(self.typed_markers))
        for out in outs:
            for problem in french_problems(out, typed):
                failures.append(Failure(line, problem, [out.body]))
                break
        return outs, failures

    def learn(self, outs: list[Outgoing]) -> None:
        """Numbers (n°12) and project codes the bot just named: later lines use them."""
        if self.generator is None:
            return
        values = self.generator.values
        for out in outs:
            for key, pattern in (("ids", r"n°\s?(\d{1,6})\b"), ("codes", r"\b(P-[2-9A-HJKMNP-Z]{4})\b")):
                for found in re.findall(pattern, out.body or ""):
                    known = values.setdefault(key, [])
                    if found not in known:
                        known.append(found)
                        del known[:-30]

    def known(self, failure: Failure) -> int | None:
        family = _family_of(failure.line.body, self.registry)
        for i, (fam, problem, _why) in enumerate(KNOWN_FAILURES):
            if fam == family and problem in failure.problem:
                return i
        return None

    async def run(self, count: int, keep_slowest: int = 10, progress=None) -> Result:
        result = Result(self.seed)
        started = time.perf_counter()
        for _ in range(count):
            line = self.generator.line()
            t0 = time.perf_counter()
            outs, failures = await self.run_line(line)
            elapsed = time.perf_counter() - t0
            result.lines += 1
            result.commands += self.is_command(line)
            result.replies += len(outs)
            for failure in failures:
                k = self.known(failure)
                if k is None:
                    result.failures.append(failure)
                else:
                    self.known_seen.add(k)
                    result.known.append(failure)
            result.slowest.append((elapsed, line))
            if len(result.slowest) > 4 * keep_slowest:
                result.slowest = sorted(result.slowest, key=lambda x: -x[0])[:keep_slowest]
            if progress is not None and result.lines % 5000 == 0:
                result.seconds = time.perf_counter() - started
                progress(result)
        result.slowest = sorted(result.slowest, key=lambda x: -x[0])[:keep_slowest]
        result.seconds = time.perf_counter() - started
        return result


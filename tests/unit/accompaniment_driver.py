"""A ``tests.support.Harness`` for the !projet / !suivi tests: three partners with rooms, several
members per partner, and helpers to read the single answer to a message or redact a command."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path

from ess_bot.config import parse_config
from ess_bot.framework.messages import Outgoing
from tests.support import PARIS, Harness

__all__ = ["ALDESS", "ANNOUNCES", "BGE", "CODE", "CONFIG", "COORD", "PARIS", "URSCOP", "Bot"]

BGE, URSCOP, ALDESS, COORD, ANNOUNCES = "!bge:test", "!urscop:test", "!aldess:test", "!coord:test", "!annonces:test"

CONFIG = """
[bot]
command_prefix = "!"
timezone = "Europe/Paris"

[rooms]
coordination = "!coord:test"
announcements = ["!annonces:test"]

[[partners]]
slug = "bge-fc"
name = "BGE Franche-Comté"
lead = true
departments = ["25", "39", "70", "90"]
room = "!bge:test"

[[partners]]
slug = "urscop"
name = "URSCOP"
departments = ["21", "25", "39", "58", "70", "71", "89", "90"]
room = "!urscop:test"

[[partners]]
slug = "aldess"
name = "Aldess"
departments = ["58"]
room = "!aldess:test"

[[members]]
user_id = "@karim:test"
partner = "bge-fc"
name = "Karim"

[[members]]
user_id = "@paul:test"
partner = "bge-fc"
name = "Paul"

[[members]]
user_id = "@claire:test"
partner = "bge-fc"
role = "coordinator"
name = "Claire"

[[members]]
user_id = "@marc:test"
partner = "urscop"
name = "Marc"

[[members]]
user_id = "@sophie:test"
partner = "urscop"
role = "coordinator"
name = "Sophie"

[[members]]
user_id = "@ali:test"
partner = "aldess"
name = "Ali"

[[members]]
user_id = "@nadia:test"
partner = "aldess"
name = "Nadia (Aldess)"
"""

CODE = re.compile(r"P-[2-9A-HJKMNP-Z]{4}")


class Bot(Harness):
    """One bot instance on its own SQLite file, with the configuration above."""

    def __init__(self, tmp_path: Path, now: datetime, extra: str = "", config: str = CONFIG):
        """``extra``: more configuration (TOML) after ``config`` — another partner, say."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        raw = tomllib.loads(config + extra)
        raw["database"] = {"url": url}
        super().__init__(url, now, config=parse_config(raw, source="test", base_dir=tmp_path))
        self.last_event_id = ""

    @property
    def sent(self) -> list[Outgoing]:
        return self.recorder.sent

    async def say(self, body: str, sender: str = "@karim:test", room: str = BGE, **kw) -> list[Outgoing]:
        kw.setdefault("event_id", f"$cmd{self._n + 1}")
        kw.setdefault("is_direct", room.startswith("!direct"))
        self.last_event_id = kw["event_id"]
        return await super().say(body, sender, room, **kw)

    async def reply_to(self, body: str, sender: str = "@karim:test", room: str = BGE) -> str:
        """The single answer (a notice in the same room) to one message, as plain text."""
        outs = await self.say(body, sender, room)
        answers = [o for o in outs if o.room_id == room and o.kind == "notice"]
        assert len(answers) == 1, [o.body for o in outs]
        return answers[0].body

    async def new_project(self, body: str, sender: str = "@karim:test", room: str = BGE) -> str:
        text = await self.reply_to(body, sender, room)
        assert text.startswith("✅ Projet"), text
        return CODE.search(text).group(0)

    async def redact(self, event_id: str, sender: str = "@karim:test", room: str = BGE) -> list[Outgoing]:
        return await self.event(room_id=room, sender=sender, kind="redaction", relates_to=event_id)

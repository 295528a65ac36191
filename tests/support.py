"""Helpers shared by the tests: a small network configuration, an App on a given database, and a
recorder that stands for a transport when draining the outbox."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ess_bot.app import App
from ess_bot.clock import Clock
from ess_bot.config import Config, parse_config
from ess_bot.framework.messages import Incoming, Outgoing
from ess_bot.storage.db import Database

PARIS = ZoneInfo("Europe/Paris")

TEST_CONFIG = """
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

[[members]]
user_id = "@claire:test"
partner = "bge-fc"
role = "coordinator"
name = "Claire"

[[members]]
user_id = "@karim:test"
partner = "bge-fc"
role = "advisor"
name = "Karim"

[[members]]
user_id = "@marc:test"
partner = "urscop"
role = "advisor"
name = "Marc"

[[members]]
user_id = "@admin:test"
partner = "bge-fc"
role = "admin"
"""


def make_config(db_url: str, extra: str = "", base_dir: Path | None = None,
                **matrix) -> Config:
    raw = tomllib.loads(TEST_CONFIG + extra)
    raw["database"] = {"url": db_url}
    if matrix:
        raw["matrix"] = matrix
    return parse_config(raw, source="test-config", base_dir=base_dir)


@dataclass
class Recorder:
    """Stands for a transport: records what the outbox sends."""

    sent: list[Outgoing] = field(default_factory=list)
    txn_ids: list[str] = field(default_factory=list)

    async def __call__(self, out: Outgoing, txn_id: str) -> str:
        self.sent.append(out)
        self.txn_ids.append(txn_id)
        return f"$sent-{len(self.sent)}"


class Harness:
    """An App with a frozen clock and a recorder, driven event by event."""

    def __init__(self, db_url: str, now: datetime, config: Config | None = None):
        self.config = config or make_config(db_url)
        self.clock = Clock(PARIS, frozen_at=now)
        self.app = App(self.config, self.clock, Database(db_url), transport="console")
        self.recorder = Recorder()
        self.sender = self.app.outbox_sender(self.recorder)
        self._n = 0

    async def start(self) -> "Harness":
        await self.app.prepare()
        await self.app.scheduler.start()
        return self

    async def say(self, body: str, sender: str = "@karim:test", room: str = "!bge:test", **kw) -> list[Outgoing]:
        """Send one message; return what the bot sent in answer (and anything else that was due)."""
        self._n += 1
        event = Incoming(event_id=kw.pop("event_id", f"$e{self._n}"), room_id=room, sender=sender, body=body,
                         timestamp=self.clock.now(), **kw)
        await self.app.handle(event)
        return await self.flush()

    async def event(self, **fields) -> list[Outgoing]:
        self._n += 1
        fields.setdefault("event_id", f"$e{self._n}")
        fields.setdefault("timestamp", self.clock.now())
        await self.app.handle(Incoming(**fields))
        return await self.flush()

    async def flush(self) -> list[Outgoing]:
        before = len(self.recorder.sent)
        await self.sender.drain()
        return self.recorder.sent[before:]

    async def close(self) -> None:
        await self.app.close()



@asynccontextmanager
async def started_harness(tmp_path: Path, now: datetime, extra_config: str = "") -> AsyncIterator[Harness]:
    """A started Harness on a new SQLite file in ``tmp_path``, closed afterwards (the usual ``h``
    fixture). ``extra_config``: TOML added to the test configuration."""
    db_url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    harness = await Harness(db_url, now, make_config(db_url, extra_config)).start()
    try:
        yield harness
    finally:
        await harness.close()


DEFAULT_PARTNERS = [
    {"slug": "bge-fc", "name": "BGE Franche-Comté", "lead": True, "departments": ["25", "39", "70", "90"]},
    {"slug": "urscop", "name": "URSCOP", "departments": ["21", "25", "39", "58", "70", "71", "89", "90"]},
]


def network_config(db_url: str, *, members: list[tuple[str, str, str]], rooms: dict | None = None,
                   partner_rooms: dict[str, str] | None = None, matrix: dict | None = None,
                   base_dir: Path | None = None, extra: dict | None = None) -> Config:
    """A configuration for real users: ``members`` as (user_id, partner slug, role)."""
    partners = [dict(p) for p in DEFAULT_PARTNERS]
    for p in partners:
        if partner_rooms and p["slug"] in partner_rooms:
            p["room"] = partner_rooms[p["slug"]]
    raw = {
        "bot": {"command_prefix": "!", "timezone": "Europe/Paris"},
        "database": {"url": db_url},
        "rooms": rooms or {},
        "partners": partners,
        "members": [{"user_id": u, "partner": p, "role": r} for u, p, r in members],
    }
    if matrix:
        raw["matrix"] = matrix
    raw.update(extra or {})
    return parse_config(raw, source="test-config", base_dir=base_dir)

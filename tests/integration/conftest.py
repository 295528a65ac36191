"""Fixtures to run the real bot (MatrixBot) against the session's Synapse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ess_bot.transports.matrix import MatrixBot
from tests.harness import SynapseServer, fresh_user
from tests.support import network_config


@dataclass
class BotRunner:
    """One bot account with its own database and nio store; start/stop/restart at will."""

    synapse: SynapseServer
    workdir: Path
    user_id: str
    password: str
    members: list[tuple[str, str, str]] = field(default_factory=list)
    rooms: dict = field(default_factory=dict)
    partner_rooms: dict = field(default_factory=dict)
    matrix_overrides: dict = field(default_factory=dict)
    extra_config: dict = field(default_factory=dict)   # other sections: {"http": {...}, "events": {...}}
    db_url: str | None = None                          # default: an SQLite file in workdir
    bot: MatrixBot | None = None

    def config(self):
        matrix = {"homeserver": self.synapse.base_url, "user_id": self.user_id, "password": self.password,
                  "store_path": str(self.workdir / "store"), "sync_timeout_ms": 1000, **self.matrix_overrides}
        return network_config(self.db_url or f"sqlite+aiosqlite:///{self.workdir}/bot.db", members=self.members,
                              rooms=self.rooms,
                              partner_rooms=self.partner_rooms, matrix=matrix, base_dir=self.workdir,
                              extra=self.extra_config)

    async def start(self, **bot_kwargs) -> MatrixBot:
        assert self.bot is None, "already running"
        bot_kwargs.setdefault("request_timeout", 10.0)
        bot_kwargs.setdefault("backoff_max", 2.0)
        self.bot = MatrixBot(self.config(), **bot_kwargs)
        await self.bot.start()
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
            self.bot = None


@pytest.fixture
async def bot_runner(synapse, tmp_path):
    localpart = fresh_user("essbot")
    password = "bot-password"
    user_id, _token, _device = await synapse.register_user_async(localpart, password=password)
    runner = BotRunner(synapse=synapse, workdir=tmp_path, user_id=user_id, password=password)
    yield runner
    await runner.stop()

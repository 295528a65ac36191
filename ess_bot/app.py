"""Wiring: one App holds the config, clock, database, registry, dispatcher and scheduler.

Transports (Matrix, console) feed it Incoming events and send what its outbox holds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ess_bot import __version__
from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.framework.context import Runtime
from ess_bot.framework.degraded import DatabaseWatch
from ess_bot.framework.dispatcher import Dispatcher
from ess_bot.framework.messages import Incoming
from ess_bot.framework.outbox import OutboxSender, SendFn
from ess_bot.health import Health
from ess_bot.scheduler import CORE_JOB_HANDLERS, Scheduler
from ess_bot.services import build_services
from ess_bot.storage.db import Database

log = logging.getLogger(__name__)


class App:
    def __init__(self, config: Config, clock: Clock, db: Database, transport: str,
                 journal_path: Path | None = None):
        """``journal_path``: where the degraded mode notes the events it answered without recording
        them (default: in the Matrix store, or beside the SQLite file; none for the terminal on
        PostgreSQL)."""
        import commands  # the command modules sit beside the core, loaded here to avoid import cycles

        self.config = config
        self.clock = clock
        self.db = db
        self.health = Health(clock.monotonic)  # what is degraded now (database, homeserver…): /healthz
        self.registry = commands.build_registry()
        self.services = build_services(config, clock)
        self.runtime = Runtime(version=__version__, started_monotonic=clock.monotonic(), transport=transport,
                               services=self.services)
        self.dispatcher = Dispatcher(config, clock, db, self.registry, self.runtime)
        handlers = {**CORE_JOB_HANDLERS, **commands.job_handlers()}
        self.scheduler = Scheduler(db, clock, config, handlers, self.dispatcher.outbox_ready, self.services)
        self.dispatcher.on_jobs_changed = self.scheduler.rearm
        if journal_path is None:
            sqlite = config.database_path()
            journal_path = (Path(config.matrix.store_path) if transport == "matrix"
                            else sqlite.parent if sqlite is not None else None)
            journal_path = journal_path / "degraded-journal.jsonl" if journal_path is not None else None
        self.watch = DatabaseWatch(db, clock, config, self.health, self.dispatcher.outbox_ready, journal_path)
        self.watch.on_recovered += [self.dispatcher.replay_waiting, self.scheduler.run_due]
        self.dispatcher.watch = self.watch
        self.scheduler.watch = self.watch

    @property
    def outbox_ready(self):
        return self.dispatcher.outbox_ready

    async def prepare(self) -> None:
        """Create the SQLite folder if needed and apply the migrations."""
        await self.db.prepare(self.config.database_path())
        await self.watch.start()

    async def handle(self, event: Incoming) -> bool:
        return await self.dispatcher.handle(event)

    def outbox_sender(self, send: SendFn, pace_seconds: float = 0.0, parallel_rooms: int = 1) -> OutboxSender:
        return OutboxSender(self.db, self.clock, send, self.dispatcher.outbox_ready, pace_seconds, parallel_rooms,
                            watch=self.watch, health=self.health)

    async def close(self) -> None:
        self.scheduler.shutdown()
        await self.db.dispose()

"""The bot when its database refuses writes (disk full, PostgreSQL restarting or down): degraded,
never silent.

- Every part that meets a database failure reports it here (:meth:`DatabaseWatch.failed`): one log
  line and one ``/healthz`` entry per outage, and the coordination room is told once.
- While the outage lasts, a command is answered without the outbox (the dispatcher's degraded path):
  a read-only command gets its answer, a command that needs a write gets a French reply saying that
  nothing was recorded and to retry later. Each such event is remembered (in memory, and in a small
  journal file when one is given), and recorded in ``processed_events`` as soon as writes work again,
  so that it is never applied later behind the person's back (for instance after a restart).
- Reactions, redactions and poll answers cannot be answered: they wait in memory and are handled, in
  order, when the database is back (and after a restart they come again from the homeserver, since
  the sync position could not be saved either).
- :meth:`watch` probes the database every second during an outage; on recovery the journal is
  recorded, the waiting events are handled, the outbox is scanned, the scheduler runs what is due,
  and the coordination room is told.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable

from sqlalchemy import select

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.formatting import md_escape, time_fr
from ess_bot.framework.messages import Incoming, Outgoing, render_markdown
from ess_bot.framework.outbox import OutboxSignal
from ess_bot.health import Health
from ess_bot.storage.db import Database, explain_database_error
from ess_bot.storage.models import OutboxMessage, ProcessedEvent

log = logging.getLogger(__name__)

PROBE_EVERY = 1.0        # seconds between two probes during an outage
REPLAY_MAX = 10_000      # events kept in memory for later (reactions, redactions, poll answers)
DEGRADED_LABEL = "degraded:"  # processed_events.command of an event answered during an outage


@dataclass(frozen=True)
class Answered:
    """An event answered while the database was down, to be recorded as processed once it is back."""

    event_id: str
    room_id: str
    sender: str
    command: str
    at: datetime


class DatabaseWatch:
    def __init__(self, db: Database, clock: Clock, config: Config, health: Health, signal: OutboxSignal,
                 journal_path: Path | None = None):
        self.db = db
        self.clock = clock
        self.config = config
        self.health = health
        self.signal = signal
        self.journal_path = journal_path
        self.answered: dict[str, Answered] = {}
        self.replay: deque[Incoming] = deque()
        self.down_since: datetime | None = None
        self.reads_ok = True
        self.on_recovered: list[Callable[[], Awaitable[None]]] = []
        self._wake = asyncio.Event()
        self._recover_lock = asyncio.Lock()

    @property
    def degraded(self) -> bool:
        return self.down_since is not None

    # -- an outage starts ------------------------------------------------------------------------
    def failed(self, exc: BaseException, where: str = "", reads_ok: bool | None = None) -> None:
        """A database operation failed because the database is unavailable (see ``is_unavailable``)."""
        reason = explain_database_error(exc)
        detail = f"{self.db.describe()} : {reason}" + (f" ({where})" if where else "")
        if reads_ok is not None:
            self.reads_ok = reads_ok
        if not self.health.failed("database", detail, log):
            return
        log.debug("database failure detail", exc_info=exc)
        self.down_since = self.clock.now()
        self._wake.set()
        self._tell_coordination_down(reason)

    def _tell_coordination_down(self, reason: str) -> None:
        room = self.config.rooms.coordination
        if not room:
            return
        since = time_fr(self.down_since.astimezone(self.clock.tz))
        text = (f"⚠️ **Base de données indisponible** depuis {since} ({md_escape(reason)}). Je continue de "
                "répondre aux consultations quand je le peux, mais je ne peux rien enregistrer pour l'instant "
                "(suivis, projets, votes, outils…) : chaque demande concernée reçoit une réponse qui invite à la "
                "renvoyer plus tard. Je vous préviens ici dès que tout fonctionne de nouveau.")
        body, html = render_markdown(text)
        self.signal.offer_volatile([Outgoing(room_id=room, kind="text", body=body, html=html)],
                                   key=f"db-down-{self.down_since.isoformat()}")

    # -- during the outage -----------------------------------------------------------------------
    def remember(self, event: Incoming, label: str | None) -> None:
        """``event`` was answered without being recorded: keep it so that it is recorded later."""
        entry = Answered(event.event_id, event.room_id, event.sender, (DEGRADED_LABEL + (label or ""))[:64],
                         self.clock.now())
        self.answered[event.event_id] = entry
        if self.journal_path is None:
            return
        line = json.dumps({"event_id": entry.event_id, "room_id": entry.room_id, "sender": entry.sender,
                           "command": entry.command, "at": entry.at.isoformat()}) + "\n"
        try:  # best effort: the disk may be the very thing that is full
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("could not write the degraded-mode journal %s: %s", self.journal_path, exc)

    def keep_for_later(self, event: Incoming) -> bool:
        """A reaction, redaction or poll answer that needs the database: handled when it is back."""
        if len(self.replay) >= REPLAY_MAX:
            log.error("too many events waiting for the database; %s dropped (it comes again after a restart)",
                      event.event_id)
            return False
        if all(e.event_id != event.event_id for e in self.replay):
            self.replay.append(event)
        return True

    # -- recovery --------------------------------------------------------------------------------
    def _journal_entries(self) -> list[Answered]:
        if self.journal_path is None or not self.journal_path.exists():
            return []
        entries = []
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            log.warning("could not read the degraded-mode journal %s: %s", self.journal_path, exc)
            return []
        for line in lines:
            try:
                d = json.loads(line)
                entries.append(Answered(d["event_id"], d["room_id"], d["sender"], d["command"],
                                        datetime.fromisoformat(d["at"])))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash or a full disk
        return entries

    async def record_answered(self) -> int:
        """Record the events answered during an outage (memory and journal) as processed; raises if the
        database still refuses. Returns how many were new."""
        entries = {e.event_id: e for e in self._journal_entries()}
        entries.update(self.answered)
        if not entries:
            return 0
        async with self.db.sessions.begin() as session:
            known = set((await session.scalars(select(ProcessedEvent.event_id).where(
                ProcessedEvent.event_id.in_(list(entries))))).all())
            session.add_all(ProcessedEvent(event_id=e.event_id, room_id=e.room_id, sender=e.sender,
                                           command=e.command, processed_at=e.at)
                            for e in entries.values() if e.event_id not in known)
        for event_id in entries:
            self.answered.pop(event_id, None)
        if self.journal_path is not None:
            try:
                self.journal_path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove the degraded-mode journal %s: %s", self.journal_path, exc)
        if len(entries) - len(known):
            log.info("recorded %d events answered while the database was unavailable", len(entries) - len(known))
        return len(entries) - len(known)

    async def recover(self) -> bool:
        """Writes work again (a probe said so): record what was answered, tell the coordination, run
        the recovery callbacks (waiting events, outbox scan, scheduler). False if a write still fails."""
        async with self._recover_lock:
            if not self.degraded:
                return True
            try:
                await self.record_answered()
                await self._tell_coordination_up()
            except Exception as exc:  # still failing: stay degraded
                log.debug("recovery attempt failed: %s", exc)
                return False
            self.health.recovered("database", log)
            self.down_since = None
            self.reads_ok = True
        self.signal.set()  # rows committed before the outage, or by a commit whose answer was lost
        for callback in list(self.on_recovered):
            try:
                await callback()
            except Exception:
                log.exception("after the database came back: %s failed", getattr(callback, "__name__", callback))
        return True

    async def _tell_coordination_up(self) -> None:
        room = self.config.rooms.coordination
        if not room or self.down_since is None:
            return
        now = self.clock.now()
        start, end = self.down_since.astimezone(self.clock.tz), now.astimezone(self.clock.tz)
        text = (f"✅ **Base de données de nouveau disponible** (panne de {time_fr(start)} à {time_fr(end)}). "
                "Les commandes sont de nouveau enregistrées. Les demandes refusées pendant la panne n'ont rien "
                "enregistré : elles sont à renvoyer ; les réactions et votes reçus pendant la panne sont pris en "
                "compte maintenant.")
        body, html = render_markdown(text)
        payload = Outgoing(room_id=room, kind="text", body=body, html=html).to_payload()
        async with self.db.sessions.begin() as session:
            session.add(OutboxMessage(room_id=room, payload=payload, data=None, tag=None,
                                      source_event_id=f"db-up-{now.isoformat()}", created_at=now, attempts=0))

    async def watch(self) -> None:
        """Forever: idle while the database works; during an outage, probe it every PROBE_EVERY
        seconds and recover as soon as a write goes through."""
        while True:
            if not self.degraded:
                self._wake.clear()
                await self._wake.wait()
                continue
            reads, writes = await self.db.probe()
            self.reads_ok = reads
            if writes and await self.recover():
                continue
            await asyncio.sleep(PROBE_EVERY)

    async def start(self) -> None:
        """At start (the database works, or the start would have failed): record what a previous run
        answered during an outage and could not record before it stopped."""
        try:
            await self.record_answered()
        except Exception as exc:
            log.warning("the degraded-mode journal could not be recorded yet: %s", exc)

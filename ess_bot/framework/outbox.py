"""Sending what the outbox holds, in order, each message once.

A row's id gives a stable transaction id (``essbot-<id>``): if the bot dies after the homeserver
accepted a message but before the row was marked sent, the resend carries the same transaction id
and the homeserver returns the original event instead of posting a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from sqlalchemy import select

from ess_bot.clock import Clock
from ess_bot.framework.messages import Outgoing
from ess_bot.storage.db import Database
from ess_bot.storage.models import OutboxMessage

log = logging.getLogger(__name__)

TAG_REF = "tag:"


class SendError(Exception):
    """A send that failed. ``transient`` errors are retried later, in order; others are given up at once."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


SendFn = Callable[[Outgoing, str], Awaitable[str]]


class OutboxSender:
    def __init__(self, db: Database, clock: Clock, send: SendFn, ready: asyncio.Event, pace_seconds: float = 0.0):
        self.db = db
        self.pace_seconds = pace_seconds
        self._last_paced: float | None = None
        self.clock = clock
        self.send = send
        self.ready = ready
        self.sent_count = 0
        self._lock = asyncio.Lock()  # one drain at a time, or a row could be sent twice

    async def drain(self) -> int:
        """Send every pending message, oldest first. Raises SendError on a transient failure."""
        async with self._lock:
            return await self._drain()

    async def _drain(self) -> int:
        sent = 0
        while True:
            async with self.db.sessions() as session:
                rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                                              .order_by(OutboxMessage.id).limit(50))).all()
            if not rows:
                return sent
            for row in rows:
                out = Outgoing.from_payload(row.payload, row.data, row.tag)
                await self._resolve_refs(out)
                if out.paced:
                    await self._pace()
                try:
                    event_id = await self.send(out, f"essbot-{row.id}")
                except SendError as exc:
                    await self._failed(row.id, str(exc), exc.transient)
                    if exc.transient:
                        raise
                    continue
                await self._sent(row.id, event_id)
                sent += 1
                self.sent_count += 1

    async def run(self, backoff_max: float = 60.0) -> None:
        """Forever: wait for work, drain, back off on failures."""
        delay = 1.0
        while True:
            await self.ready.wait()
            self.ready.clear()
            try:
                await self.drain()
                delay = 1.0
            except SendError as exc:
                log.warning("sending paused (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff_max)
                self.ready.set()

    async def _pace(self) -> None:
        """Space broadcasts out (real time: this is about the homeserver's rate limits)."""
        loop = asyncio.get_running_loop()
        if self._last_paced is not None and self.pace_seconds > 0:
            wait = self._last_paced + self.pace_seconds - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_paced = loop.time()

    async def _resolve_refs(self, out: Outgoing) -> None:
        """``tag:<tag>`` references → the event id of the (earlier, already sent) tagged message."""
        for attr in ("reacts_to", "reply_to", "thread_root"):
            value = getattr(out, attr)
            if isinstance(value, str) and value.startswith(TAG_REF):
                setattr(out, attr, await self.event_id_for_tag(value[len(TAG_REF):]))
        relation = out.extra.get("m.relates_to")
        if isinstance(relation, dict):
            target = relation.get("event_id")
            if isinstance(target, str) and target.startswith(TAG_REF):
                out.extra["m.relates_to"] = {**relation, "event_id": await self.event_id_for_tag(target[len(TAG_REF):])}

    async def event_id_for_tag(self, tag: str) -> str | None:
        async with self.db.sessions() as session:
            return await session.scalar(select(OutboxMessage.event_id).where(OutboxMessage.tag == tag)
                                        .where(OutboxMessage.event_id.is_not(None)).order_by(OutboxMessage.id.desc())
                                        .limit(1))

    async def _sent(self, row_id: int, event_id: str) -> None:
        async with self.db.sessions.begin() as session:
            row = await session.get(OutboxMessage, row_id)
            row.sent_at = self.clock.now()
            row.event_id = event_id
            row.attempts += 1
            row.data = None  # file bytes were only needed until the homeserver had them

    async def _failed(self, row_id: int, error: str, transient: bool) -> None:
        async with self.db.sessions.begin() as session:
            row = await session.get(OutboxMessage, row_id)
            row.attempts += 1
            row.last_error = error[:2000]
            if not transient:
                log.error("giving up on outbox message %s to %s: %s", row_id, row.room_id, error)
                row.sent_at = self.clock.now()

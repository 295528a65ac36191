"""Sending what the outbox holds, in order, each message once.

A row's id gives a stable transaction id (``essbot-<id>``): if the bot dies after the homeserver
accepted a message but before the row was marked sent, the resend carries the same transaction id
and the homeserver returns the original event instead of posting a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sqlalchemy import delete, select, update

from ess_bot.clock import Clock
from ess_bot.framework.messages import Outgoing, SendError
from ess_bot.storage.db import Database, is_unavailable
from ess_bot.storage.models import OutboxMessage

log = logging.getLogger(__name__)

TAG_REF = "tag:"
SCAN_BATCH = 50      # rows read from the table at a time
RECENT_IDS = 10_000  # sent row ids remembered against double sends
SENT_KEPT = timedelta(days=30)  # how long the copy of a sent message stays (see purge_sent)
RETRY_MAX = 3.0  # seconds: the longest wait between two tries after a failure (homeserver or database)


SendFn = Callable[[Outgoing, str], Awaitable[str]]


async def purge_sent(db: Database, before: datetime) -> int:
    """Delete the messages sent before ``before`` that nothing refers to any more (no tag; a tagged
    message, such as a meeting's poll, is looked up by its tag later): the homeserver holds them, and
    the bot keeps no copy of the conversation longer than it needs (RGPD). Unsent messages stay.
    Returns how many were deleted."""
    async with db.sessions.begin() as session:
        result = await session.execute(delete(OutboxMessage).where(
            OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at < before, OutboxMessage.tag.is_(None)))
    return result.rowcount or 0


class OutboxSignal:
    """Tells the sender there is something to send. Event-like (``set``/``wait``/``clear``/``is_set``).

    ``set()`` means "look in the outbox table" (a scheduled job wrote to it, the bot started…).
    ``offer(rows)`` hands over rows the dispatcher has just committed, so that a reply goes out without
    being read back from the database first: the round trip of every command is shorter by a query.
    Anything that writes the outbox table without ``offer`` must call ``set``.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.fresh: deque[OutboxMessage] = deque()
        self.volatile: deque[tuple[Outgoing, str]] = deque()  # (message, transaction id): not in the table
        self.scan_due = True  # rows may be waiting from an earlier run

    def set(self) -> None:
        self.scan_due = True
        self._event.set()

    def offer(self, rows: list[OutboxMessage]) -> None:
        if rows:
            self.fresh.extend(rows)
            self._event.set()

    def offer_volatile(self, messages: list[Outgoing], key: str) -> None:
        """Messages to send that the outbox table could not take (the database refuses writes): kept in
        memory only. ``key`` (the event answered) makes their transaction ids stable, so that a message
        sent twice after a lost answer from the homeserver is posted once."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
        for i, out in enumerate(messages):
            self.volatile.append((out, f"essbot-v{digest}-{i}"))
        if messages:
            self._event.set()

    def take_fresh(self) -> list[OutboxMessage]:
        """The rows offered since the last call, in commit order (and forgets them)."""
        rows = list(self.fresh)
        self.fresh.clear()
        return rows

    def take_scan(self) -> bool:
        """Whether a table scan is due (and marks it done)."""
        due, self.scan_due = self.scan_due, False
        return due

    def scan_more(self) -> None:
        """A scan read a whole batch: the next read scans the table again (rows may follow those)."""
        self.scan_due = True

    def rescan(self) -> None:
        """After a failed send: forget the offered rows, the next drain reads the table in order."""
        self.fresh.clear()
        self.scan_due = True

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def pending(self) -> bool:
        """Something offered and not taken yet (committed rows, or messages kept in memory)."""
        return bool(self.fresh or self.volatile)

    async def wait(self) -> None:
        await self._event.wait()


class OutboxSender:
    def __init__(self, db: Database, clock: Clock, send: SendFn, ready: OutboxSignal, pace_seconds: float = 0.0,
                 parallel_rooms: int = 1, watch=None, health=None):
        """``parallel_rooms``: how many rooms may be sent to at the same time (each room's messages stay
        in order). 1 keeps the outbox's order across rooms too (the terminal, the tests)."""
        self.db = db
        self.pace_seconds = pace_seconds
        self._last_paced: float | None = None
        self.clock = clock
        self.send = send
        self.ready = ready
        self.sent_count = 0
        self._lock = asyncio.Lock()  # one drain at a time, or a row could be sent twice
        self._pace_lock = asyncio.Lock()
        self._settle_waiters: set[asyncio.Future] = set()
        self.parallel_rooms = max(1, parallel_rooms)
        self._parallel = asyncio.Semaphore(self.parallel_rooms)
        # ids sent lately: a row offered by the dispatcher can also be seen by a table scan
        self._recent: deque[int] = deque(maxlen=RECENT_IDS)
        self._recent_set: set[int] = set()
        # sent, but the database refused to mark them so: marked as soon as it works again (until then
        # they are in _recent_set, so not sent again; after a restart the same transaction id is reused)
        self._unrecorded: dict[int, tuple[str, datetime]] = {}
        self.watch = watch    # a DatabaseWatch (ess_bot.framework.degraded), told of database failures
        self.health = health  # ess_bot.health.Health: the homeserver's state

    async def drain(self) -> int:
        """Send every pending message, oldest first. Raises SendError on a transient failure. A
        database that is unavailable is reported (the watch) and stops the drain without raising:
        what could go without it (messages kept in memory, rows already offered) has gone."""
        try:
            async with self._lock:
                try:
                    return await self._drain()
                except Exception as exc:
                    if not is_unavailable(exc) or self.watch is None:
                        raise
                    self._database_failed(exc, "outbox")
                    self.ready.scan_more()
                    return 0
        finally:
            for waiter in self._settle_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _busy(self) -> bool:
        return self.ready.is_set() or self.ready.pending() or self._lock.locked()

    async def settled(self, timeout: float) -> bool:
        """Wait until what is waiting to be sent has gone (True), or ``timeout`` seconds (False). A failed
        send that waits for its retry does not count: nothing is held up by a homeserver outage."""
        # asyncio.wait (not wait_for): a cancelled caller is always cancelled, nothing is swallowed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._busy():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()  # resolved at the end of the next drain
            self._settle_waiters.add(waiter)
            try:
                await asyncio.wait([waiter], timeout=remaining)
            finally:
                self._settle_waiters.discard(waiter)
        return True

    async def _next_rows(self) -> list[OutboxMessage]:
        """The rows to send next: the table's unsent rows when a scan is due (start, jobs, failures),
        else the rows the dispatcher just committed, in commit order."""
        if self.ready.take_scan():
            try:
                async with self.db.sessions() as session:
                    rows = list((await session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                                                       .order_by(OutboxMessage.id).limit(SCAN_BATCH))).all())
            except BaseException:
                self.ready.scan_more()  # still due: the next drain tries again
                raise
            if len(rows) == SCAN_BATCH:
                self.ready.scan_more()
            if rows:
                return rows
        return self.ready.take_fresh()

    def _remember(self, row_id: int) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(row_id)
        self._recent_set.add(row_id)

    async def _send_volatile(self) -> int:
        """The messages kept in memory (no database needed), in order; a transient failure stops here."""
        sent = 0
        while self.ready.volatile:
            out, txn_id = self.ready.volatile[0]
            try:
                await self.send(out, txn_id)
                sent += 1
            except SendError as exc:
                if exc.transient:
                    raise
                log.error("giving up on a message to %s (kept in memory): %s", out.room_id, exc)
            self.ready.volatile.popleft()
        return sent

    async def _record_unrecorded(self) -> None:
        """Mark as sent the rows whose marking the database refused earlier (raises if it still does)."""
        for row_id, (event_id, at) in list(self._unrecorded.items()):
            async with self.db.sessions.begin() as session:
                await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                    sent_at=at, event_id=event_id, attempts=OutboxMessage.attempts + 1, data=None))
            del self._unrecorded[row_id]

    async def _drain(self) -> int:
        sent = await self._send_volatile()
        if self._unrecorded:
            try:
                await self._record_unrecorded()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                self._database_failed(exc, "outbox")  # the rows offered in memory can still go
        while True:
            batch = await self._next_rows()
            if not batch:
                return sent
            rows = [row for row in batch if row.id not in self._recent_set]  # offered and also scanned
            by_room: dict[str, list[OutboxMessage]] = {}
            if self.parallel_rooms == 1:
                by_room[""] = rows  # one sequence, in the outbox's order
            else:
                for row in rows:
                    by_room.setdefault(row.room_id, []).append(row)
            # rooms are independent: their messages go out side by side, each room's in order
            results = await asyncio.gather(*(self._send_room(room_rows) for room_rows in by_room.values()),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            sent += sum(r for r in results if isinstance(r, int))
            if failures:
                self.ready.rescan()  # what is left goes again from the table, in order
                raise failures[0]

    async def _send_room(self, rows: list[OutboxMessage]) -> int:
        """One room's messages, in order; stops at a transient failure (SendError raised)."""
        sent = 0
        async with self._parallel:
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
                    self._remember(row.id)
                    continue
                try:
                    await self._sent(row.id, event_id)
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    # sent, but not marked: remembered here, marked when the database is back
                    self._unrecorded[row.id] = (event_id, self.clock.now())
                    self._database_failed(exc, "outbox")
                self._remember(row.id)
                sent += 1
                self.sent_count += 1
        return sent

    def _database_failed(self, exc: BaseException, where: str) -> None:
        if self.watch is not None:
            self.watch.failed(exc, where)
        else:
            log.warning("%s: database unavailable (%s)", where, exc)

    async def run(self, backoff_max: float = RETRY_MAX) -> None:
        """Forever: wait for work, drain, back off on failures — of the homeserver (SendError), of the
        database, or anything unexpected: this task never ends but by cancellation. Each outage is
        logged once (``Health``), and tries are never more than ``backoff_max`` seconds apart."""
        delay = 0.5
        unexpected: set[str] = set()
        while True:
            await self.ready.wait()
            self.ready.clear()
            try:
                await self.drain()
                delay = 0.5
                unexpected.clear()
                if self.health is not None:
                    self.health.recovered("homeserver", log)
                continue
            except asyncio.CancelledError:
                raise
            except SendError as exc:
                if self.health is not None:
                    self.health.failed("homeserver", f"envoi impossible : {exc}", log)
                else:
                    log.warning("sending paused (%s); retrying in %.1f s", exc, delay)
            except Exception as exc:
                if is_unavailable(exc):
                    self._database_failed(exc, "outbox")
                elif type(exc).__name__ not in unexpected:  # a bug: its traceback once, then retries
                    unexpected.add(type(exc).__name__)
                    log.exception("outbox sender: unexpected error; retrying every %.0f s at most", backoff_max)
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff_max)
            self.ready.set()

    async def _pace(self) -> None:
        """Space broadcasts out (real time: this is about the homeserver's rate limits), across rooms."""
        async with self._pace_lock:
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
        async with self.db.sessions.begin() as session:  # one UPDATE: the sender's pace sets the burst rate
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                sent_at=self.clock.now(), event_id=event_id, attempts=OutboxMessage.attempts + 1,
                data=None))  # file bytes were only needed until the homeserver had them

    async def _failed(self, row_id: int, error: str, transient: bool) -> None:
        async with self.db.sessions.begin() as session:
            row = await session.get(OutboxMessage, row_id)
            row.attempts += 1
            row.last_error = error[:2000]
            if not transient:
                log.error("giving up on outbox message %s to %s: %s", row_id, row.room_id, error)
                row.sent_at = self.clock.now()

"""Scheduled work kept in the database, woken up by APScheduler.

``scheduled_jobs`` is the single source of truth. APScheduler only holds one wake-up at the next due
time (plus a periodic safety tick); at start, and whenever jobs change or a frozen clock moves, the
due jobs are run. A job whose time passed while the bot was down runs at start with ``late=True``,
so its handler can say so (or skip it when it no longer makes sense) — never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.framework.context import Queue
from ess_bot.framework.messages import Outgoing
from ess_bot.framework.outbox import SENT_KEPT, OutboxSignal, purge_sent
from ess_bot.storage.db import Database, is_unavailable
from ess_bot.storage.models import OutboxMessage, ScheduledJob

log = logging.getLogger(__name__)
LATE_AFTER = timedelta(minutes=5)
PURGE_EVERY = timedelta(days=1)          # housekeeping of the outbox (purge_sent)…
PURGE_FIRST_AFTER = timedelta(minutes=10)  # …first run a while after the start, away from its rush
RETRY_BASE = timedelta(minutes=5)
MAX_RETRIES = 6


@dataclass
class JobContext(Queue):
    job: ScheduledJob
    late: bool
    session: AsyncSession
    config: Config
    clock: Clock
    services: Any = None
    outgoing: list[Outgoing] = field(default_factory=list)
    status: str = "done"      # a handler may set "skipped" (with a note) when the job no longer applies
    note: str | None = None


JobHandler = Callable[[JobContext], Awaitable[None]]


def schedule(session: AsyncSession, kind: str, run_at: datetime, payload: dict | None = None,
             key: str | None = None, now: datetime | None = None) -> ScheduledJob:
    """Add a job in the caller's transaction (committed with the effect that asked for it)."""
    job = ScheduledJob(kind=kind, run_at=run_at, payload=payload or {}, key=key,
                       created_at=now or run_at, status="pending")
    session.add(job)
    return job


async def cancel(session: AsyncSession, key_prefix: str) -> int:
    """Cancel pending jobs whose key starts with ``key_prefix`` (e.g. ``meeting:12:``)."""
    jobs = (await session.scalars(select(ScheduledJob).where(ScheduledJob.status == "pending")
                                  .where(ScheduledJob.key.startswith(key_prefix)))).all()
    for job in jobs:
        job.status = "cancelled"
    return len(jobs)


def _aps_scheduler_class() -> type:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # loaded when the scheduler starts

    return AsyncIOScheduler


class Scheduler:
    def __init__(self, db: Database, clock: Clock, config: Config, handlers: dict[str, JobHandler],
                 outbox_ready: OutboxSignal, services: Any = None, tick_seconds: int = 60):
        self.db = db
        self.clock = clock
        self.config = config
        self.handlers = handlers
        self.outbox_ready = outbox_ready
        self.services = services
        self.tick_seconds = tick_seconds
        self.aps: Any = None  # an apscheduler AsyncIOScheduler once started
        self._lock = asyncio.Lock()
        self._started = False
        self.watch = None  # a DatabaseWatch (ess_bot.framework.degraded): told of database failures
        clock.on_change(self._clock_moved)

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Start after the first sync: run what is due (late ones included), then arm the next wake-up."""
        if self._started:
            return
        self._started = True
        if not self.clock.frozen:
            # APScheduler reads every installed package's entry points when it is imported (≈ 0.1 s of
            # CPU): loaded in a thread, so that the event loop keeps answering meanwhile
            aps_class = await asyncio.to_thread(_aps_scheduler_class)
            self.aps = aps_class(timezone=self.clock.tz)
            self.aps.add_job(self.run_due, "interval", seconds=self.tick_seconds, id="tick",
                             coalesce=True, max_instances=1)
            self.aps.add_job(self.purge, "interval", seconds=PURGE_EVERY.total_seconds(), id="purge",
                             next_run_time=self.clock.now() + PURGE_FIRST_AFTER, coalesce=True, max_instances=1)
            self.aps.start()
        await self.run_due()

    async def purge(self) -> int:
        """Housekeeping, daily: sent messages older than SENT_KEPT leave the outbox (see purge_sent)."""
        try:
            removed = await purge_sent(self.db, self.clock.now() - SENT_KEPT)
        except Exception:
            log.exception("outbox purge failed; will try again at the next run")
            return 0
        if removed:
            log.info("removed %d sent messages older than %d days from the outbox", removed, SENT_KEPT.days)
        return removed

    def shutdown(self) -> None:
        if self.aps is not None and self.aps.running:
            self.aps.shutdown(wait=False)
        self.aps = None
        self._started = False

    def _clock_moved(self) -> None:
        if self._started:
            asyncio.get_running_loop().create_task(self.run_due())

    async def rearm(self) -> None:
        """Called after jobs changed: run what is due and point the wake-up at the next one."""
        if self._started:
            await self.run_due()

    async def run_due(self) -> list[int]:
        """Run every pending job whose time has come; returns their ids. Never raises: with the database
        unavailable, the due jobs stay pending and run when it is back (the watch calls this again)."""
        try:
            return await self._run_due()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                if self.watch is not None:
                    self.watch.failed(exc, "scheduler")
                else:
                    log.warning("scheduler: database unavailable (%s); due jobs wait", exc)
            else:
                log.exception("scheduler: running the due jobs failed; the next tick tries again")
            return []

    async def _run_due(self) -> list[int]:
        ran: list[int] = []
        async with self._lock:
            now = self.clock.now()
            async with self.db.sessions() as session:
                due = (await session.scalars(select(ScheduledJob.id).where(ScheduledJob.status == "pending")
                                             .where(ScheduledJob.run_at <= now).order_by(ScheduledJob.run_at,
                                                                                         ScheduledJob.id))).all()
            for job_id in due:
                if await self._run_one(job_id, now):
                    ran.append(job_id)
        if ran:
            self.outbox_ready.set()
        await self._arm_next()
        return ran

    async def _arm_next(self) -> None:
        if self.aps is None:
            return
        async with self.db.sessions() as session:
            next_at = await session.scalar(select(ScheduledJob.run_at).where(ScheduledJob.status == "pending")
                                           .order_by(ScheduledJob.run_at).limit(1))
        if next_at is not None:
            from apscheduler.triggers.date import DateTrigger

            self.aps.add_job(self.run_due, DateTrigger(run_date=max(next_at, self.clock.now())), id="next",
                             replace_existing=True, misfire_grace_time=None, coalesce=True)

    async def _run_one(self, job_id: int, now: datetime) -> bool:
        try:
            async with self.db.sessions.begin() as session:
                job = await session.get(ScheduledJob, job_id)
                if job is None or job.status != "pending":
                    return False
                late = now - job.run_at > LATE_AFTER
                ctx = JobContext(job=job, late=late, session=session, config=self.config, clock=self.clock,
                                 services=self.services)
                handler = self.handlers.get(job.kind)
                if handler is None:
                    job.status, job.note = "failed", f"no handler for kind {job.kind!r}"
                else:
                    await handler(ctx)
                    job.status = ctx.status if ctx.status != "done" else ("late" if late else "done")
                    job.note = ctx.note
                job.done_at = now
                for out in ctx.outgoing:
                    session.add(OutboxMessage(room_id=out.room_id, payload=out.to_payload(), data=out.data,
                                              tag=out.tag, source_event_id=f"job:{job.id}", created_at=now,
                                              attempts=0))
            return True
        except Exception as exc:
            if is_unavailable(exc):
                raise  # not the job's fault: it stays pending, and runs when the database is back
            log.exception("scheduled job %s failed", job_id)
            async with self.db.sessions.begin() as session:
                job = await session.get(ScheduledJob, job_id)
                if job is not None:
                    job.status, job.done_at, job.note = "failed", now, "exception, see logs"
                    self._retry_later(session, job, now)
            return False

    @staticmethod
    def _retry_later(session: AsyncSession, job: ScheduledJob, now: datetime) -> None:
        """A failed job is tried again later (5 min, 10 min, 20 min… up to MAX_RETRIES), as a new job
        whose key extends the old one, so that cancelling by key prefix still reaches it."""
        attempt = int(job.payload.get("_retry", 0)) + 1
        if attempt > MAX_RETRIES:
            log.error("scheduled job %s (%s) failed %d times; giving up", job.id, job.kind, attempt)
            return
        base_key = job.key.rsplit(":retry", 1)[0] if job.key else f"job-{job.id}"
        session.add(ScheduledJob(kind=job.kind, run_at=now + RETRY_BASE * 2 ** (attempt - 1),
                                 payload={**job.payload, "_retry": attempt}, key=f"{base_key}:retry{attempt}",
                                 created_at=now, status="pending"))


async def send_message_job(ctx: JobContext) -> None:
    """Kind ``message``: post a prepared announcement (payload: room_id, markdown, mentions)."""
    p = ctx.job.payload
    text = p["markdown"]
    if ctx.late:
        when = ctx.job.run_at.astimezone(ctx.clock.tz).strftime("%d/%m/%Y à %H:%M")
        text += f"\n\n_(Message prévu le {when}, envoyé en retard : le bot était indisponible.)_"
    ctx.announce(p["room_id"], text, mentions=p.get("mentions", []))


CORE_JOB_HANDLERS: dict[str, JobHandler] = {"message": send_message_job}

"""One start order for every transport (Matrix, terminal, in-memory):

1. the database is prepared and the application loaded in a worker thread (Python spends most of a
   start importing modules) while the transport connects; the bot-state keys the transport asked for
   are handed to it as soon as the database is ready;
2. the degraded-mode journal of a previous run is recorded, the HTTP feed starts (when configured);
3. the first batch is handled; only then do the outbox sender and the scheduler start (nothing
   scheduled goes out before it) — the scheduler once the next batch is handled, or after the
   transport's grace;
4. every long-running task (batches, outbox, scheduler start, database watch) is supervised: an
   unexpected error restarts it, only a ``FatalError`` ends the bot.

Exactly once: events are recorded with their effect by the dispatcher; a batch's position is
remembered by the transport only after the batch was handled (``Batch.done``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.errors import FatalError
from ess_bot.framework.transport import Batch, StartContext, Transport

if TYPE_CHECKING:
    from ess_bot.app import App
    from ess_bot.framework.outbox import OutboxSender
    from ess_bot.storage.db import Database

log = logging.getLogger(__name__)

RETRY_MAX = 3.0        # seconds: the longest wait between two tries of a task that failed
SETTLE_MAX_EVENTS = 3  # batches with more handled events than this do not wait for their replies
SETTLE_SECONDS = 5.0   # at most this long between a batch and the next, waiting for its replies to go
SCHEDULER_GRACE = 2.0  # default: the scheduler starts after the batch that follows the first, or this long after


class Runner:
    """The bot on one transport. ``start()`` returns once the first batch is handled; ``run()`` then
    waits until the transport ends or a fatal error; ``stop()`` ends everything."""

    def __init__(self, config: Config, transport: Transport, clock: Clock | None = None,
                 db: "Database | None" = None, backoff_max: float = RETRY_MAX):
        self.config = config
        self.transport = transport
        self.clock = clock or Clock(config.bot.tz)
        self.backoff_max = backoff_max
        self._db = db
        self._app: "App | None" = None
        self._sender: "OutboxSender | None" = None
        self.first_sync = asyncio.Event()   # the first batch has been handled
        self.caught_up = asyncio.Event()    # a batch after the first one has been handled
        self.handled = 0
        self.http_runner = None
        self._tasks: list[asyncio.Task] = []
        self._started_at = 0.0

    # -- the application (built on first use, or in a thread by start) ---------------------------
    @property
    def app(self) -> "App":
        if self._app is None:
            self._build_app()
        return self._app

    @property
    def db(self) -> "Database":
        return self.app.db

    @property
    def sender(self) -> "OutboxSender":
        if self._sender is None:
            self._sender = self.app.outbox_sender(self.transport.send, pace_seconds=self.transport.pace_seconds,
                                                  parallel_rooms=self.transport.parallel_rooms)
        return self._sender

    def _build_app(self) -> None:
        from ess_bot.app import App
        from ess_bot.storage.db import Database

        app = App(self.config, self.clock, self._db or Database(self.config.database.url),
                  transport=self.transport.name)
        if self._app is None:
            self._app = app

    def _load_in_thread(self, state_read: Callable[[dict[str, str | None]], None]) -> None:
        """In a worker thread (with an event loop of its own, whose connections are closed before
        returning): the database first — schema brought up to date, the transport's start keys read
        and handed over at once — then the application."""
        from ess_bot.storage.db import Database

        db = self._db or Database(self.config.database.url)

        async def database_first() -> None:
            async def prepare() -> None:
                await db.prepare(self.config.database_path())
                state_read({key: await db.get_state(key) for key in self.transport.start_keys})

            try:
                await _prepare_database(self.config, prepare)
            finally:
                await db.engine.dispose()

        asyncio.run(database_first())
        self._db = db
        self._build_app()

    def _fresh_database(self) -> bool:
        """True when the SQLite database does not exist yet: a first start, known without loading it."""
        path = self.config.database_path()
        return path is not None and not path.exists() and self._app is None and self._db is None

    async def _load_while_connecting(self) -> None:
        loop = asyncio.get_running_loop()
        state: asyncio.Future[dict[str, str | None]] = loop.create_future()
        start = StartContext(self.config, self.clock, self._fresh_database(), state)

        def state_read(values: dict[str, str | None]) -> None:
            loop.call_soon_threadsafe(lambda: state.done() or state.set_result(values))

        if self._app is not None:  # built already (tests): the database and the login side by side
            async def prepare() -> None:
                await self.app.prepare()
                state_read({key: await self.app.db.get_state(key) for key in self.transport.start_keys})

            await asyncio.gather(_prepare_database(self.config, prepare), self.transport.connect(start))
            return
        loading = asyncio.ensure_future(asyncio.to_thread(self._load_in_thread, state_read))
        try:
            await self.transport.connect(start)
        finally:
            await loading  # the schema is ready too (prepared in the thread), or this raises

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        started = self.clock.monotonic()
        await self._load_while_connecting()
        self.app.runtime.user_id = self.transport.user_id
        await self.app.watch.start()
        self._started_at = started
        log.info("database ready and connected after %.2f s", self.clock.monotonic() - started)
        if self.config.http.enabled:  # the calendar feed (aiohttp.web is only loaded then)
            from ess_bot.http import start_http

            self.http_runner = await start_http(self.config, self.app)
        batches = self._spawn("sync", self._consume, restart=False)
        self._spawn("database-watch", self.app.watch.watch)
        waiter = asyncio.create_task(self.first_sync.wait())
        done, _ = await asyncio.wait([waiter, batches], return_when=asyncio.FIRST_COMPLETED)
        if batches in done:
            waiter.cancel()
            batches.result()  # re-raise the failure (or the end of a transport with no batch)

    async def run(self) -> None:
        """Start, then run until the transport ends or a task ends for good (a FatalError)."""
        await self.start()
        await self.wait()

    async def wait(self) -> None:
        while True:
            done, _ = await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled():
                    continue
                exc = task.exception()
                if exc is not None:
                    raise exc
                if task.get_name() == "ess-bot-sync":  # the transport has ended (end of terminal input)
                    await self.sender.drain()
                    return
            if all(task.done() for task in self._tasks):
                return

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.http_runner is not None:
            from ess_bot.http import stop_http

            await stop_http(self.http_runner)
        self.http_runner = None
        await self.transport.close()
        if self._app is not None:
            await self._app.close()

    def _spawn(self, name: str, factory: Callable[[], Any], restart: bool = True) -> asyncio.Task:
        """A long-running task that never dies of an error: an unexpected exception is logged with its
        traceback and the task starts again (at most backoff_max seconds later). Only a FatalError
        ends it, and the bot with it."""
        async def supervised() -> None:
            delay = 0.5
            while True:
                try:
                    await factory()
                    return
                except asyncio.CancelledError:
                    raise
                except FatalError:
                    raise
                except Exception:
                    if not restart:
                        raise
                    log.exception("task %s stopped on an unexpected error; restarting it in %.1f s", name, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_max)

        task = asyncio.create_task(supervised(), name=f"ess-bot-{name}")
        self._tasks.append(task)
        return task

    # -- batches ---------------------------------------------------------------------------------
    async def _consume(self) -> None:
        async for batch in self.transport.batches(self.app):
            await self.handle_batch(batch)

    async def handle_batch(self, batch: Batch) -> int:
        """Handle a batch's events in order, let the transport remember it, start what waits for the
        first batch, and — after a quiet batch — wait for the replies before the next one (the next
        batch would come back with them anyway). Returns how many events did something."""
        handled = 0
        try:
            for event in batch.events:
                if await self.app.handle(event):
                    handled += 1
        except Exception:
            # a bug outside the dispatcher's own safety net: the same events come again
            log.exception("handling a batch failed; it will be given again")
            self.handled += handled
            await batch.failed()
            await asyncio.sleep(0.5)
            return handled
        self.handled += handled
        await batch.done()
        quiet = batch.settle if batch.settle is not None else handled <= SETTLE_MAX_EVENTS
        if self.first_sync.is_set() and quiet:
            await self.sender.settled(SETTLE_SECONDS)
        if not self.first_sync.is_set():
            await self._after_first_batch()
        else:
            self.caught_up.set()
        return handled

    async def _after_first_batch(self) -> None:
        self.first_sync.set()
        self._spawn("outbox", lambda: self.sender.run(self.backoff_max))
        self.app.outbox_ready.set()
        grace = getattr(self.transport, "scheduler_grace", SCHEDULER_GRACE)
        if grace <= 0:  # the terminal: what is due is said before the first prompt
            await self.app.scheduler.start()
            await self.sender.settled(SETTLE_SECONDS)
        else:
            self._spawn("scheduler-start", lambda: self._start_scheduler(grace))
        log.info("first batch handled %.2f s after the start", self.clock.monotonic() - self._started_at)

    async def _start_scheduler(self, grace: float) -> None:
        """The scheduler (late jobs, next wake-up) starts once the batch after the first one is
        handled — on a first start, the commands sent while the bot was starting — or ``grace``
        seconds after the first batch if nothing comes: people waiting for an answer come first."""
        # asyncio.wait (not wait_for), as in OutboxSender.settled: a cancellation is never swallowed
        waiter = asyncio.ensure_future(self.caught_up.wait())
        try:
            await asyncio.wait([waiter], timeout=grace)
        finally:
            waiter.cancel()
        await self.app.scheduler.start()


async def _prepare_database(config: Config, prepare: Callable[[], Any]) -> Any:
    """``prepare()`` (schema, first reads); a database that cannot be reached → FatalError."""
    from ess_bot.storage.db import is_unavailable, unreachable_message

    try:
        return await prepare()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise FatalError(unreachable_message(config.database.url, exc)) from exc

"""The Matrix transport (matrix-nio): login, sync loop, event conversion, sending.

Exactly-once rules, whatever happens to the bot or the homeserver:
- our own sync token is stored in our database *after* the events of a sync were handled (nio's own
  token is saved before callbacks run, so it is not used);
- each handled event is recorded with its effect (see the dispatcher), so a redelivery is skipped;
- a ``limited`` timeline is paged back with ``room_messages`` until known ground;
- replies go through the outbox and carry a stable transaction id;
- nothing is sent before the first sync; on the very first start, history is skipped.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import ClientConnectionError
from nio import (AsyncClient, AsyncClientConfig, JoinError, LoginResponse, MessageDirection,
                 RoomMessagesError, RoomSendResponse, SyncError, SyncResponse, UploadResponse, WhoamiResponse)
from nio.events import Event, InviteMemberEvent, MegolmEvent

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.errors import FatalError
from ess_bot.files import private_dir, private_files
from ess_bot.transports.store_key import mark_store, prepare_store, resolve_store_key
from ess_bot.framework.messages import Incoming, Outgoing, SendError

if TYPE_CHECKING:  # loaded when the bot is built, in a thread while the first requests are on their way
    from ess_bot.app import App
    from ess_bot.framework.outbox import OutboxSender
    from ess_bot.storage.db import Database

log = logging.getLogger(__name__)

SYNC_TOKEN = "matrix.sync_token"
UNDECRYPTED = "matrix.undecrypted:"  # + event id: a message whose keys have not arrived yet
MAX_DECRYPT_TRIES = 500               # syncs (about four hours of 30 s long polls) before giving up
PARALLEL_ROOMS = 8     # rooms the bot sends to at the same time (each room's messages stay in order)
SETTLE_MAX_EVENTS = 3  # rounds with more commands than this do not wait for their replies
SETTLE_SECONDS = 5.0  # at most this long between a sync round and the next, waiting for its replies to go
SCHEDULER_GRACE = 2.0  # the scheduler starts after the round that follows the first sync, or this long after it
FIRST_START_FILTER = {"room": {"timeline": {"limit": 1}}}
WATERMARK = "matrix.room_ts:"      # + room id: origin_server_ts of the newest event seen in the room
POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
FILE_MSGTYPES = ("m.file", "m.image", "m.video", "m.audio")
POLL_END_TYPES = ("org.matrix.msc3381.poll.end", "m.poll.end")
PAGE_BACK_MARGIN_MS = 5 * 60 * 1000  # overlap when filling a gap; re-seen events are skipped as processed
PERMANENT_ERRORS = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_UNKNOWN"}


RETRY_MAX = 3.0       # seconds: the longest wait between two tries after a failure (homeserver, database)
START_TRIES = 3       # connection attempts to the homeserver at start before giving up with a French line
NETWORK_ERRORS = (ConnectionError, ClientConnectionError, TimeoutError, asyncio.TimeoutError, OSError)


class FatalMatrixError(FatalError):
    """A problem that retrying will not solve (bad credentials); the message is French."""


class RepeatedWarnings(logging.Filter):
    """matrix-nio logs one WARNING per rate-limited request ("Got 429 response…") and per retried
    connection failure ("Timed out, sleeping for 0s", even when the connection was refused). The
    failures are the bot's to report — once per outage, see ``Health`` — so nio's retry lines are
    dropped unless the log is at DEBUG; of its 429 lines at most one per ``window`` seconds gets
    through, saying how many were folded into it. One instance per bot, on nio's client logger."""

    LOGGER = "nio.client.async_client"

    def __init__(self, monotonic: Callable[[], float], window: float = 60.0):
        super().__init__()
        self.monotonic = monotonic
        self.window = window
        self._last = float("-inf")
        self._folded = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Timed out, sleeping"):
            return logging.getLogger(self.LOGGER).isEnabledFor(logging.DEBUG)
        if not message.startswith("Got 429 response"):
            return True
        now = self.monotonic()
        if now - self._last < self.window:
            self._folded += 1
            return False
        self._last = now
        if self._folded:
            record.msg = f"{record.msg} (and {self._folded} more in the last {self.window:.0f} s)"
            self._folded = 0
        return True


@dataclass
class Credentials:
    user_id: str
    device_id: str
    access_token: str
    homeserver: str

    @classmethod
    def load(cls, path: Path) -> "Credentials | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in ("user_id", "device_id", "access_token", "homeserver")})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        private_dir(path.parent)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only from the first byte
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.__dict__, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)


def to_incoming(event: Event, room_id: str, is_direct: bool) -> Incoming | None:
    """A (decrypted) nio event → our transport-neutral Incoming, or None if the bot does not care."""
    source: dict[str, Any] = getattr(event, "source", None) or {}
    etype = source.get("type", "")
    content = source.get("content") or {}
    if not isinstance(content, dict):
        return None
    base = dict(event_id=source.get("event_id") or getattr(event, "event_id", ""), room_id=room_id,
                sender=source.get("sender") or getattr(event, "sender", ""),
                timestamp=datetime.fromtimestamp(source.get("origin_server_ts", 0) / 1000, timezone.utc),
                is_direct=is_direct, content=content)
    relates = content.get("m.relates_to") or {}
    if not isinstance(relates, dict):
        relates = {}
    if etype == "m.room.message":
        if relates.get("rel_type") == "m.replace":
            return None  # edits are not new commands
        body = content.get("body")
        if not isinstance(body, str):
            return None
        thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        reply = relates.get("m.in_reply_to") or {}
        msgtype = str(content.get("msgtype", "m.text"))
        return Incoming(kind="file" if msgtype in FILE_MSGTYPES else "message", body=body, msgtype=msgtype,
                        thread_root=thread_root, reply_to=reply.get("event_id") if isinstance(reply, dict) else None,
                        **base)
    if etype == "m.reaction":
        if relates.get("rel_type") != "m.annotation":
            return None
        return Incoming(kind="reaction", relates_to=relates.get("event_id"), key=relates.get("key"), **base)
    if etype == "m.room.redaction":
        redacts = source.get("redacts") or content.get("redacts")
        return Incoming(kind="redaction", relates_to=redacts, **base) if redacts else None
    if etype in POLL_RESPONSE_TYPES:
        body = content.get("org.matrix.msc3381.poll.response") or {}
        answers = body.get("answers") if isinstance(body, dict) else None
        if answers is None:
            answers = content.get("m.selections", [])
        if not isinstance(answers, list):
            answers = []
        return Incoming(kind="poll_response", relates_to=relates.get("event_id"),
                        answers=tuple(str(a) for a in answers), **base)
    if etype in POLL_END_TYPES:
        return Incoming(kind="poll_end", relates_to=relates.get("event_id"), **base)
    return None


def build_content(out: Outgoing) -> tuple[str, dict[str, Any]]:
    """The Matrix event type and content for an Outgoing (files are completed by the sender)."""
    relation: dict[str, Any] = {}
    if out.thread_root:
        relation = {"rel_type": "m.thread", "event_id": out.thread_root, "is_falling_back": True,
                    "m.in_reply_to": {"event_id": out.reply_to or out.thread_root}}
    elif out.reply_to:
        relation = {"m.in_reply_to": {"event_id": out.reply_to}}
    if out.kind == "reaction":
        return "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": out.reacts_to, "key": out.key}}
    if out.kind in ("poll", "poll_end", "event"):
        content = dict(out.extra)
        return out.event_type or "m.room.message", content
    mentions: dict[str, Any] = {"user_ids": list(out.mentions)} if out.mentions else {}
    if out.mention_room:
        mentions["room"] = True
    if out.kind in ("file", "image"):
        content = {"msgtype": "m.image" if out.kind == "image" else "m.file", "body": out.body or out.filename,
                   "filename": out.filename, "info": {"mimetype": out.mimetype, "size": len(out.data or b"")},
                   "m.mentions": mentions}
    else:
        content = {"msgtype": "m.text" if out.kind == "text" else "m.notice", "body": out.body,
                   "m.mentions": mentions}
        if out.html:
            content.update({"format": "org.matrix.custom.html", "formatted_body": out.html})
    if relation:
        content["m.relates_to"] = relation
    return "m.room.message", content


class MatrixBot:
    """The bot on a homeserver. ``start()`` returns once the first sync is done; ``stop()`` ends it."""

    def __init__(self, config: Config, clock: Clock | None = None, db: "Database | None" = None,
                 request_timeout: float = 60.0, backoff_max: float = RETRY_MAX):
        self.config = config
        self.clock = clock or Clock(config.bot.tz)
        self._db = db
        self._app: "App | None" = None
        self._sender: "OutboxSender | None" = None
        self.store_path = Path(config.matrix.store_path)
        self.backoff_max = backoff_max
        # nio retries a request that times out or cannot connect twice, quickly, then hands the failure
        # over: the bot's loops then log the outage once and retry at most backoff_max seconds apart
        private_dir(self.store_path)
        self._store_key, self._store_key_configured = resolve_store_key(self.store_path, config.matrix.store_key)
        client_config = AsyncClientConfig(max_limit_exceeded=None, max_timeouts=2, store_sync_tokens=False,
                                          encryption_enabled=config.matrix.encryption,
                                          request_timeout=request_timeout, pickle_key=self._store_key,
                                          max_timeout_retry_wait_time=min(backoff_max, 1.0))
        self.client = AsyncClient(config.matrix.homeserver, config.matrix.user_id, store_path=str(self.store_path),
                                  config=client_config)
        self.first_sync = asyncio.Event()
        self.caught_up = asyncio.Event()  # a sync round after the first one has been handled
        self.http_runner = None
        self._tasks: list[asyncio.Task] = []
        self._sync_filter: dict[str, Any] = {"room": {"timeline": {"limit": config.matrix.timeline_limit}}}
        self.handled = 0
        # read from the database once, then kept here; written with the sync token, once per round
        self._watermarks: dict[str, int] | None = None
        self._pending_watermarks: dict[str, int] = {}  # this round's, kept only if the round is saved
        self._undecrypted_pending: bool | None = None  # None: not looked yet
        self._undecrypted_unsaved: dict[str, str] = {}  # kept in memory while the database refuses writes
        self._unsaved_watermarks: dict[str, int] = {}    # of handled rounds, saved with the next position
        self._started_at = 0.0
        self._log_filter = RepeatedWarnings(self.clock.monotonic)

    # -- the application (built on first use) ---------------------------------------------------
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
            self._sender = self.app.outbox_sender(self._send, pace_seconds=self.config.matrix.broadcast_interval_ms / 1000,
                                                  parallel_rooms=PARALLEL_ROOMS)
        return self._sender

    def _build_app(self) -> None:
        """Load the application (database layer, services, commands: most of the start-up time) and build it."""
        from ess_bot.app import App
        from ess_bot.storage.db import Database

        app = App(self.config, self.clock, self._db or Database(self.config.database.url), transport="matrix")
        if self._app is None:
            self._app = app

    def _load_in_thread(self, token_read: Callable[[str | None], None]) -> None:
        """In a worker thread (with an event loop of its own, whose database connections are closed
        before returning): the database first — schema brought up to date, sync token read and handed
        over at once through ``token_read``, so that a restart's first sync is asked for while the rest
        loads — then the application (services, commands: most of the start-up time)."""
        from ess_bot.storage.db import Database

        db = self._db or Database(self.config.database.url)

        async def database_first() -> None:
            async def prepare() -> None:
                await db.prepare(self.config.database_path())
                token_read(await db.get_state(SYNC_TOKEN))

            try:
                await self._prepare_database(prepare)
            finally:
                await db.engine.dispose()

        asyncio.run(database_first())
        self._db = db
        self._build_app()

    def _first_start_without_database(self) -> bool:
        """True when the SQLite database does not exist yet: a first start, known without loading it."""
        path = self.config.database_path()
        return path is not None and not path.exists() and self._app is None and self._db is None

    async def _load_while_connecting(self) -> tuple[Any, str | None]:
        """The application loads in a thread while the login and the first sync wait for the homeserver
        (Python spends most of a start importing modules). A first start asks for its first sync (history
        skipped) at once; a restart as soon as the thread has read where the last run stopped. Returns
        that first sync and the position it was asked from (both None when there is none)."""
        first_start = self._first_start_without_database()
        loop = asyncio.get_running_loop()
        token = loop.create_future()

        def token_read(value: str | None) -> None:
            loop.call_soon_threadsafe(lambda: token.done() or token.set_result(value))

        loading = asyncio.ensure_future(asyncio.to_thread(self._load_in_thread, token_read))
        try:
            await self._login_at_start()
            if first_start:
                return await self.client.sync(timeout=0, sync_filter=FIRST_START_FILTER, full_state=True), None
            await asyncio.wait([token, loading], return_when=asyncio.FIRST_COMPLETED)
            since = token.result() if token.done() else None
            if since is None:  # no position saved: the sync loop starts as a first start does
                return None, None
            return await self.client.sync(timeout=0, since=since, sync_filter=self._sync_filter,
                                          full_state=True), since
        finally:
            await loading  # the schema is ready too (prepared in the thread), or this raises

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, load, do the first sync. A database or homeserver that cannot be reached, or refused
        credentials, raise :class:`FatalError` with one French sentence naming what and where."""
        logging.getLogger(RepeatedWarnings.LOGGER).addFilter(self._log_filter)
        started = self.clock.monotonic()
        prefetched = prefetched_since = None
        if self._app is None:
            prefetched, prefetched_since = await self._load_while_connecting()
        else:
            # the database and the homeserver login do not depend on each other: both at once
            await asyncio.gather(self._prepare_database(self.app.prepare), self._login_at_start())
        await self.app.watch.start()
        self._started_at = started
        log.info("database ready and logged in after %.2f s", self.clock.monotonic() - started)
        if self.config.http.enabled:  # the calendar feed (aiohttp.web is only loaded then)
            from ess_bot.http import start_http

            self.http_runner = await start_http(self.config, self.app)
        self._spawn("sync", lambda: self._sync_loop(prefetched, prefetched_since), restart=False)
        self._spawn("database-watch", self.app.watch.watch)
        waiter = asyncio.create_task(self.first_sync.wait())
        done, _ = await asyncio.wait([waiter, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if self._tasks[0] in done:
            waiter.cancel()
            self._tasks[0].result()  # re-raise the failure

    def _spawn(self, name: str, factory: Callable[[], Any], restart: bool = True) -> asyncio.Task:
        """A long-running task that never dies of an error: an unexpected exception is logged with its
        traceback and the task starts again (at most RETRY_MAX seconds later). Only a FatalError (such
        as credentials refused in the middle of the run) ends it, and the bot with it."""
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

    async def _prepare_database(self, prepare: Callable[[], Any]) -> Any:
        """``prepare()`` (schema, first reads); a database that cannot be reached → FatalError."""
        from ess_bot.storage.db import is_unavailable, unreachable_message

        try:
            return await prepare()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise FatalError(unreachable_message(self.config.database.url, exc)) from exc

    async def _login_at_start(self) -> None:
        """:meth:`login`, tried START_TRIES times; a homeserver still unreachable → FatalError."""
        for attempt in range(1, START_TRIES + 1):
            try:
                return await self.login()
            except NETWORK_ERRORS as exc:
                if attempt == START_TRIES:
                    raise FatalMatrixError(f"Serveur Matrix injoignable : {self.config.matrix.homeserver} "
                                           f"({_network_reason(exc)}). Vérifiez matrix.homeserver et le réseau, "
                                           "puis relancez.") from exc
                log.debug("homeserver %s unreachable at start (%s); trying again", self.config.matrix.homeserver,
                          exc)
                await asyncio.sleep(min(attempt, self.backoff_max))

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
        await self.client.close()
        if self._app is not None:
            await self._app.close()
        logging.getLogger(RepeatedWarnings.LOGGER).removeFilter(self._log_filter)

    async def run_forever(self) -> None:
        """Start, then run until cancelled. Each task survives errors (see :meth:`_spawn`); the first
        one to end for good (a FatalError) ends the bot, with its error."""
        await self.start()
        while True:
            done, _ = await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled():
                    continue
                exc = task.exception()
                if exc is not None:
                    raise exc
            if all(task.done() for task in self._tasks):
                return

    # -- login -----------------------------------------------------------------------------------
    @property
    def _credentials_path(self) -> Path:
        return self.store_path / "credentials.json"

    async def login(self) -> None:
        m = self.config.matrix
        creds = Credentials.load(self._credentials_path)
        if m.access_token:
            self.client.access_token = m.access_token
            who = await self.client.whoami()
            if not isinstance(who, WhoamiResponse):
                _raise_unless_refused(who)
                raise FatalMatrixError(f"Le jeton d'accès configuré (matrix.access_token) est refusé par "
                                       f"{m.homeserver} : {_refusal(who)}.")
            if who.user_id != m.user_id:
                raise FatalMatrixError(f"Le jeton d'accès appartient à {who.user_id}, pas à {m.user_id} (matrix.user_id).")
            self._prepare_store(who.device_id)
            self.client.restore_login(m.user_id, who.device_id, m.access_token)
            Credentials(m.user_id, who.device_id, m.access_token, m.homeserver).save(self._credentials_path)
        elif creds and creds.user_id == m.user_id and creds.homeserver == m.homeserver:
            self._prepare_store(creds.device_id)
            self.client.restore_login(creds.user_id, creds.device_id, creds.access_token)
            who = await self.client.whoami()
            if not isinstance(who, WhoamiResponse):
                _raise_unless_refused(who)
                log.warning("stored access token refused (%s); logging in again with the password", who)
                await self._password_login(device_id=creds.device_id)
        else:
            await self._password_login()
        private_files(self.store_path)  # nio's key database, created with the umask's mode
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        log.info("logged in as %s (device %s)", self.client.user_id, self.client.device_id)

    def _prepare_store(self, device_id: str) -> None:
        """Before nio opens a device's E2EE store: pickled with the configured key (re-pickled once from
        the previous one, see ess_bot.transports.store_key)."""
        if not self.config.matrix.encryption:
            return
        prepare_store(self.store_path, self.config.matrix.user_id, device_id, self._store_key,
                      self.config.matrix.previous_store_key)
        if not self._store_key_configured:
            log.warning("the E2EE store's key is kept beside it (%s/store.key): set ESS_BOT_STORE_KEY "
                        "(or matrix.store_key) to keep it out of the store's folder", self.store_path)

    async def _password_login(self, device_id: str | None = None) -> None:
        m = self.config.matrix
        if not m.password:
            raise FatalMatrixError("Aucun mot de passe ni jeton d'accès valide : renseignez matrix.password "
                                   "ou ESS_BOT_MATRIX_PASSWORD.")
        if device_id:
            self.client.device_id = device_id  # keep the same device, and so the E2EE keys
            self._prepare_store(device_id)
        resp = await self.client.login(password=m.password, device_name=m.device_name)
        if not device_id and isinstance(resp, LoginResponse):
            mark_store(self.store_path, resp.user_id, resp.device_id, self._store_key)  # nio made it with our key
        if not isinstance(resp, LoginResponse):
            _raise_unless_refused(resp)
            raise FatalMatrixError(f"Connexion refusée par {m.homeserver} pour {m.user_id} : {_refusal(resp)}. "
                                   "Vérifiez matrix.password (ou ESS_BOT_MATRIX_PASSWORD).")
        Credentials(resp.user_id, resp.device_id, resp.access_token, m.homeserver).save(self._credentials_path)

    # -- sync loop -------------------------------------------------------------------------------
    async def _sync_loop(self, prefetched: Any = None, prefetched_since: str | None = None) -> None:
        """``prefetched``: the first sync, asked for while the application was loading (since
        ``prefetched_since``; None: a first start's, history skipped). Used only if the saved position
        is still that one.

        Nothing here stops the loop but a cancellation or a FatalError: the homeserver unreachable (the
        same round is asked for again), the database refusing writes (commands are answered in degraded
        mode and the position is kept in memory until it can be saved), or a bug in a round (logged,
        the round is tried again: its handled events are recorded, so none is applied twice)."""
        from ess_bot.storage.db import is_unavailable

        token = await self.db.get_state(SYNC_TOKEN)
        await self._watermark("")  # the rooms' watermarks, read once while the database is there
        first_start = token is None
        if prefetched_since != token:
            prefetched = None
        delay = 0.5
        health = self.app.health
        while True:
            try:
                timeout = 0 if not self.first_sync.is_set() else self.config.matrix.sync_timeout_ms
                # the very first start skips history: one event per room is enough (and much faster)
                sync_filter = FIRST_START_FILTER if token is None else self._sync_filter
                if prefetched is not None:
                    resp, prefetched = prefetched, None
                else:
                    resp = await self.client.sync(timeout=timeout, since=token, sync_filter=sync_filter,
                                                  full_state=True if not self.first_sync.is_set() else None)
                if isinstance(resp, SyncError):
                    if resp.status_code == "M_UNKNOWN_TOKEN":
                        log.warning("access token no longer valid; logging in again")
                        await self._password_login(device_id=self.client.device_id)
                        continue
                    raise ConnectionError(f"sync error: {resp.status_code} {resp.message}")
                health.recovered("homeserver", log)
                self._pending_watermarks.clear()
                handled_before = self.handled
                await self._key_maintenance()
                await self._handle_sync(resp, skip_history=first_start and not self.first_sync.is_set())
                if self.client.olm:
                    await self._retry_undecrypted()
            except (asyncio.CancelledError, FatalError):
                raise
            except NETWORK_ERRORS as exc:
                health.failed("homeserver", f"{self.config.matrix.homeserver} : {exc}", log)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            except Exception as exc:
                # the position is not advanced: the same events come again, and the processed-event
                # records keep those already handled from being applied twice
                if is_unavailable(exc):
                    self.app.watch.failed(exc, "sync")
                else:
                    log.exception("sync round failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            token = resp.next_batch
            await self._save_position(token)
            delay = 0.5
            if self.first_sync.is_set() and self.handled - handled_before <= SETTLE_MAX_EVENTS:
                # A quiet round: its replies go out before the next sync is asked for (the homeserver
                # handles one request of ours at a time; the sync would come back with them anyway).
                # A busy round: the next batch is fetched while the replies go.
                await self.sender.settled(SETTLE_SECONDS)
            if not self.first_sync.is_set():
                await self._after_first_sync()
            else:
                self.caught_up.set()

    async def _after_first_sync(self) -> None:
        self.first_sync.set()
        self._spawn("outbox", lambda: self.sender.run(self.backoff_max))
        self._spawn("scheduler-start", self._start_scheduler)
        self.app.outbox_ready.set()
        log.info("first sync done %.2f s after the start; %d rooms joined",
                 self.clock.monotonic() - self._started_at, len(self.client.rooms))

    async def _start_scheduler(self) -> None:
        """The scheduler (late jobs, next wake-up) starts once the sync round after the first one is
        handled — on a first start, the commands sent while the bot was starting — or SCHEDULER_GRACE
        seconds after the first sync if nothing comes: people waiting for an answer come first."""
        # asyncio.wait (not wait_for), as in OutboxSender.settled: a cancellation is never swallowed
        waiter = asyncio.ensure_future(self.caught_up.wait())
        try:
            await asyncio.wait([waiter], timeout=SCHEDULER_GRACE)
        finally:
            waiter.cancel()
        await self.app.scheduler.start()

    async def _key_maintenance(self) -> None:
        if not self.client.olm:
            return
        tasks = [self.client.send_to_device_messages()]
        if self.client.should_upload_keys:
            tasks.append(self.client.keys_upload())
        if self.client.should_query_keys:
            tasks.append(self.client.keys_query())
        if self.client.should_claim_keys:
            tasks.append(self.client.keys_claim(self.client.get_users_for_key_claiming()))
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("key maintenance: %s", result)

    async def _handle_sync(self, resp: SyncResponse, skip_history: bool) -> None:
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info.invite_state)
        for room_id, info in resp.rooms.join.items():
            events = list(info.timeline.events)
            watermark = await self._watermark(room_id)
            if skip_history:
                await self._set_watermark(room_id, events)
                continue
            if info.timeline.limited and info.timeline.prev_batch:
                events = await self._page_back(room_id, info.timeline.prev_batch, watermark) + events
            room = self.client.rooms.get(room_id)
            is_direct = room is not None and room.member_count <= 2 and not self._configured(room_id)
            # No filtering by timestamp here: concurrent senders make origin_server_ts non-monotonic
            # in the timeline, so an event can arrive after a newer-stamped one. The sync token and
            # the processed-event records are what keep events from being lost or applied twice.
            for event in self._after_own_join(events):
                if isinstance(event, MegolmEvent):
                    await self._keep_undecrypted(room_id, event)
                    continue
                incoming = to_incoming(event, room_id, is_direct)
                if incoming is None or incoming.sender == self.client.user_id:
                    continue
                if await self.app.handle(incoming):
                    self.handled += 1
            await self._set_watermark(room_id, events)

    async def _save_position(self, token: str) -> None:
        """The sync token and the rooms' watermarks, in one transaction, after the round was handled. A
        database that refuses the write: the position stays in memory (the loop goes on from it) and is
        saved with a later round; a restart meanwhile sees the handled events again and skips them."""
        from ess_bot.storage.db import is_unavailable

        self._unsaved_watermarks.update(self._pending_watermarks)
        if self._watermarks is not None:
            self._watermarks.update(self._pending_watermarks)
        self._pending_watermarks.clear()
        values = {SYNC_TOKEN: token}
        values.update({WATERMARK + room_id: str(ts) for room_id, ts in self._unsaved_watermarks.items()})
        values.update(self._undecrypted_unsaved)
        try:
            await self.db.set_states(values)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.app.watch.failed(exc, "sync position")
            return
        self._unsaved_watermarks.clear()
        self._undecrypted_unsaved.clear()

    async def _keep_undecrypted(self, room_id: str, event: MegolmEvent) -> None:
        """Keys for this message have not arrived yet: keep it (saved with the sync position, in the
        same transaction), ask for the key, retry after each sync."""
        log.warning("could not decrypt %s in %s yet (session %s); will retry", event.event_id, room_id,
                    event.session_id)
        self._undecrypted_unsaved[UNDECRYPTED + event.event_id] = json.dumps(
            {"room_id": room_id, "source": event.source, "tries": 0})
        self._undecrypted_pending = True
        try:
            await self.client.request_room_key(event)
        except Exception as exc:  # a key request is best effort (it may already be pending)
            log.info("room key request for %s: %s", event.event_id, exc)

    async def _retry_undecrypted(self) -> None:
        from ess_bot.storage.db import is_unavailable

        if self._undecrypted_pending is False and not self._undecrypted_unsaved:
            return  # nothing kept: no database read on every round
        try:
            kept = await self.db.states(UNDECRYPTED)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            kept = {}  # the database is down: what this run kept in memory is still tried
        kept.update(self._undecrypted_unsaved)
        self._undecrypted_pending = bool(kept)
        for key, value in kept.items():
            data = json.loads(value)
            event = Event.parse_event(data["source"])
            try:
                decrypted = self.client.decrypt_event(event) if isinstance(event, MegolmEvent) else None
            except Exception:
                decrypted = None
            if decrypted is None or isinstance(decrypted, MegolmEvent):
                data["tries"] += 1
                if data["tries"] >= MAX_DECRYPT_TRIES:
                    log.error("giving up on undecryptable event %s in %s", key[len(UNDECRYPTED):], data["room_id"])
                    await self._forget_undecrypted(key)
                else:
                    self._undecrypted_unsaved[key] = json.dumps(data)  # saved with the position
                continue
            room = self.client.rooms.get(data["room_id"])
            is_direct = room is not None and room.member_count <= 2 and not self._configured(data["room_id"])
            incoming = to_incoming(decrypted, data["room_id"], is_direct)
            if incoming is not None and incoming.sender != self.client.user_id and await self.app.handle(incoming):
                self.handled += 1
            await self._forget_undecrypted(key)

    async def _forget_undecrypted(self, key: str) -> None:
        from ess_bot.storage.db import is_unavailable

        self._undecrypted_unsaved.pop(key, None)
        try:
            await self.db.delete_state(key)
        except Exception as exc:  # tried again on a later round: a handled event is recorded, never re-applied
            if not is_unavailable(exc):
                raise
            self.app.watch.failed(exc, "undecrypted events")

    def _configured(self, room_id: str) -> bool:
        rooms = self.config.rooms
        return room_id == rooms.coordination or room_id in rooms.announcements or \
            self.config.partner_by_room(room_id) is not None

    def _after_own_join(self, events: list[Event]) -> list[Event]:
        """Drop what precedes our own join in this batch: history from before the bot was there."""
        for i in range(len(events) - 1, -1, -1):
            src = getattr(events[i], "source", {}) or {}
            if src.get("type") == "m.room.member" and src.get("state_key") == self.client.user_id and \
                    (src.get("content") or {}).get("membership") == "join" and \
                    ((src.get("unsigned") or {}).get("prev_content") or {}).get("membership") != "join":
                return events[i + 1:]
        return events

    async def _page_back(self, room_id: str, start: str, watermark: int | None) -> list[Event]:
        """Fetch the events a limited sync skipped, back to the last one we saw (oldest first)."""
        collected: list[Event] = []
        token = start
        for _ in range(200):  # at most 200 pages of 100: a bound, not a limit met in practice
            resp = await self.client.room_messages(room_id, start=token, direction=MessageDirection.back, limit=100)
            if isinstance(resp, RoomMessagesError):
                # do not go on with a hole: the sync round fails, its token is not saved, it is retried
                raise ConnectionError(f"could not page back in {room_id}: {resp}")
            stop = False
            for event in resp.chunk:
                src = getattr(event, "source", {}) or {}
                if watermark is not None and src.get("origin_server_ts", 0) < watermark - PAGE_BACK_MARGIN_MS:
                    stop = True  # well before the newest event already seen: the gap is filled
                    break
                collected.append(event)
                if src.get("type") == "m.room.member" and src.get("state_key") == self.client.user_id \
                        and (src.get("content") or {}).get("membership") == "join":
                    stop = True
                    break
            if stop or not resp.chunk or not resp.end or resp.end == token:
                break
            token = resp.end
        log.info("paged back %d events in %s after a limited sync", len(collected), room_id)
        collected.reverse()
        return collected

    async def _watermark(self, room_id: str) -> int | None:
        if self._watermarks is None:
            self._watermarks = {key[len(WATERMARK):]: int(value)
                                for key, value in (await self.db.states(WATERMARK)).items() if value}
        return self._watermarks.get(room_id)

    async def _set_watermark(self, room_id: str, events: list[Event]) -> None:
        """Remember the newest timestamp seen in the room (saved with the sync token)."""
        stamps = [(getattr(e, "source", {}) or {}).get("origin_server_ts", 0) for e in events]
        if stamps:
            current = await self._watermark(room_id) or 0
            newest = max(stamps)
            if newest > current and newest > self._pending_watermarks.get(room_id, 0):
                self._pending_watermarks[room_id] = newest

    async def _on_invite(self, room_id: str, invite_state: list) -> None:
        inviter = None
        for event in invite_state:  # stripped state: nio's Invite*Event objects carry no ``source``
            if isinstance(event, InviteMemberEvent) and event.state_key == self.client.user_id and \
                    event.membership == "invite":
                inviter = event.sender
        if inviter is None:
            return  # not an invite for us (for instance the echo of an invite we sent)
        if not self.config.matrix.join_on_invite or self.config.member(inviter) is None:
            log.info("declining invite to %s from %s (not a member of the network)", room_id, inviter)
            await self.client.room_leave(room_id)
            return
        resp = await self.client.join(room_id)
        if isinstance(resp, JoinError):
            log.warning("could not join %s: %s", room_id, resp)
        else:
            log.info("joined %s on invite from %s", room_id, inviter)

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, out: Outgoing, txn_id: str) -> str:
        try:
            if out.kind == "redaction":
                resp = await self.client.room_redact(out.room_id, out.reacts_to, reason=out.body or None, tx_id=txn_id)
                return _event_id_or_raise(resp, getattr(resp, "event_id", None))
            event_type, content = build_content(out)
            if out.kind in ("file", "image") and out.data is None and "url" not in out.extra \
                    and "file" in out.extra and not self._encrypted(out.room_id):
                # the stored file is encrypted: re-sending it here would post its key in clear
                event_type, content = build_content(Outgoing(
                    room_id=out.room_id, kind="notice", reply_to=out.reply_to, thread_root=out.thread_root,
                    body=f"« {out.body} » vient d'un salon chiffré : je ne peux pas le renvoyer ici sans exposer "
                         "sa clé. Demandez-le-moi dans un salon chiffré ou en message direct chiffré."))
            elif out.kind in ("file", "image"):
                if out.data is None and ("url" in out.extra or "file" in out.extra):
                    # re-sending a file already in the media repository: no new upload
                    content.update({k: out.extra[k] for k in ("url", "file") if k in out.extra})
                    content["info"] = out.extra.get("info") or {"mimetype": out.mimetype}
                else:
                    await self._attach_file(out, content)
            resp = await self.client.room_send(out.room_id, event_type, content, tx_id=txn_id,
                                               ignore_unverified_devices=True)
            return _event_id_or_raise(resp, resp.event_id if isinstance(resp, RoomSendResponse) else None)
        except SendError:
            raise
        except (ClientConnectionError, TimeoutError, asyncio.TimeoutError, OSError) as exc:
            raise SendError(f"connection: {exc}", transient=True) from exc

    def _encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return bool(room and room.encrypted)

    async def _attach_file(self, out: Outgoing, content: dict[str, Any]) -> None:
        encrypt = self._encrypted(out.room_id)
        data = out.data or b""
        resp, keys = await self.client.upload(io.BytesIO(data), content_type=out.mimetype or "application/octet-stream",
                                              filename=out.filename, encrypt=encrypt, filesize=len(data))
        if not isinstance(resp, UploadResponse):
            _event_id_or_raise(resp, None)
        if encrypt and keys:
            content["file"] = {"url": resp.content_uri, **keys}
        else:
            content["url"] = resp.content_uri


REFUSALS = {"M_FORBIDDEN": "identifiant ou mot de passe incorrect", "M_UNKNOWN_TOKEN": "jeton inconnu ou expiré",
            "M_MISSING_TOKEN": "jeton absent", "M_USER_DEACTIVATED": "compte désactivé",
            "M_INVALID_USERNAME": "identifiant invalide", "M_USER_LOCKED": "compte verrouillé"}


def _refusal(resp: Any) -> str:
    code = getattr(resp, "status_code", None) or "?"
    return f"{REFUSALS[code]} ({code})" if code in REFUSALS else f"erreur {code}"


def _raise_unless_refused(resp: Any) -> None:
    """An error answer that is not a refusal of the credentials (a 502 from a proxy while the homeserver
    restarts, a rate limit…) is a passing failure: retried as a connection error, not fatal."""
    if getattr(resp, "status_code", None) not in REFUSALS:
        raise ConnectionError(f"homeserver answered {getattr(resp, 'status_code', '?')}: "
                              f"{getattr(resp, 'message', resp)}")


def _network_reason(exc: BaseException) -> str:
    """A short French reason for a failed connection to the homeserver."""
    import socket

    chain, e = [], exc
    while e is not None and len(chain) < 5:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(c) for c in chain).lower()
    if any(isinstance(c, socket.gaierror) for c in chain) or "name or service not known" in text:
        return "nom d'hôte inconnu"
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "connection refused" in text \
            or "connect call failed" in text:
        return "connexion refusée"
    if any(isinstance(c, (TimeoutError, asyncio.TimeoutError)) for c in chain):
        return "pas de réponse dans le délai"
    if "ssl" in text or "certificate" in text:
        return "échec de la connexion sécurisée (certificat ?)"
    return "connexion impossible"


def _event_id_or_raise(resp: Any, event_id: str | None) -> str:
    if event_id:
        return event_id
    code = getattr(resp, "status_code", None) or "?"
    message = getattr(resp, "message", None) or str(resp)
    transient = code not in PERMANENT_ERRORS
    raise SendError(f"{code}: {message}", transient=transient)


async def run_matrix_bot(config: Config) -> None:
    """``ess-bot run``: start, run until SIGINT/SIGTERM, stop cleanly."""
    bot = MatrixBot(config)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except NotImplementedError:  # pragma: no cover (Windows)
            pass
    runner = asyncio.create_task(bot.run_forever())
    stopper = asyncio.create_task(stopping.wait())
    try:
        done, _ = await asyncio.wait([runner, stopper], return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()
    except FatalError:
        raise  # the command line prints its French message (exit code 2)
    finally:
        runner.cancel()
        stopper.cancel()
        await bot.stop()

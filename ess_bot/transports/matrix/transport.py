"""The Matrix transport (matrix-nio): login (``login``), the sync loop as batches (``sync``), the
conversion of events (``convert``), and sending.

``MatrixBot`` is the bot on Matrix: a :class:`ess_bot.runner.Runner` on a :class:`MatrixTransport`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectionError
from nio import AsyncClient, AsyncClientConfig, RoomSendResponse, UploadResponse

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.errors import FatalError
from ess_bot.files import private_dir
from ess_bot.framework.messages import Outgoing, SendError
from ess_bot.framework.transport import Capabilities, StartContext
from ess_bot.runner import RETRY_MAX, SCHEDULER_GRACE, Runner
from ess_bot.transports.matrix.convert import build_content
from ess_bot.transports.matrix.login import NETWORK_ERRORS, MatrixLogin, RepeatedWarnings
from ess_bot.transports.matrix.sync import FIRST_START_FILTER, SYNC_TOKEN, MatrixSync
from ess_bot.transports.store_key import resolve_store_key

if TYPE_CHECKING:
    from ess_bot.app import App
    from ess_bot.storage.db import Database

log = logging.getLogger("ess_bot.transports.matrix")

PARALLEL_ROOMS = 8     # rooms the bot sends to at the same time (each room's messages stay in order)
PERMANENT_ERRORS = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_UNKNOWN"}


class MatrixTransport(MatrixLogin, MatrixSync):
    name = "matrix"
    capabilities = Capabilities(threads=True, reactions=True, polls=True, edits=True, redactions=True, files=True,
                                html=True)
    start_keys = (SYNC_TOKEN,)
    parallel_rooms = PARALLEL_ROOMS
    scheduler_grace = SCHEDULER_GRACE

    def __init__(self, config: Config, clock: Clock | None = None, request_timeout: float = 60.0,
                 backoff_max: float = RETRY_MAX):
        self.config = config
        self.clock = clock or Clock(config.bot.tz)
        self.store_path = Path(config.matrix.store_path)
        self.backoff_max = backoff_max
        self.pace_seconds = config.matrix.broadcast_interval_ms / 1000
        private_dir(self.store_path)
        self._store_key, self._store_key_configured = resolve_store_key(self.store_path, config.matrix.store_key)
        # nio retries a request that times out or cannot connect twice, quickly, then hands the failure
        # over: the bot's loops then log the outage once and retry at most backoff_max seconds apart
        client_config = AsyncClientConfig(max_limit_exceeded=None, max_timeouts=2, store_sync_tokens=False,
                                          encryption_enabled=config.matrix.encryption,
                                          request_timeout=request_timeout, pickle_key=self._store_key,
                                          max_timeout_retry_wait_time=min(backoff_max, 1.0))
        self.client = AsyncClient(config.matrix.homeserver, config.matrix.user_id, store_path=str(self.store_path),
                                  config=client_config)
        self._app: "App | None" = None
        self._sync_filter: dict[str, Any] = {"room": {"timeline": {"limit": config.matrix.timeline_limit}}}
        self._prefetched: Any = None
        self._prefetched_since: str | None = None
        # read from the database once, then kept here; written with the sync token, once per round
        self._watermarks: dict[str, int] | None = None
        self._pending_watermarks: dict[str, int] = {}  # this round's, kept only if the round is saved
        self._undecrypted_pending: bool | None = None  # None: not looked yet
        self._undecrypted_unsaved: dict[str, str] = {}  # kept in memory while the database refuses writes
        self._unsaved_watermarks: dict[str, int] = {}    # of handled rounds, saved with the next position
        self._log_filter = RepeatedWarnings(self.clock.monotonic)

    @property
    def user_id(self) -> str:
        return self.client.user_id or self.config.matrix.user_id

    async def connect(self, start: StartContext) -> None:
        """Log in, then ask for the first sync at once: a first start (no database yet) with history
        skipped; a restart as soon as the saved position has been read (while the application loads)."""
        logging.getLogger(RepeatedWarnings.LOGGER).addFilter(self._log_filter)
        await self._login_at_start()
        try:
            if start.fresh_database:
                self._prefetched = await self.client.sync(timeout=0, sync_filter=FIRST_START_FILTER, full_state=True)
                return
            since = (await start.state).get(SYNC_TOKEN)
            if since is not None:  # none saved: the sync loop starts as a first start does
                self._prefetched = await self.client.sync(timeout=0, since=since, sync_filter=self._sync_filter,
                                                          full_state=True)
                self._prefetched_since = since
        except NETWORK_ERRORS as exc:  # the sync loop asks again, and reports an outage if it lasts
            log.info("first sync not prefetched: %s", exc)
            self._prefetched = None

    async def close(self) -> None:
        await self.client.close()
        logging.getLogger(RepeatedWarnings.LOGGER).removeFilter(self._log_filter)

    # -- sending ---------------------------------------------------------------------------------
    async def send(self, out: Outgoing, txn_id: str) -> str:
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


def _event_id_or_raise(resp: Any, event_id: str | None) -> str:
    if event_id:
        return event_id
    code = getattr(resp, "status_code", None) or "?"
    message = getattr(resp, "message", None) or str(resp)
    transient = code not in PERMANENT_ERRORS
    raise SendError(f"{code}: {message}", transient=transient)



class MatrixBot(Runner):
    """The bot on a homeserver: the runner on a Matrix transport. ``start()`` returns once the first
    sync is handled; ``stop()`` ends it."""

    def __init__(self, config: Config, clock: Clock | None = None, db: "Database | None" = None,
                 request_timeout: float = 60.0, backoff_max: float = RETRY_MAX):
        clock = clock or Clock(config.bot.tz)
        super().__init__(config, MatrixTransport(config, clock, request_timeout, backoff_max), clock, db,
                         backoff_max)

    @property
    def client(self) -> AsyncClient:
        return self.transport.client

    async def run_forever(self) -> None:
        await self.run()


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

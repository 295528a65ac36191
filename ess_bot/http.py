"""A small HTTP endpoint (aiohttp), off unless ``[http] listen`` is set:

- ``GET /agenda.ics?token=…`` — the network's upcoming events and meetings as one subscribable
  calendar (no attendee names). A missing or wrong token gets a bare 403.
- ``GET /healthz`` — ``{"status": "ok"|"degraded", "degraded": {…}, "version": …}`` for monitoring:
  HTTP 200 when everything works, 503 while a component (database, homeserver…) is degraded.

Hostile clients are bounded: a request must arrive whole (headers and body) within
``[http] request_timeout_seconds`` of the connection's opening, or of the previous answer on a kept-alive
connection, and is answered within that time too; at most ``[http] max_connections`` connections are open
at once — a further one gets a 503 and is closed. Bodies are never read (the bot only serves GETs): one
announcing more than ``MAX_BODY`` bytes gets a 413. Every error body is a short French text, and every
error is logged in one line (the traceback of an internal error only at DEBUG, with ``--verbose``).

The access log is off, and no log line holds a query string: it would write the token to the logs.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from sqlalchemy.exc import SQLAlchemyError

from ess_bot import __version__
from ess_bot.config import Config

if TYPE_CHECKING:
    from ess_bot.app import App
    from ess_bot.health import Health

log = logging.getLogger(__name__)

APP_KEY = web.AppKey("ess_bot_app", object)
CONFIG_KEY = web.AppKey("ess_bot_config", Config)

MAX_BODY = 1024          # bytes a request may announce; the bot reads no body at all
HEALTH_COMPONENT = "http"  # the name under which a saturated endpoint shows in /healthz

TEXTS = {
    400: "Requête mal formée.",
    403: "Accès refusé.",
    404: "Page introuvable. Adresses servies : /agenda.ics?token=… et /healthz.",
    405: "Méthode non autorisée : seules les requêtes GET et HEAD sont acceptées.",
    413: f"Requête trop volumineuse (au plus {MAX_BODY} octets).",
    431: "En-têtes de la requête trop longs.",
    500: "Erreur interne du serveur.",
    503: "Service momentanément indisponible, réessayez dans quelques instants.",
}


def french_text(status: int) -> str:
    return TEXTS.get(status, f"Erreur {status}.")


def text_response(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=french_text(status) + "\n", content_type="text/plain",
                        charset="utf-8", headers=headers)


def _refusal(status: int = 503) -> bytes:
    """A whole HTTP response, written to a connection refused before any request is read."""
    body = (french_text(status) + "\n").encode("utf-8")
    head = (f"HTTP/1.1 {status} Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 10\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body


def token_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an unset expected token never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ("127.0.0.1", 8080); ``"[::1]:8080"`` → ("::1", 8080)."""
    m = re.match(r"^\[?([^\]]+?)\]?:(\d{1,5})$", listen)
    if not m:
        raise ValueError(f"unreadable listen address {listen!r}")
    return m.group(1), int(m.group(2))


def _peer(request: web.BaseRequest) -> str:
    return request.remote or "?"


def _where(request: web.BaseRequest) -> str:
    """``GET /agenda.ics from 127.0.0.1`` for a log line: the path still percent-encoded (a decoded
    ``%0A`` would forge a log line) and never the query string (the token)."""
    return f"{request.method} {request.rel_url.raw_path[:100]} from {_peer(request)}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


# -- the handlers -------------------------------------------------------------------------------

async def agenda_ics(request: web.Request) -> web.StreamResponse:
    config: Config = request.app[CONFIG_KEY]
    if not token_ok(config.http.token, request.query.get("token")):
        raise web.HTTPForbidden()
    app: App = request.app[APP_KEY]
    async with app.db.sessions() as session:
        data = await app.services.agenda.feed(session)
    return web.Response(body=data, content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": "private, max-age=300",
                                 "Content-Disposition": 'inline; filename="agenda.ics"'})


async def healthz(request: web.Request) -> web.StreamResponse:
    health: Health | None = getattr(request.app[APP_KEY], "health", None)
    snapshot = health.snapshot() if health is not None else {"status": "ok", "degraded": {}}
    return web.json_response({**snapshot, "version": __version__},
                             status=200 if snapshot["status"] == "ok" else 503,
                             headers={"Cache-Control": "no-store"})


def _unavailable(exc: BaseException) -> bool:
    """A database or network failure (the database down, the disk full): 503, not a bug."""
    return isinstance(exc, (SQLAlchemyError, OSError))


def make_guard(timeout: float) -> Any:
    """The middleware: French error bodies, the body-size limit, the answer deadline, one log line."""

    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        protocol = request.protocol
        if isinstance(protocol, Connection):
            protocol.request_arrived()
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("HTTP 413 for %s: body of %d bytes announced (limit %d)", _where(request),
                        request.content_length, MAX_BODY)
            response = text_response(413)
            response.force_close()  # the body is not read: the connection cannot be reused
            return response
        try:
            async with asyncio.timeout(timeout):
                return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
            if exc.status == 413:
                log.warning("HTTP 413 for %s: body over %d bytes", _where(request), MAX_BODY)
            return text_response(exc.status, headers)
        except TimeoutError:
            log.warning("HTTP 503 for %s: no answer within %s s", _where(request), timeout)
            return text_response(503, {"Retry-After": "10"})
        except Exception as exc:
            if _unavailable(exc):
                log.warning("HTTP 503 for %s: %s", _where(request), _one_line(exc))
                return text_response(503, {"Retry-After": "10"})
            log.error("HTTP 500 for %s: %s", _where(request), _one_line(exc))
            log.debug("traceback of the HTTP 500", exc_info=exc)
            return text_response(500)

    return guard


def make_web_app(config: Config, app: "App") -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[make_guard(config.http.request_timeout_seconds)])
    web_app[CONFIG_KEY] = config
    web_app[APP_KEY] = app
    web_app.router.add_get("/agenda.ics", agenda_ics)
    web_app.router.add_get("/healthz", healthz)
    return web_app


# -- the connections ----------------------------------------------------------------------------

@dataclass
class ConnectionLimit:
    """Open connections, at most ``maximum``; a saturated endpoint is one degraded component."""

    maximum: int
    health: "Health | None" = None
    open: int = 0
    refused: int = 0
    timed_out: int = 0
    _saturated: bool = field(default=False, repr=False)

    def admit(self) -> bool:
        if self.open < self.maximum:
            self.open += 1
            return True
        self.refused += 1
        detail = f"{self.maximum} connections open at once; new ones refused with a 503"
        if self.health is not None:
            self.health.failed(HEALTH_COMPONENT, detail, log)
        elif not self._saturated:
            log.warning("%s unavailable: %s (logged once per outage)", HEALTH_COMPONENT, detail)
        self._saturated = True
        return False

    def release(self) -> None:
        self.open -= 1
        if self._saturated and self.open <= self.maximum // 2:  # hysteresis: one line per episode
            self._saturated = False
            if self.health is not None:
                self.health.recovered(HEALTH_COMPONENT, log)
            else:
                log.warning("%s available again (%d connections refused)", HEALTH_COMPONENT, self.refused)


class Connection(web.RequestHandler):
    """aiohttp's protocol, with a connection limit, a deadline for the first request, French bodies and
    one log line for malformed requests (aiohttp answers those before any middleware runs)."""

    __slots__ = ("_limit", "_admitted", "_arrived", "_deadline", "_timeout")

    def __init__(self, manager: web.Server, *, limit: ConnectionLimit, timeout: float, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._limit = limit
        self._timeout = timeout
        self._admitted = False
        self._arrived = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._limit.admit():
            self.close()
            transport.write(_refusal(503))  # type: ignore[attr-defined]
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        # aiohttp >= 3.14 also closes a connection that sends no whole request within keepalive_timeout;
        # this deadline does it on every version (later requests: aiohttp's keep-alive timer).
        self._deadline = asyncio.get_running_loop().call_later(self._timeout, self._too_slow)

    def request_arrived(self) -> None:
        """The middleware saw a whole request's headers: the first-request deadline is met."""
        self._arrived = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self._arrived:
            self._limit.timed_out += 1
            log.debug("HTTP connection closed: no whole request within %s s", self._timeout)
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._admitted:
            self._admitted = False
            self._limit.release()
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A malformed or oversized request (aiohttp's parser), or a failure outside the middleware."""
        self.request_arrived()
        if isinstance(exc, LineTooLong):
            status = 431
        if isinstance(exc, BadHttpMethod):  # TLS or other non-HTTP traffic: noise
            log.debug("HTTP %d from %s: %s", status, _peer(request), type(exc).__name__)
        elif isinstance(exc, HttpProcessingError):
            # the exception's text may quote the request line, and so the token: only its name
            log.warning("HTTP %d from %s: malformed or oversized request (%s)", status, _peer(request),
                        type(exc).__name__)
        else:
            log.error("HTTP %d from %s: %s", status, _peer(request), _one_line(exc) if exc else "error")
            if exc is not None:
                log.debug("traceback of the HTTP %d", status, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already partly sent")
        response = text_response(status)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own unexpected errors: one line, the traceback at DEBUG."""
        exc = kw.get("exc_info")
        try:
            what = str(args[0]) % args[1:] if args else "error"
        except (TypeError, ValueError):
            what = " ".join(map(str, args))
        log.error("HTTP server: %s%s", what, f" ({_one_line(exc)})" if isinstance(exc, BaseException) else "")
        log.debug("HTTP server traceback", exc_info=exc if isinstance(exc, BaseException) else True)


@dataclass
class HttpServer:
    """What ``start_http`` started: the aiohttp runner, the listening socket and the connection count."""

    runner: web.AppRunner
    server: asyncio.AbstractServer
    limit: ConnectionLimit

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()          # no new connection
        await self.runner.cleanup()  # idle ones closed, running requests finished (bounded)
        try:
            async with asyncio.timeout(5):
                await self.server.wait_closed()
        except TimeoutError:
            log.warning("HTTP server: connections still open after the stop")


async def start_http(config: Config, app: "App") -> HttpServer | None:
    """Start serving on ``config.http.listen``; None when the endpoint is disabled."""
    if not config.http.enabled:
        return None
    host, port = split_listen(config.http.listen)
    timeout = config.http.request_timeout_seconds
    runner = web.AppRunner(make_web_app(config, app), access_log=None, handle_signals=False,
                           handler_cancellation=True, shutdown_timeout=min(timeout, 5))
    await runner.setup()
    limit = ConnectionLimit(config.http.max_connections, getattr(app, "health", None))
    manager = runner.server
    assert manager is not None
    handler_options = dict(keepalive_timeout=timeout, lingering_time=timeout, access_log=None, logger=log)

    def connection() -> Connection:
        return Connection(manager, loop=asyncio.get_running_loop(), limit=limit, timeout=timeout,
                          **handler_options)

    try:
        server = await asyncio.get_running_loop().create_server(connection, host, port, backlog=128)
    except OSError:
        await runner.cleanup()
        raise
    log.info("calendar feed served on http://%s/agenda.ics", config.http.listen)
    return HttpServer(runner, server, limit)


async def stop_http(served: HttpServer | None) -> None:
    if served is not None:
        await served.stop()


stop = stop_http  # the name the transports may import

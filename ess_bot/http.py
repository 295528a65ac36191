"""A small HTTP endpoint (aiohttp), off unless ``[http] listen`` is set:

- ``GET /agenda.ics?token=…`` — the network's upcoming events and meetings as one subscribable
  calendar (no attendee names). A missing or wrong token gets a bare 403.
- ``GET /healthz`` — ``{"status": "ok", "version": …}`` for monitoring.

The access log is off: it would write the token (in the query string) to the logs.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import TYPE_CHECKING

from aiohttp import web

from ess_bot import __version__
from ess_bot.config import Config

if TYPE_CHECKING:
    from ess_bot.app import App

log = logging.getLogger(__name__)

APP_KEY = web.AppKey("ess_bot_app", object)
CONFIG_KEY = web.AppKey("ess_bot_config", Config)


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


async def agenda_ics(request: web.Request) -> web.StreamResponse:
    config: Config = request.app[CONFIG_KEY]
    if not token_ok(config.http.token, request.query.get("token")):
        return web.Response(status=403, text="Accès refusé.\n", content_type="text/plain", charset="utf-8")
    app: App = request.app[APP_KEY]
    async with app.db.sessions() as session:
        data = await app.services.agenda.feed(session)
    return web.Response(body=data, content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": "private, max-age=300",
                                 "Content-Disposition": 'inline; filename="agenda.ics"'})


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok", "version": __version__})


def make_web_app(config: Config, app: "App") -> web.Application:
    web_app = web.Application()
    web_app[CONFIG_KEY] = config
    web_app[APP_KEY] = app
    web_app.router.add_get("/agenda.ics", agenda_ics)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def start_http(config: Config, app: "App") -> web.AppRunner | None:
    """Start serving on ``config.http.listen``; None when the endpoint is disabled."""
    if not config.http.enabled:
        return None
    host, port = split_listen(config.http.listen)
    runner = web.AppRunner(make_web_app(config, app), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("calendar feed served on http://%s/agenda.ics", config.http.listen)
    return runner


async def stop_http(runner: web.AppRunner | None) -> None:
    if runner is not None:
        await runner.cleanup()


stop = stop_http  # the name the transports may import

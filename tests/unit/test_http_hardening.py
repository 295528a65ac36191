"""The HTTP endpoint against hostile or broken clients, on a real aiohttp server on 127.0.0.1 (a free port):
slow clients closed after the timeout, a connection limit, French error bodies, one log line per error
(never a traceback, never the token), /healthz following the App's Health."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field

import aiohttp
import pytest
from sqlalchemy.exc import OperationalError

from ess_bot import __version__
from ess_bot.health import Health
from ess_bot.http import MAX_BODY, TEXTS, Connection, start_http, stop_http
from tests.support import make_config

TOKEN = "s3cret-token-for-the-feed"


class FakeSessions:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False


@dataclass
class FakeAgenda:
    failure: BaseException | None = None
    delay: float = 0.0

    async def feed(self, session) -> bytes:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


@dataclass
class FakeApp:
    """What the HTTP endpoint uses of the App: the database sessions, the agenda, the health."""

    health: Health = field(default_factory=lambda: Health(time.monotonic))
    agenda: FakeAgenda = field(default_factory=FakeAgenda)

    @property
    def db(self):
        return self

    def sessions(self):
        return FakeSessions()

    @property
    def services(self):
        return self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(tmp_path, timeout: int = 1, max_connections: int = 300):
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/t.db",
                         f'[http]\nlisten = "127.0.0.1:{free_port()}"\ntoken = "{TOKEN}"\n'
                         f"request_timeout_seconds = {timeout}\nmax_connections = {max_connections}\n")
    app = FakeApp()
    served = await start_http(config, app)
    return served, app, f"http://127.0.0.1:{served.port}"


@pytest.fixture
async def server(tmp_path):
    served, app, base = await serve(tmp_path)
    try:
        yield served, app, base
    finally:
        await stop_http(served)


async def fetch(method: str, url: str, **kw):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kw) as resp:
            return resp.status, resp.headers, await resp.text()


async def raw_exchange(port: int, data: bytes, wait: float = 2.0) -> bytes:
    """Send ``data`` as is, then read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read (and drop) whatever comes until the server closes the connection."""
    while True:
        try:
            if not await reader.read(65536):
                return True
        except ConnectionError:
            return True


# -- slow clients -------------------------------------------------------------------------------

async def test_200_slow_header_senders_are_closed_after_the_timeout(server):
    served, _, base = server
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\nX-Pad: " + b"a" * 100
    conns = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(200)]
    started = time.monotonic()
    closed_at: list[float] = []

    async def trickle(reader, writer):
        # one byte every 0.1 s: the headers never end; stop when the server closes the connection
        reading = asyncio.ensure_future(closed_by_server(reader))
        for byte in request:
            writer.write(bytes([byte]))
            done, _ = await asyncio.wait([reading], timeout=0.1)
            if done:
                break
        await reading
        closed_at.append(time.monotonic() - started)
        writer.close()

    await asyncio.wait_for(asyncio.gather(*(trickle(r, w) for r, w in conns)), 10)
    assert len(closed_at) == 200
    # request_timeout_seconds = 1: every one closed after about 1 s, none held for the 15 s they would take
    assert 0.5 <= min(closed_at) and max(closed_at) < 3.0, (min(closed_at), max(closed_at))
    await asyncio.sleep(0.1)
    assert served.limit.open == 0
    status, _, _ = await fetch("GET", f"{base}/healthz")  # and the endpoint still answers
    assert status == 200


async def test_a_slow_body_and_a_slow_second_request_are_closed_too(server):
    served, _, _ = server
    # headers whole, body trickled: answered at once, then the connection is closed after the timeout
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nab")
    started = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"HTTP/1.1 200")

    async def trickle():
        for _ in range(100):
            writer.write(b"x")
            await asyncio.sleep(0.1)

    trickling = asyncio.ensure_future(trickle())
    try:
        assert await asyncio.wait_for(closed_by_server(reader), 4)
    finally:
        trickling.cancel()
        writer.close()
    assert time.monotonic() - started < 3.0
    # a kept-alive connection whose second request's headers never end is closed as well
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)  # the JSON answer
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert await asyncio.wait_for(closed_by_server(reader), 4)
    assert 0.5 <= time.monotonic() - started < 3.0
    writer.close()


# -- the connection limit -----------------------------------------------------------------------

async def test_connections_over_the_limit_get_a_french_503_and_health_shows_it(tmp_path, caplog):
    served, app, base = await serve(tmp_path, timeout=5, max_connections=5)
    try:
        idle = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert served.limit.open == 5
        caplog.set_level(logging.WARNING, logger="ess_bot")
        answers = [await raw_exchange(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(3)]
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert answer.endswith((TEXTS[503] + "\n").encode("utf-8"))
            assert b"text/plain; charset=utf-8" in answer and b"Retry-After: 10" in answer
        assert app.health.degraded("http") and app.health.outages["http"].attempts == 3
        assert [r.getMessage() for r in caplog.records].count(
            "http unavailable: 5 connections open at once; new ones refused with a 503 "
            "(retrying; logged once per outage)") == 1  # one line for the three refusals
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        assert served.limit.open == 0 and not app.health.degraded("http")
        status, _, body = await fetch("GET", f"{base}/healthz")
        assert status == 200 and "http" not in body
    finally:
        await stop_http(served)


# -- French bodies and one-line logs ------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("GET", "/autre", 404), ("GET", "/agenda.ics?token=faux", 403), ("GET", "/agenda.ics", 403),
    ("POST", "/healthz", 405), ("DELETE", "/agenda.ics", 405)])
async def test_error_bodies_are_short_french_text(server, caplog, method, path, status):
    _, _, base = server
    caplog.set_level(logging.DEBUG)
    got, headers, body = await fetch(method, base + path)
    assert got == status
    assert body == TEXTS[status] + "\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    if status == 405:
        assert "GET" in headers["Allow"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # ordinary misses: no log


async def test_an_oversized_body_gets_413_and_one_log_line(server, caplog):
    _, _, base = server
    caplog.set_level(logging.DEBUG)
    status, _, body = await fetch("POST", f"{base}/agenda.ics?token={TOKEN}", data=b"x" * (MAX_BODY * 50))
    assert status == 413 and body == TEXTS[413] + "\n"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].name == "ess_bot.http" and lines[0].exc_info is None
    assert "413" in lines[0].getMessage() and TOKEN not in lines[0].getMessage()
    # a percent-encoded line break in the path cannot forge a second log line
    caplog.clear()
    status, _, _ = await fetch("POST", f"{base}/x%0AHTTP%20500%20forged?token={TOKEN}", data=b"y" * 5000)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert status == 413 and "\n" not in line and "/x%0AHTTP%20500%20forged from 127.0.0.1" in line
    assert TOKEN not in line


@pytest.mark.parametrize("data, status", [
    # a request line longer than aiohttp's limit, with the token in it
    (b"GET /agenda.ics?token=" + TOKEN.encode() + b"&x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
])
async def test_malformed_or_oversized_requests_get_french_text_and_one_line(server, caplog, data, status):
    served, _, _ = server
    caplog.set_level(logging.DEBUG)
    answer = await raw_exchange(served.port, data)
    assert answer.startswith((f"HTTP/1.0 {status} ".encode(), f"HTTP/1.1 {status} ".encode()))
    assert answer.endswith((TEXTS[status] + "\n").encode("utf-8"))
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert f"HTTP {status} from 127.0.0.1" in lines[0].getMessage()
    assert all(TOKEN not in r.getMessage() and not r.exc_info for r in caplog.records)


async def test_database_failure_gives_503_and_a_bug_500_each_in_one_line(server, caplog):
    _, app, base = server
    caplog.set_level(logging.INFO)
    app.agenda.failure = OperationalError("SELECT …", {}, OSError("connection refused"))
    status, _, body = await fetch("GET", f"{base}/agenda.ics?token={TOKEN}")
    assert status == 503 and body == TEXTS[503] + "\n"
    app.agenda.failure = KeyError("oops")
    status, _, body = await fetch("GET", f"{base}/agenda.ics?token={TOKEN}")
    assert status == 500 and body == TEXTS[500] + "\n"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in lines] == [
        ("WARNING", "HTTP 503 for GET /agenda.ics from 127.0.0.1"),
        ("ERROR", "HTTP 500 for GET /agenda.ics from 127.0.0.1")]
    assert all(r.exc_info is None and TOKEN not in r.getMessage() for r in lines)
    app.agenda.failure = None
    status, headers, body = await fetch("GET", f"{base}/agenda.ics?token={TOKEN}")
    assert status == 200 and headers["Content-Type"].startswith("text/calendar")


async def test_a_handler_slower_than_the_timeout_gets_503(server):
    _, app, base = server
    app.agenda.delay = 3
    started = time.monotonic()
    status, _, body = await fetch("GET", f"{base}/agenda.ics?token={TOKEN}")
    assert status == 503 and body == TEXTS[503] + "\n" and time.monotonic() - started < 2.5


# -- /healthz -----------------------------------------------------------------------------------

async def test_healthz_follows_the_health_of_the_app(server):
    _, app, base = server
    status, headers, body = await fetch("GET", f"{base}/healthz")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as resp:
            assert await resp.json() == {"status": "ok", "degraded": {}, "version": __version__}
        app.health.failed("database", "connection refused (127.0.0.1:5432)")
        app.health.failed("database", "connection refused (127.0.0.1:5432)")
        async with session.get(f"{base}/healthz") as resp:
            data = await resp.json()
            assert resp.status == 503
            assert data["status"] == "degraded" and data["version"] == __version__
            assert data["degraded"]["database"]["attempts"] == 2
            assert data["degraded"]["database"]["detail"] == "connection refused (127.0.0.1:5432)"
        app.health.recovered("database")
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_the_first_request_deadline_holds_without_aiohttps_keepalive_timer(tmp_path, monkeypatch):
    # aiohttp < 3.14 starts its keep-alive timer only after a first answer: our own deadline covers it
    original = Connection.__init__

    def without_keepalive(self, manager, **kw):
        original(self, manager, **{**kw, "keepalive_timeout": 3600})

    monkeypatch.setattr(Connection, "__init__", without_keepalive)
    served, _, _ = await serve(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert await asyncio.wait_for(closed_by_server(reader), 4)
        assert 0.9 <= time.monotonic() - started < 2.0
        assert served.limit.timed_out == 1
        writer.close()
    finally:
        await stop_http(served)

"""The calendar feed over HTTP (aiohttp on 127.0.0.1, a free port): /agenda.ics with its token,
/healthz, and a bare 403 for a missing or wrong token."""

import socket
from datetime import datetime

import aiohttp
import pytest
from icalendar import Calendar

from ess_bot import __version__
from ess_bot.http import split_listen, start_http, stop_http, token_ok
from tests.support import PARIS, Harness, make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
TOKEN = "s3cret-token-for-the-feed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    port = free_port()
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/t.db",
                         f'[http]\nlisten = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n')
    h = await Harness(config.database.url, NOW, config).start()
    runner = await start_http(config, h.app)
    try:
        yield h, f"http://127.0.0.1:{port}"
    finally:
        await stop_http(runner)
        await h.close()


async def get(url):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_feed_serves_upcoming_events_only(served):
    h, base = served
    await h.say('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon"',
                sender="@claire:test")
    await h.say('!evenement ajouter "Café ESS" 2/12 9h', sender="@claire:test")
    await h.say('!evenement ajouter "Annulé" 3/12 9h', sender="@claire:test")
    await h.say("!evenement annuler 3", sender="@claire:test")
    status, ctype, body = await get(f"{base}/agenda.ics?token={TOKEN}")
    assert status == 200 and ctype.startswith("text/calendar")
    cal = Calendar.from_ical(body)
    assert str(cal["X-WR-CALNAME"]).startswith("Agenda du réseau ESS")
    events = cal.walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Café ESS", "Inauguration du Pixel"]
    assert [str(e["UID"]) for e in events] == ["event-2@ess-bot", "event-1@ess-bot"]
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert b"ATTENDEE" not in body and b"@claire" not in body and b"Claire" not in body
    # once an event is over it leaves the feed
    h.clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=PARIS))
    _, _, body = await get(f"{base}/agenda.ics?token={TOKEN}")
    assert [str(e["SUMMARY"]) for e in Calendar.from_ical(body).walk("VEVENT")] == ["Inauguration du Pixel"]


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", f"?token={TOKEN}x", f"?token={TOKEN[:-1]}"])
async def test_wrong_or_missing_token_gets_403_and_nothing_else(served, query):
    h, base = served
    await h.say('!evenement ajouter "Secret" 2/12 9h', sender="@claire:test")
    status, ctype, body = await get(f"{base}/agenda.ics{query}")
    assert status == 403 and body == "Accès refusé.\n".encode() and ctype == "text/plain; charset=utf-8"
    assert b"BEGIN:VCALENDAR" not in body and b"Secret" not in body


async def test_healthz(served):
    h, base = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "degraded": {}, "version": __version__}
        async with session.get(f"{base}/autre") as resp:
            assert resp.status == 404 and (await resp.text()).startswith("Page introuvable.")
        # the App's Health is what /healthz reports: 503 while the database is down
        h.app.health.failed("database", "connection refused")
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 503 and (await resp.json())["degraded"]["database"]["attempts"] == 1
        h.app.health.recovered("database")


async def test_disabled_without_listen(tmp_path):
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    assert await start_http(config, None) is None
    await stop_http(None)


def test_helpers():
    assert token_ok("abc", "abc") and not token_ok("abc", "abd") and not token_ok("abc", None)
    assert not token_ok("", "") and not token_ok("abc", "é")
    assert split_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_listen("[::1]:8080") == ("::1", 8080)

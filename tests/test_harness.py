"""Proof that the integration-test harness (tests/harness/) works against
real Synapse and PostgreSQL servers."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import urllib.error
import urllib.request

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness import MatrixError, PostgresServer, SynapseServer, TestUser, fresh_user, match

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str) -> dict:
    with _NO_PROXY.open(url, timeout=10) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------
# Synapse
# --------------------------------------------------------------------------


def test_synapse_health_and_config(synapse: SynapseServer) -> None:
    assert synapse.running
    assert synapse.base_url == f"http://127.0.0.1:{synapse.port}"
    assert synapse.health()
    with _NO_PROXY.open(synapse.base_url + "/health", timeout=5) as r:
        assert r.status == 200 and r.read() == b"OK"
    versions = _get_json(synapse.base_url + "/_matrix/client/versions")
    assert "v1.1" in versions["versions"]
    assert synapse.startup_seconds is not None and synapse.startup_seconds < 60
    # No federation listener: the federation API is not served.
    with pytest.raises(urllib.error.HTTPError) as ei:
        _NO_PROXY.open(synapse.base_url + "/_matrix/federation/v1/version", timeout=5)
    ei.value.close()
    assert ei.value.code in (400, 404)


def test_register_user_sync_and_login(synapse: SynapseServer) -> None:
    localpart = fresh_user("Sync.User")
    assert localpart == localpart.lower()
    user_id, token, device_id = synapse.register_user(localpart, password="pw-123")
    assert user_id == f"@{localpart}:{synapse.server_name}"
    assert token and device_id
    req = urllib.request.Request(
        synapse.base_url + "/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {token}"},
    )
    with _NO_PROXY.open(req, timeout=10) as r:
        assert json.loads(r.read())["user_id"] == user_id
    uid2, token2, dev2 = synapse.login(localpart, "pw-123")
    assert uid2 == user_id and token2 != token and dev2 != device_id


async def test_admin_user_can_use_admin_api(synapse: SynapseServer, make_user) -> None:
    admin = await make_user("admin", admin=True)
    bob = await make_user("bob")
    info = await admin.request("GET", f"/_synapse/admin/v2/users/{bob.user_id}")
    assert info["name"] == bob.user_id and info["admin"] is False
    with pytest.raises(MatrixError) as ei:
        await bob.request("GET", f"/_synapse/admin/v2/users/{admin.user_id}")
    assert ei.value.status == 403


async def test_invite_join_and_message_roundtrip(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    assert alice.user_id != bob.user_id

    room_id = await alice.create_room(name="harness", invite=[bob.user_id])
    assert await bob.wait_for_invite(from_sender=alice.user_id) == room_id
    assert await bob.join(room_id) == room_id

    invited = await alice.wait_for(room_id, match(type="m.room.member", state_key=bob.user_id))
    assert invited["content"]["membership"] == "invite"
    joined = await alice.wait_for(
        room_id, match(type="m.room.member", state_key=bob.user_id, membership="join")
    )
    assert joined["sender"] == bob.user_id
    assert set(await alice.joined_members(room_id)) == {alice.user_id, bob.user_id}

    body = f"hello {secrets.token_hex(4)}"
    event_id = await bob.send_text(room_id, body, html=f"<b>{body}</b>")
    ev = await alice.wait_for(room_id, lambda e: e.get("content", {}).get("body") == body)
    assert ev["event_id"] == event_id
    assert ev["sender"] == bob.user_id
    assert ev["type"] == "m.room.message"
    assert ev["room_id"] == room_id
    assert ev["content"]["formatted_body"] == f"<b>{body}</b>"
    assert isinstance(ev["origin_server_ts"], int)

    # /messages sees it too (newest first).
    chunk = await alice.messages(room_id, limit=10)
    assert chunk[0]["event_id"] == event_id


async def test_react_and_redact_roundtrip(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.join(room_id)

    msg_id = await alice.send_text(room_id, "react to me")
    await bob.wait_for(room_id, match(body="react to me"))

    reaction_id = await bob.react(room_id, msg_id, "👍")
    reaction = await alice.wait_for(room_id, match(type="m.reaction", sender=bob.user_id))
    assert reaction["event_id"] == reaction_id
    rel = reaction["content"]["m.relates_to"]
    assert rel == {"rel_type": "m.annotation", "event_id": msg_id, "key": "👍"}

    redaction_id = await bob.redact(room_id, reaction_id, reason="oops")
    redaction = await alice.wait_for(room_id, match(type="m.room.redaction", redacts=reaction_id))
    assert redaction["event_id"] == redaction_id
    assert redaction["content"].get("reason") == "oops"

    # The reaction is now redacted server-side: its content is stripped.
    fetched = await alice.get_event(room_id, reaction_id)
    assert fetched["content"] == {}
    assert fetched["unsigned"]["redacted_because"]["event_id"] == redaction_id


async def test_threads_and_replies_are_sent_with_relations(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.join(room_id)

    root = await alice.send_text(room_id, "root")
    in_thread = await alice.send_text(room_id, "in thread", thread_root=root)
    reply = await alice.send_text(room_id, "a reply", reply_to=root)

    ev_thread = await bob.wait_for(room_id, match(rel_type="m.thread", relates_to=root))
    assert ev_thread["event_id"] == in_thread
    ev_reply = await bob.wait_for(room_id, match(body="a reply", relates_to=root))
    assert ev_reply["event_id"] == reply
    assert ev_reply["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": root}}
    # The root arrived first and is still buffered for a later wait.
    ev_root = await bob.wait_for(room_id, match(body="root"))
    assert ev_root["event_id"] == root


async def test_wait_for_hands_out_each_event_once_and_collect(make_user) -> None:
    alice = await make_user("alice")
    room_id = await alice.create_room(name="solo")
    for i in range(5):
        await alice.send_text(room_id, f"ping {i}")
    first = await alice.wait_for(room_id, match(body_contains="ping"))
    second = await alice.wait_for(room_id, match(body_contains="ping"))
    assert (first["content"]["body"], second["content"]["body"]) == ("ping 0", "ping 1")
    rest = await alice.collect(room_id, match(body_contains="ping"), 3, timeout=10)
    assert [e["content"]["body"] for e in rest] == ["ping 2", "ping 3", "ping 4"]
    # Nothing more: collect with allow_fewer returns empty, wait_for times out.
    assert await alice.collect(room_id, match(body_contains="ping"), 1, timeout=0.5, allow_fewer=True) == []
    with pytest.raises(TimeoutError, match="ping 4"):
        await alice.wait_for(room_id, match(body_contains="ping"), timeout=0.5)


async def test_start_listening_ignores_earlier_events(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await alice.send_text(room_id, "old news")
    await bob.start_listening()
    # Joining after start_listening: the first sync for the newly joined room
    # carries recent history ("old news"), which must not count as new.
    await bob.join(room_id)
    await alice.send_text(room_id, "fresh")
    ev = await bob.wait_for(room_id, match(type="m.room.message"))
    assert ev["content"]["body"] == "fresh"
    assert all(e["content"].get("body") != "old news" for e in bob.buffered(room_id))


async def test_upload_download_same_bytes(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    blob = os.urandom(256 * 1024) + b"\x00end"
    mxc = await alice.upload(blob, "application/octet-stream", "blob.bin")
    assert mxc.startswith("mxc://")
    assert await alice.download(mxc) == blob
    assert await bob.download(mxc) == blob  # any local user may fetch it


async def test_state_and_encrypted_and_direct_rooms(make_user) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    enc_room = await alice.create_room(encrypted=True)
    assert (await alice.get_state(enc_room, "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"

    dm = await alice.create_room(invite=[bob.user_id], is_direct=True)
    await bob.join(dm)
    await alice.send_state(dm, "org.example.test", "k1", {"v": 1})
    ev = await bob.wait_for(dm, match(type="org.example.test", state_key="k1"))
    assert ev["content"] == {"v": 1}
    assert await bob.get_state(dm, "org.example.test", "k1") == {"v": 1}


async def test_pause_and_resume_simulate_outage(synapse: SynapseServer, make_user) -> None:
    alice = await make_user("alice")
    room_id = await alice.create_room()
    synapse.pause()
    try:
        assert synapse.paused
        assert not await asyncio.to_thread(synapse.health, 1.0)
        with pytest.raises(asyncio.TimeoutError):
            await alice.request("GET", "/_matrix/client/v3/account/whoami", timeout=1.0)
    finally:
        synapse.resume()
    assert not synapse.paused
    assert synapse.health()
    event_id = await alice.send_text(room_id, "back online")
    assert (await alice.wait_for(room_id, match(body="back online")))["event_id"] == event_id


async def test_client_retries_after_429() -> None:
    """TestUser honours retry_after_ms (against a local fake server)."""
    hits: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        if len(hits) == 1:
            return web.json_response(
                {"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 300},
                status=429,
            )
        return web.json_response({"user_id": "@x:localhost"})

    app = web.Application()
    app.router.add_get("/_matrix/client/v3/account/whoami", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with TestUser(f"http://127.0.0.1:{port}", "@x:localhost", "tok") as user:
            assert (await user.whoami())["user_id"] == "@x:localhost"
        assert len(hits) == 2 and hits[1] - hits[0] >= 0.29
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


async def test_postgres_database_roundtrip(postgres: PostgresServer) -> None:
    assert postgres.running
    url = postgres.create_database(f"harness_{secrets.token_hex(4)}")
    assert url.startswith(f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/harness_")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("select 1"))).scalar_one() == 1
            await conn.execute(text("create table items (id serial primary key, name text not null)"))
            await conn.execute(
                text("insert into items (name) values (:a), (:b)"), {"a": "alpha", "b": "beta"}
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(text("select id, name from items order by id"))).all()
        assert [tuple(r) for r in rows] == [(1, "alpha"), (2, "beta")]
        async with engine.connect() as conn:
            settings = {
                name: (await conn.execute(text(f"show {name}"))).scalar_one()
                for name in ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses")
            }
        assert settings == {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "listen_addresses": "127.0.0.1",
        }
    finally:
        await engine.dispose()
    postgres.drop_database(url.rsplit("/", 1)[1])


async def test_postgres_databases_are_isolated(postgres: PostgresServer) -> None:
    url_a = postgres.create_database()
    url_b = postgres.create_database()
    assert url_a != url_b
    eng_a, eng_b = create_async_engine(url_a), create_async_engine(url_b)
    try:
        async with eng_a.begin() as conn:
            await conn.execute(text("create table only_in_a (x int)"))
        async with eng_b.connect() as conn:
            exists = (await conn.execute(text("select to_regclass('only_in_a') is not null"))).scalar_one()
        assert exists is False
    finally:
        await eng_a.dispose()
        await eng_b.dispose()
    with pytest.raises(ValueError):
        postgres.create_database("bad-name; drop")

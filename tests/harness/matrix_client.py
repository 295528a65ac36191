"""A tiny raw client-server API client for tests (aiohttp, no matrix-nio).

It is deliberately independent of the bot under test. Events are the raw
JSON dicts from the server (``type``, ``sender``, ``content``, ``event_id``,
``origin_server_ts``, ...), plus a ``room_id`` key added by this client.

Receiving works by long-polling ``/sync`` into a per-user buffer:

* :meth:`TestUser.start_listening` pins the sync position to "now" and clears
  the buffer. Call it *before* the action whose effect you wait for (the
  ``make_user`` fixture already calls it once at creation).
* :meth:`TestUser.wait_for` returns the earliest buffered, not yet returned
  event matching a predicate, syncing until one arrives. Each event is handed
  out at most once, so two successive ``wait_for(... body == "pong")`` calls
  need two distinct "pong" events; events that did not match stay buffered
  for later waits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import urllib.parse
from typing import Any, Callable, Iterable

import aiohttp
from yarl import URL

__all__ = ["TestUser", "MatrixError", "match"]

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

_q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731  path segment quoting

# Timeline filter for incremental syncs: lots of events per room, nothing we
# don't need (Synapse caps the limit at filter_timeline_limit).
_SYNC_FILTER = json.dumps(
    {
        "room": {
            "timeline": {"limit": 5000},
            "state": {"lazy_load_members": True},
        },
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    separators=(",", ":"),
)
# Cheap filter used only to learn the current stream position.
_POSITION_FILTER = json.dumps(
    {
        "room": {
            "timeline": {"limit": 1},
            "state": {"not_types": ["*"]},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    separators=(",", ":"),
)


class MatrixError(Exception):
    """Non-2xx answer from the homeserver."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.errcode = body.get("errcode") if isinstance(body, dict) else None
        self.error = body.get("error") if isinstance(body, dict) else None
        super().__init__(f"{method} {path} -> {status} {self.errcode}: {self.error or body!r}")


def match(
    type: str | None = None,
    sender: str | None = None,
    body: str | None = None,
    body_contains: str | None = None,
    msgtype: str | None = None,
    relates_to: str | None = None,
    rel_type: str | None = None,
    redacts: str | None = None,
    state_key: str | None = None,
    membership: str | None = None,
) -> Predicate:
    """Build a predicate for :meth:`TestUser.wait_for` from simple criteria
    (all given criteria must hold). ``relates_to`` matches
    ``content["m.relates_to"]["event_id"]`` or the reply target
    ``content["m.relates_to"]["m.in_reply_to"]["event_id"]``; ``redacts``
    matches both the top-level and the (room v11+) ``content.redacts`` key."""

    def pred(ev: Event) -> bool:
        c = ev.get("content") or {}
        if type is not None and ev.get("type") != type:
            return False
        if sender is not None and ev.get("sender") != sender:
            return False
        if body is not None and c.get("body") != body:
            return False
        if body_contains is not None and body_contains not in str(c.get("body", "")):
            return False
        if msgtype is not None and c.get("msgtype") != msgtype:
            return False
        rel = c.get("m.relates_to") or {}
        if rel_type is not None and rel.get("rel_type") != rel_type:
            return False
        if relates_to is not None and relates_to not in (
            rel.get("event_id"),
            (rel.get("m.in_reply_to") or {}).get("event_id"),
        ):
            return False
        if redacts is not None and redacts not in (ev.get("redacts"), c.get("redacts")):
            return False
        if state_key is not None and ev.get("state_key") != state_key:
            return False
        if membership is not None and c.get("membership") != membership:
            return False
        return True

    return pred


def _describe(ev: Event) -> str:
    c = ev.get("content") or {}
    extra = c.get("body") or c.get("membership") or ""
    if isinstance(extra, str) and len(extra) > 60:
        extra = extra[:57] + "..."
    return f"{ev.get('type')} from {ev.get('sender')} {extra!r}"


class TestUser:
    """An async Matrix test client for one user/device (raw CS API)."""

    __test__ = False  # not a pytest test class, despite the name

    _txn_counter = itertools.count()

    def __init__(
        self,
        base_url: str,
        user_id: str,
        access_token: str,
        device_id: str | None = None,
        *,
        request_timeout: float = 30.0,
        max_429_retries: int = 20,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.access_token = access_token
        self.device_id = device_id
        self.request_timeout = request_timeout
        self.max_429_retries = max_429_retries
        self._session: aiohttp.ClientSession | None = None
        self.since: str | None = None
        self._listen_ts: int = 0
        self._buffer: list[Event] = []  # events in arrival order
        self._seen: set[str] = set()  # event_ids ever buffered
        self._consumed: set[str] = set()  # event_ids already returned
        self._invites: dict[str, list[Event]] = {}  # room_id -> invite_state
        self._invites_consumed: set[str] = set()
        self._sync_lock = asyncio.Lock()
        self.last_sync: dict[str, Any] | None = None
        self._implicit_listen = False

    def __repr__(self) -> str:
        return f"<TestUser {self.user_id}>"

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]

    # -- http -------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env=False (the default): never route 127.0.0.1 via a proxy.
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "TestUser":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        auth: bool = True,
        raw: bool = False,
    ) -> Any:
        """Call the homeserver. ``path`` must already be percent-encoded
        (use ``urllib.parse.quote(x, safe="")`` on IDs). Returns parsed JSON,
        or ``bytes`` if ``raw``. Retries on 429 after ``retry_after_ms``.
        Raises :class:`MatrixError` on other non-2xx answers."""
        url = URL(self.base_url + path, encoded=True)
        if params:
            url = url.update_query({k: str(v) for k, v in params.items() if v is not None})
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = f"Bearer {self.access_token}"
        to = aiohttp.ClientTimeout(total=timeout or self.request_timeout)
        for attempt in itertools.count():
            async with self._get_session().request(
                method, url, json=json_body, data=data, headers=hdrs, timeout=to
            ) as resp:
                body_bytes = await resp.read()
                if resp.status == 429 and attempt < self.max_429_retries:
                    delay = 1.0
                    if resp.headers.get("Retry-After", "").isdigit():
                        delay = float(resp.headers["Retry-After"])
                    try:
                        ms = json.loads(body_bytes).get("retry_after_ms")
                        if isinstance(ms, (int, float)):
                            delay = ms / 1000
                    except (ValueError, AttributeError):
                        pass
                    await asyncio.sleep(min(max(delay, 0.05), 30))
                    continue
                if resp.status >= 300:
                    try:
                        err: Any = json.loads(body_bytes)
                    except ValueError:
                        err = body_bytes.decode("utf-8", "replace")
                    raise MatrixError(method, path, resp.status, err)
                if raw:
                    return body_bytes
                return json.loads(body_bytes) if body_bytes else {}
        raise AssertionError("unreachable")

    @classmethod
    def _txn(cls) -> str:
        return f"t{time.time_ns()}.{next(cls._txn_counter)}.{secrets.token_hex(3)}"

    # -- rooms --------------------------------------------------------------

    async def whoami(self) -> dict[str, Any]:
        return await self.request("GET", "/_matrix/client/v3/account/whoami")

    async def create_room(
        self,
        name: str | None = None,
        invite: Iterable[str] = (),
        encrypted: bool = False,
        is_direct: bool = False,
        *,
        preset: str | None = None,
        topic: str | None = None,
        initial_state: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        """createRoom; returns the room_id. Default preset is private_chat
        (trusted_private_chat if ``is_direct``). ``encrypted`` only adds the
        m.room.encryption state: this client cannot encrypt."""
        body: dict[str, Any] = {
            "preset": preset or ("trusted_private_chat" if is_direct else "private_chat"),
            "invite": list(invite),
            "is_direct": is_direct,
        }
        if name is not None:
            body["name"] = name
        if topic is not None:
            body["topic"] = topic
        state = list(initial_state or [])
        if encrypted:
            state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        if state:
            body["initial_state"] = state
        body.update(extra)
        res = await self.request("POST", "/_matrix/client/v3/createRoom", json_body=body)
        return res["room_id"]

    async def invite(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        body = {"user_id": user_id, **({"reason": reason} if reason else {})}
        await self.request("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/invite", json_body=body)

    async def join(self, room_id_or_alias: str) -> str:
        res = await self.request("POST", f"/_matrix/client/v3/join/{_q(room_id_or_alias)}", json_body={})
        return res["room_id"]

    async def leave(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/leave", json_body={})

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        body = {"user_id": user_id, **({"reason": reason} if reason else {})}
        await self.request("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/kick", json_body=body)

    async def joined_members(self, room_id: str) -> dict[str, Any]:
        res = await self.request("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/joined_members")
        return res["joined"]

    async def set_displayname(self, name: str) -> None:
        await self.request(
            "PUT",
            f"/_matrix/client/v3/profile/{_q(self.user_id)}/displayname",
            json_body={"displayname": name},
        )

    # -- sending ------------------------------------------------------------

    async def send_event(self, room_id: str, type: str, content: dict[str, Any]) -> str:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/send/{_q(type)}/{_q(self._txn())}"
        res = await self.request("PUT", path, json_body=content)
        return res["event_id"]

    async def send_text(
        self,
        room_id: str,
        body: str,
        html: str | None = None,
        msgtype: str = "m.text",
        thread_root: str | None = None,
        reply_to: str | None = None,
        *,
        mentions: list[str] | None = None,
    ) -> str:
        """Send an m.room.message; returns the event_id.

        ``thread_root`` makes it a thread event (``m.thread``; ``reply_to``
        inside a thread becomes the in-thread reply target); ``reply_to``
        alone makes a plain rich reply. ``mentions`` sets ``m.mentions``."""
        content: dict[str, Any] = {"msgtype": msgtype, "body": body}
        if html is not None:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = html
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        elif reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if mentions is not None:
            content["m.mentions"] = {"user_ids": list(mentions)}
        return await self.send_event(room_id, "m.room.message", content)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        return await self.send_event(
            room_id,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
        )

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        """Redact ``event_id``; returns the redaction's event_id."""
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/redact/{_q(event_id)}/{_q(self._txn())}"
        res = await self.request("PUT", path, json_body={"reason": reason} if reason else {})
        return res["event_id"]

    async def send_state(
        self, room_id: str, type: str, state_key: str = "", content: dict[str, Any] | None = None
    ) -> str:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(type)}/{_q(state_key)}"
        res = await self.request("PUT", path, json_body=content or {})
        return res["event_id"]

    async def get_state(self, room_id: str, type: str, state_key: str = "") -> dict[str, Any]:
        """Content of one state event (MatrixError 404 if absent)."""
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(type)}/{_q(state_key)}"
        return await self.request("GET", path)

    async def get_event(self, room_id: str, event_id: str) -> Event:
        return await self.request("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/event/{_q(event_id)}")

    async def messages(
        self, room_id: str, limit: int = 100, dir: str = "b", from_token: str | None = None
    ) -> list[Event]:
        """``/messages`` chunk (newest first for ``dir="b"``)."""
        res = await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/messages",
            params={"limit": limit, "dir": dir, "from": from_token},
        )
        return res.get("chunk", [])

    # -- media --------------------------------------------------------------

    async def upload(self, data: bytes, content_type: str = "application/octet-stream", filename: str | None = None) -> str:
        """Upload bytes; returns the ``mxc://`` URI."""
        res = await self.request(
            "POST",
            "/_matrix/media/v3/upload",
            params={"filename": filename} if filename else None,
            data=data,
            headers={"Content-Type": content_type},
        )
        return res["content_uri"]

    async def download(self, mxc: str) -> bytes:
        """Download via authenticated media (``/_matrix/client/v1/media``),
        falling back to the legacy ``/_matrix/media/v3/download``."""
        if not mxc.startswith("mxc://"):
            raise ValueError(f"not an mxc URI: {mxc!r}")
        server, _, media_id = mxc[len("mxc://") :].partition("/")
        tail = f"{_q(server)}/{_q(media_id)}"
        try:
            return await self.request("GET", f"/_matrix/client/v1/media/download/{tail}", raw=True)
        except MatrixError as e:
            if e.status not in (400, 404, 405) or e.errcode not in (None, "M_UNRECOGNIZED"):
                raise
        return await self.request("GET", f"/_matrix/media/v3/download/{tail}", raw=True)

    # -- receiving ----------------------------------------------------------

    async def start_listening(self) -> str:
        """Pin the sync position to *now* and clear the buffer; only events
        arriving after this call are returned by :meth:`wait_for`."""
        async with self._sync_lock:
            self._listen_ts = int(time.time() * 1000)
            res = await self.request(
                "GET",
                "/_matrix/client/v3/sync",
                params={"filter": _POSITION_FILTER, "timeout": 0, "set_presence": "offline"},
            )
            self.since = res["next_batch"]
            self._implicit_listen = False
            self._buffer.clear()
            self._consumed.clear()
            self._invites.clear()
            self._invites_consumed.clear()
            # pending invites (from before) count as already seen
            self._invites_consumed.update((res.get("rooms") or {}).get("invite", {}).keys())
            return self.since

    async def _ensure_listening(self) -> None:
        if self.since is None:
            await self.start_listening()
            self._implicit_listen = True

    async def sync_once(self, timeout: float = 0) -> dict[str, Any]:
        """One incremental /sync (long-poll up to ``timeout`` seconds),
        buffering its timeline events. Returns the raw response."""
        await self._ensure_listening()
        async with self._sync_lock:
            res = await self.request(
                "GET",
                "/_matrix/client/v3/sync",
                params={
                    "filter": _SYNC_FILTER,
                    "since": self.since,
                    "timeout": int(timeout * 1000),
                    "set_presence": "offline",
                },
                timeout=timeout + self.request_timeout,
            )
            self._ingest(res)
            self.since = res["next_batch"]
            self.last_sync = res
            return res

    def _ingest(self, res: dict[str, Any]) -> None:
        rooms = res.get("rooms") or {}
        for section in ("join", "leave"):
            for room_id, room in (rooms.get(section) or {}).items():
                for ev in (room.get("timeline") or {}).get("events", []):
                    eid = ev.get("event_id")
                    if eid is None or eid in self._seen:
                        continue
                    # A room that is new to this sync (e.g. just joined) comes
                    # with recent history from *before* start_listening; drop it.
                    if ev.get("origin_server_ts", self._listen_ts) < self._listen_ts:
                        continue
                    self._seen.add(eid)
                    self._buffer.append({**ev, "room_id": room_id})
        for room_id, room in (rooms.get("invite") or {}).items():
            if room_id not in self._invites_consumed:
                self._invites[room_id] = (room.get("invite_state") or {}).get("events", [])

    def _take(self, room_id: str | None, predicate: Predicate | None) -> Event | None:
        for ev in self._buffer:
            if ev["event_id"] in self._consumed:
                continue
            if room_id is not None and ev["room_id"] != room_id:
                continue
            if predicate is None or predicate(ev):
                self._consumed.add(ev["event_id"])
                return ev
        return None

    def buffered(self, room_id: str | None = None) -> list[Event]:
        """All buffered events (consumed or not) since start_listening."""
        return [e for e in self._buffer if room_id is None or e["room_id"] == room_id]

    def _timeout_message(self, room_id: str | None, timeout: float, what: str) -> str:
        seen = self.buffered(room_id)
        lines = "\n".join(
            f"  {'x' if e['event_id'] in self._consumed else '-'} {_describe(e)}" for e in seen[-30:]
        )
        hint = ""
        if self._implicit_listen:
            hint = (
                "\n  hint: the sync position was pinned implicitly by the first wait_for/"
                "collect call, so earlier events are invisible; call "
                "`await user.start_listening()` before the action you wait for."
            )
        return (
            f"{self.user_id}: no {what} in {room_id or 'any room'} within {timeout}s; "
            f"{len(seen)} event(s) seen there since start_listening (x = already returned):\n"
            f"{lines or '  (none)'}{hint}"
        )

    async def wait_for(
        self,
        room_id: str | None,
        predicate: Predicate | None = None,
        timeout: float = 15,
    ) -> Event:
        """Earliest not-yet-returned event in ``room_id`` (any room if None)
        matching ``predicate`` (any event if None); syncs until it arrives.
        Raises ``TimeoutError`` listing what *was* seen."""
        await self._ensure_listening()
        deadline = time.monotonic() + timeout
        while True:
            ev = self._take(room_id, predicate)
            if ev is not None:
                return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self._timeout_message(room_id, timeout, "matching event"))
            await self.sync_once(timeout=min(remaining, 5.0))

    async def collect(
        self,
        room_id: str | None,
        predicate: Predicate | None,
        count: int,
        timeout: float = 15,
        *,
        allow_fewer: bool = False,
    ) -> list[Event]:
        """``count`` distinct matching events (in arrival order). On timeout
        raises ``TimeoutError``, or returns what it has if ``allow_fewer``."""
        await self._ensure_listening()
        got: list[Event] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            ev = self._take(room_id, predicate)
            if ev is not None:
                got.append(ev)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if allow_fewer:
                    return got
                raise TimeoutError(
                    self._timeout_message(room_id, timeout, f"{count} matching events (got {len(got)})")
                )
            await self.sync_once(timeout=min(remaining, 5.0))
        return got

    async def wait_for_invite(self, timeout: float = 15, from_sender: str | None = None) -> str:
        """Wait for a new invite; returns its room_id (does not join)."""
        await self._ensure_listening()
        deadline = time.monotonic() + timeout
        while True:
            for room_id, state in self._invites.items():
                if room_id in self._invites_consumed:
                    continue
                if from_sender is not None and not any(
                    e.get("type") == "m.room.member"
                    and e.get("state_key") == self.user_id
                    and e.get("sender") == from_sender
                    for e in state
                ):
                    continue
                self._invites_consumed.add(room_id)
                return room_id
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.user_id}: no invite within {timeout}s")
            await self.sync_once(timeout=min(remaining, 5.0))

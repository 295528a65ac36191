"""The Matrix sync loop as batches of ``Incoming`` (a mixin of the Matrix transport).

Exactly-once rules, whatever happens to the bot or the homeserver:
- our own sync token is stored in our database *after* the events of a sync were handled (nio's own
  token is saved before callbacks run, so it is not used): ``Batch.done``;
- a ``limited`` timeline is paged back with ``room_messages`` until known ground;
- nothing is handled before our own join; on the very first start, history is skipped;
- a message that cannot be decrypted yet is kept (saved with the position) and tried again after
  each sync.

Nothing here stops the loop but a cancellation or a FatalError: the homeserver unreachable (the same
round is asked for again), the database refusing writes (the position is kept in memory until it can
be saved), or a failed batch (the same round is given again).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from nio import JoinError, MessageDirection, RoomMessagesError, SyncError, SyncResponse
from nio.events import Event, InviteMemberEvent, MegolmEvent

from ess_bot.errors import FatalError
from ess_bot.framework.messages import Incoming
from ess_bot.framework.transport import Batch
from ess_bot.transports.matrix.convert import to_incoming
from ess_bot.transports.matrix.login import NETWORK_ERRORS

if TYPE_CHECKING:
    from ess_bot.app import App

log = logging.getLogger("ess_bot.transports.matrix")

SYNC_TOKEN = "matrix.sync_token"
UNDECRYPTED = "matrix.undecrypted:"  # + event id: a message whose keys have not arrived yet
MAX_DECRYPT_TRIES = 500               # syncs (about four hours of 30 s long polls) before giving up
FIRST_START_FILTER = {"room": {"timeline": {"limit": 1}}}
WATERMARK = "matrix.room_ts:"      # + room id: origin_server_ts of the newest event seen in the room
PAGE_BACK_MARGIN_MS = 5 * 60 * 1000  # overlap when filling a gap; re-seen events are skipped as processed


class MatrixSync:
    """The sync half of :class:`ess_bot.transports.matrix.MatrixTransport`."""

    async def batches(self, app: "App") -> AsyncIterator[Batch]:
        """``self._prefetched``: the first sync, asked for while the application was loading (since
        ``self._prefetched_since``; None: a first start's, history skipped). Used only if the saved
        position is still that one."""
        from ess_bot.storage.db import is_unavailable

        self._app = app
        token = await app.db.get_state(SYNC_TOKEN)
        await self._watermark("")  # the rooms' watermarks, read once while the database is there
        first_start = token is None
        prefetched = self._prefetched if self._prefetched_since == token else None
        self._prefetched = None
        delay = 0.5
        health = app.health
        first = True
        while True:
            try:
                timeout = 0 if first else self.config.matrix.sync_timeout_ms
                # the very first start skips history: one event per room is enough (and much faster)
                sync_filter = FIRST_START_FILTER if token is None else self._sync_filter
                if prefetched is not None:
                    resp, prefetched = prefetched, None
                else:
                    resp = await self.client.sync(timeout=timeout, since=token, sync_filter=sync_filter,
                                                  full_state=True if first else None)
                if isinstance(resp, SyncError):
                    if resp.status_code == "M_UNKNOWN_TOKEN":
                        log.warning("access token no longer valid; logging in again")
                        await self._password_login(device_id=self.client.device_id)
                        continue
                    raise ConnectionError(f"sync error: {resp.status_code} {resp.message}")
                health.recovered("homeserver", log)
                self._pending_watermarks.clear()
                await self._key_maintenance()
                events = await self._collect(resp, skip_history=first_start and first)
                decrypted: list[str] = []
                if self.client.olm:
                    events += await self._retry_undecrypted(decrypted)
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
                    app.watch.failed(exc, "sync")
                else:
                    log.exception("sync round failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            outcome = {"ok": True}

            async def done(next_batch=resp.next_batch, decrypted=decrypted) -> None:
                for key in decrypted:
                    await self._forget_undecrypted(key)
                await self._save_position(next_batch)

            async def failed() -> None:
                outcome["ok"] = False
                self._pending_watermarks.clear()

            yield Batch(events=events, first=first, done=done, failed=failed)
            if not outcome["ok"]:
                continue  # the same round again, from the same position
            token = resp.next_batch
            first = False
            delay = 0.5

    async def _collect(self, resp: SyncResponse, skip_history: bool) -> list[Incoming]:
        """The round's events, room by room, gaps filled, as Incoming (invites answered here)."""
        collected: list[Incoming] = []
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
            is_direct = self._is_direct(room_id)
            # No filtering by timestamp here: concurrent senders make origin_server_ts non-monotonic
            # in the timeline, so an event can arrive after a newer-stamped one. The sync token and
            # the processed-event records are what keep events from being lost or applied twice.
            for event in self._after_own_join(events):
                if isinstance(event, MegolmEvent):
                    await self._keep_undecrypted(room_id, event)
                    continue
                incoming = to_incoming(event, room_id, is_direct)
                if incoming is not None and incoming.sender != self.client.user_id:
                    collected.append(incoming)
            await self._set_watermark(room_id, events)
        return collected

    def _is_direct(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return room is not None and room.member_count <= 2 and not self._configured(room_id)

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
            await self._app.db.set_states(values)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._app.watch.failed(exc, "sync position")
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

    async def _retry_undecrypted(self, decrypted_keys: list[str]) -> list[Incoming]:
        """The kept messages whose keys have arrived, as Incoming (their keys are added to
        ``decrypted_keys``, forgotten once the batch is handled)."""
        from ess_bot.storage.db import is_unavailable

        if self._undecrypted_pending is False and not self._undecrypted_unsaved:
            return []  # nothing kept: no database read on every round
        try:
            kept = await self._app.db.states(UNDECRYPTED)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            kept = {}  # the database is down: what this run kept in memory is still tried
        kept.update(self._undecrypted_unsaved)
        self._undecrypted_pending = bool(kept)
        found: list[Incoming] = []
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
            incoming = to_incoming(decrypted, data["room_id"], self._is_direct(data["room_id"]))
            if incoming is not None and incoming.sender != self.client.user_id:
                found.append(incoming)
            decrypted_keys.append(key)
        return found

    async def _forget_undecrypted(self, key: str) -> None:
        from ess_bot.storage.db import is_unavailable

        self._undecrypted_unsaved.pop(key, None)
        try:
            await self._app.db.delete_state(key)
        except Exception as exc:  # tried again on a later round: a handled event is recorded, never re-applied
            if not is_unavailable(exc):
                raise
            self._app.watch.failed(exc, "undecrypted events")

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
                                for key, value in (await self._app.db.states(WATERMARK)).items() if value}
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

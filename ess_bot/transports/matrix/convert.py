"""Matrix events ↔ the bot's transport-neutral messages (``Incoming`` / ``Outgoing``).

Everything the Matrix specification says about message shapes lives here: msgtypes, relations
(replies, threads, reactions, edits), mentions, native polls (MSC3381), files and their references.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from nio.events import Event

from ess_bot.framework.messages import Incoming, Outgoing

POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
POLL_END_TYPES = ("org.matrix.msc3381.poll.end", "m.poll.end")
FILE_MSGTYPES = ("m.file", "m.image", "m.video", "m.audio")


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
        if msgtype == "m.notice":
            return None  # a notice is never answered by a bot (the specification's rule for bots)
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

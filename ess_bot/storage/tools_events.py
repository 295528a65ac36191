"""Pooled tools, the files seen in rooms (so that a tool can be added by replying to one), and the
network's events.

Instants are UTC (UTCDateTime). Closed-list values (tool types, phases, audiences) are stored as
short ASCII keys; tags are stored folded (``#Mois-ESS`` → ``mois-ess``) next to the label as typed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ess_bot.storage.models import Base
from ess_bot.storage.types import UTCDateTime

USER_ID = 255   # Matrix user ids
ROOM_ID = 255   # Matrix room ids
EVENT_ID = 255  # Matrix event ids
SLUG = 64       # partner slugs
KEY = 32        # closed-list keys
URL = 1000


class RoomFile(Base):
    """A file a member posted in a room the bot is in; the source of ``!outil ajouter`` by reply."""

    __tablename__ = "room_files"

    event_id: Mapped[str] = mapped_column(String(EVENT_ID), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(ROOM_ID))
    sender: Mapped[str] = mapped_column(String(USER_ID))
    msgtype: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(String(URL))          # mxc:// of an unencrypted file
    file: Mapped[dict | None] = mapped_column(JSON)               # encrypted attachment (with its key)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(Integer)
    mimetype: Mapped[str | None] = mapped_column(String(255))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_room_files_room", "room_id"),)


class Tool(Base):
    """A pooled tool: a link, a file from a room, or both. Removed tools are kept (``removed_at``)."""

    __tablename__ = "tools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    title_key: Mapped[str] = mapped_column(String(200))           # folded title, for duplicates and sorting
    type: Mapped[str] = mapped_column(String(KEY))
    phase: Mapped[str | None] = mapped_column(String(KEY))
    description: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(URL))
    file_url: Mapped[str | None] = mapped_column(String(URL))     # mxc:// (unencrypted)
    file_info: Mapped[dict | None] = mapped_column(JSON)          # encrypted attachment, if any
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_size: Mapped[int | None] = mapped_column(Integer)
    file_mimetype: Mapped[str | None] = mapped_column(String(255))
    file_msgtype: Mapped[str | None] = mapped_column(String(32))
    source_event_id: Mapped[str | None] = mapped_column(String(EVENT_ID))  # the file message it came from
    partner: Mapped[str] = mapped_column(String(SLUG))            # contributing partner
    created_by: Mapped[str] = mapped_column(String(USER_ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(USER_ID))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_by: Mapped[str | None] = mapped_column(String(USER_ID))

    __table_args__ = (Index("ix_tools_title_key", "title_key"), Index("ix_tools_partner", "partner"))


class ToolTag(Base):
    __tablename__ = "tool_tags"

    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)   # folded: "mois-ess"
    label: Mapped[str] = mapped_column(String(64))                   # as typed: "Mois-ESS"

    __table_args__ = (Index("ix_tool_tags_tag", "tag"),)


class ToolServing(Base):
    """One time a tool was handed out (its file re-sent or its link given alone)."""

    __tablename__ = "tool_servings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    served_at: Mapped[datetime] = mapped_column(UTCDateTime())
    room_id: Mapped[str] = mapped_column(String(ROOM_ID))

    __table_args__ = (Index("ix_tool_servings_tool", "tool_id"),)


class NetworkEvent(Base):
    """An event announced to the network (inauguration, workshop…). ``sequence`` grows at every
    change, as the iCalendar SEQUENCE of its stable UID; ``rooms`` are where it was announced."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    location: Mapped[str | None] = mapped_column(String(300))
    link: Mapped[str | None] = mapped_column(String(URL))
    audience: Mapped[list] = mapped_column(JSON, default=list)      # closed-list keys
    tags: Mapped[list] = mapped_column(JSON, default=list)          # labels as typed, without "#"
    partner: Mapped[str] = mapped_column(String(SLUG))              # organiser: a partner slug or "reseau"
    rooms: Mapped[list] = mapped_column(JSON, default=list)         # room ids it was announced in
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(USER_ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(USER_ID))

    __table_args__ = (Index("ix_events_start", "cancelled", "start_at"),)

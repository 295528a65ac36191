"""Core tables: what the bot needs to run exactly once, whatever the transport.

Domain tables (accompaniments, meetings, tools, events) live in their own modules and register
on the same ``Base``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ess_bot.storage.types import UTCDateTime


class Base(DeclarativeBase):
    pass


def only_on(dialect: str, index: Index) -> Index:
    """An index created on one database only (``create_all`` honours ``ddl_if``; :func:`include_object`
    tells Alembic's autogenerate not to want it elsewhere)."""
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


def include_object(dialect: str):
    """Alembic's ``include_object`` for a database of ``dialect``: leaves out the indexes
    :func:`only_on` reserves for another database."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        wanted = obj.info.get("only_on") if type_ == "index" and not reflected else None
        return wanted is None or wanted == dialect
    return include


class ProcessedEvent(Base):
    """An incoming event the bot has handled; written in the same transaction as its effect."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    command: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """A message to send. Written with the effect that caused it, sent later with a stable txn id."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict] = mapped_column(JSON)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    tag: Mapped[str | None] = mapped_column(String(128))
    source_event_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    event_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_pending", "sent_at", "id"), Index("ix_outbox_tag", "tag"))


class ScheduledJob(Base):
    """Something to do at a given time (reminders, poll deadlines…). The single source of truth."""

    __tablename__ = "scheduled_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|late|skipped|cancelled|failed
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_jobs_due", "status", "run_at"),)


class BotState(Base):
    """Small key/value facts: our own sync token, first start time, per-room watermarks."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

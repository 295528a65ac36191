"""Network gatherings: a meeting, its candidate dates (options) and the members' answers (votes).

A meeting is first a poll (``status="poll"``), then has a fixed date (``"fixed"``), or is cancelled.
Votes are kept as a log: one row per answer given (a reaction, a ``!reunion dispo`` line, a native
poll response). A member's answer for a date is the latest row still standing (a redacted reaction
or a superseded poll response is ``withdrawn``); explicit answers (reaction, text) take precedence
over the native poll. Instants are UTC (UTCDateTime).

:func:`meeting_end` is the end of a meeting computed by the database (``starts_at`` plus
``duration_minutes``), so that "not over yet" is filtered in SQL on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from ess_bot.storage.models import Base
from ess_bot.storage.types import UTCDateTime

USER_ID = 255

# meeting statuses
POLL = "poll"
FIXED = "fixed"
CANCELLED = "cancelled"

# answers and their sources
YES, MAYBE, NO = "oui", "sibesoin", "non"
ANSWERS = (YES, MAYBE, NO)
SOURCE_REACTION, SOURCE_TEXT, SOURCE_POLL = "reaction", "text", "poll"


class Meeting(Base):
    """One gathering of the network. ``id`` is the number shown to people (``!reunion etat 3``)."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=POLL)
    location: Mapped[str] = mapped_column(String(200), default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    room_id: Mapped[str] = mapped_column(String(255))             # where the poll was posted
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())     # the poll closes by itself then
    native_poll: Mapped[bool] = mapped_column(Boolean, default=False)  # a native Matrix poll was posted too
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # once fixed
    chosen_option_id: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer, default=0)     # iCalendar SEQUENCE: +1 on every change
    created_by: Mapped[str] = mapped_column(String(USER_ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(USER_ID))  # None when closed at the deadline
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(USER_ID))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(280))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_meetings_status_start", "status", "starts_at"),)


class MeetingOption(Base):
    """A candidate date of a poll, numbered from 1 in date order."""

    __tablename__ = "meeting_options"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")            # why it was proposed, what it risks

    __table_args__ = (UniqueConstraint("meeting_id", "position", name="uq_meeting_options_position"),)


class MeetingVote(Base):
    """One answer given by a member for one date.

    ``event_id`` is the event that carried it: the reaction (so that redacting the reaction
    withdraws the answer), the ``!reunion dispo`` message, or the native poll response.
    """

    __tablename__ = "meeting_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    option_id: Mapped[int] = mapped_column(ForeignKey("meeting_options.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID))
    answer: Mapped[str] = mapped_column(String(16))              # oui | sibesoin | non
    source: Mapped[str] = mapped_column(String(16))              # reaction | text | poll
    event_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_meeting_votes_option_user", "option_id", "user_id"),
        Index("ix_meeting_votes_meeting", "meeting_id"),
        Index("ix_meeting_votes_event", "event_id"),
    )


# -- SQL helpers ---------------------------------------------------------------------------------

class minutes_after(FunctionElement):  # noqa: N801 - reads like a SQL function
    """``instant + minutes`` computed by the database: ``minutes_after(Meeting.starts_at, Meeting.duration_minutes)``.

    Typed UTCDateTime, so that comparing it with an aware datetime binds a naive UTC value, as stored.
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "minutes_after"


@compiles(minutes_after, "sqlite")
def _minutes_after_sqlite(element, compiler, **kw):  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' text
    instant, minutes = (compiler.process(c, **kw) for c in element.clauses)
    return f"datetime({instant}, '+' || ({minutes}) || ' minutes')"


@compiles(minutes_after, "postgresql")
def _minutes_after_postgresql(element, compiler, **kw):
    instant, minutes = (compiler.process(c, **kw) for c in element.clauses)
    return f"({instant} + make_interval(mins => {minutes}))"


@compiles(minutes_after)
def _minutes_after_default(element, compiler, **kw):
    instant, minutes = (compiler.process(c, **kw) for c in element.clauses)
    return f"({instant} + ({minutes}) * INTERVAL '1' MINUTE)"


def meeting_end() -> ColumnElement:
    """The end of a meeting (NULL while it has no date), as an SQL expression."""
    return minutes_after(Meeting.starts_at, Meeting.duration_minutes)

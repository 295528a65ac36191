"""The network's agenda: every :class:`CalendarSource` (events, network meetings…) merged.

Used by ``!agenda`` and by the subscribable calendar feed (``/agenda.ics``). The sources are given at
construction; the service knows nothing about what they are.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.clock import Clock
from ess_bot.ics import build_calendar
from ess_bot.services.agenda import AgendaEntry, CalendarSource, merged_entries

HORIZON = timedelta(days=2 * 366)  # how far ahead "upcoming" looks
FEED_NAME = "Agenda du réseau ESS Bourgogne-Franche-Comté"


def month_bounds(year: int, month: int, tz) -> tuple[datetime, datetime]:
    """[first day 00:00, first day of the next month 00:00) in ``tz``."""
    start = datetime.combine(date(year, month, 1), time(0), tzinfo=tz)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return start, datetime.combine(nxt, time(0), tzinfo=tz)


class AgendaService:
    def __init__(self, sources: Sequence[CalendarSource], clock: Clock):
        self.sources = tuple(sources)
        self.clock = clock

    async def entries(self, session: AsyncSession, start: datetime, end: datetime) -> list[AgendaEntry]:
        """Every source's entries overlapping [start, end), sorted by start then title."""
        return await merged_entries(session, list(self.sources), start, end)

    async def upcoming(self, session: AsyncSession, now: datetime, limit: int | None = None) -> list[AgendaEntry]:
        """Entries not finished at ``now`` (within the horizon), soonest first."""
        entries = [e for e in await self.entries(session, now, now + HORIZON) if e.end > now]
        return entries[:limit] if limit else entries

    async def month(self, session: AsyncSession, year: int, month: int) -> list[AgendaEntry]:
        start, end = month_bounds(year, month, self.clock.tz)
        return await self.entries(session, start, end)

    async def feed(self, session: AsyncSession) -> bytes:
        """The whole upcoming agenda as one iCalendar file (no attendee names, ever)."""
        now = self.clock.now()
        items = [e.calendar_item() for e in await self.upcoming(session, now) if not e.cancelled]
        return build_calendar(items, self.clock.tz, now, name=FEED_NAME)

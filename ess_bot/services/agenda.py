"""What the network's calendar is made of: entries from several sources (events, meetings), merged.

A domain service that has dated things implements :class:`CalendarSource`; the agenda, the calendar
feed and the meeting date scorer read every source through it, without knowing the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.ics import CalendarItem


@dataclass(frozen=True)
class AgendaEntry:
    kind: str                 # "reunion" (network meeting) | "evenement" (event)
    ident: int
    title: str
    start: datetime           # aware
    end: datetime             # aware
    location: str = ""
    url: str = ""
    organiser: str = ""       # partner name, or "Réseau"
    audience: str = ""
    cancelled: bool = False
    sequence: int = 0
    uid: str = ""
    categories: tuple[str, ...] = ()   # tags → CATEGORIES

    def calendar_item(self) -> CalendarItem:
        """The VEVENT of this entry — the one builder for announcements and the feed, so they agree."""
        lines = [f"Organisé par {self.organiser}"] if self.organiser else []
        if self.audience:
            lines.append(f"Public : {self.audience}")
        return CalendarItem(uid=self.uid, title=self.title, start=self.start, end=self.end, location=self.location,
                            url=self.url, sequence=self.sequence, cancelled=self.cancelled,
                            description="\n".join(lines), categories=self.categories)


class CalendarSource(Protocol):
    async def calendar_items(self, session: AsyncSession, start: datetime, end: datetime) -> list[AgendaEntry]:
        """Entries overlapping [start, end), cancelled ones excluded unless they matter to the caller."""
        ...


async def merged_entries(session: AsyncSession, sources: list[CalendarSource], start: datetime,
                         end: datetime) -> list[AgendaEntry]:
    """Every source's entries in [start, end), sorted by start then title."""
    entries: list[AgendaEntry] = []
    for source in sources:
        entries.extend(await source.calendar_items(session, start, end))
    return sorted(entries, key=lambda e: (e.start, e.title))

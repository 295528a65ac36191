"""iCalendar files for meetings, events and the calendar feed (RFC 5545, via ``icalendar``).

One builder for every use: announcements (METHOD:PUBLISH), updates (higher SEQUENCE, same UID),
cancellations (STATUS:CANCELLED) and the subscribable feed (no attendee names, ever).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo


PRODID = "-//ess-bot//Réseau ESS Bourgogne-Franche-Comté//FR"
UID_DOMAIN = "ess-bot"


@dataclass(frozen=True)
class CalendarItem:
    """One VEVENT. ``uid`` must stay the same across updates; ``sequence`` grows at each one."""

    uid: str
    title: str
    start: datetime
    end: datetime
    location: str = ""
    description: str = ""
    url: str = ""
    sequence: int = 0
    cancelled: bool = False
    categories: tuple[str, ...] = ()


def make_uid(kind: str, ident: int | str) -> str:
    """A stable UID such as ``meeting-12@ess-bot``."""
    return f"{kind}-{ident}@{UID_DOMAIN}"


def build_calendar(items: list[CalendarItem], tz: tzinfo, now: datetime, *, name: str | None = None,
                   method: str = "PUBLISH") -> bytes:
    """The ``.ics`` bytes for ``items``, start/end in ``tz`` with a matching VTIMEZONE."""
    from icalendar import Calendar, Event  # loaded on first use: a faster bot start

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    stamp = now.astimezone(timezone.utc)
    for item in items:
        ev = Event()
        ev.add("uid", item.uid)
        ev.add("dtstamp", stamp)
        ev.add("dtstart", item.start.astimezone(tz))
        ev.add("dtend", item.end.astimezone(tz))
        ev.add("summary", item.title)
        ev.add("sequence", item.sequence)
        ev.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
        if item.location:
            ev.add("location", item.location)
        if item.description:
            ev.add("description", item.description)
        if item.url:
            ev.add("url", item.url)
        if item.categories:
            ev.add("categories", list(item.categories))
        cal.add_component(ev)
    if items:
        _add_timezones(cal, items, tz)
    return cal.to_ical()


def _add_timezones(cal, items: list[CalendarItem], tz: tzinfo) -> None:
    """The VTIMEZONE of ``tz``, covering the years of ``items`` only, with a French comment.

    icalendar writes its own English COMMENT ("This timezone only works from … to …"), and by default
    spans 1970–2038: a narrower span is smaller and faster to build, and still covers every event.
    """
    starts = [item.start.astimezone(tz) for item in items]
    ends = [item.end.astimezone(tz) for item in items]
    first = date(min(starts + ends).year, 1, 1)
    last = date(min(max(starts + ends).year + 1, 9999), 1, 1)
    cal.add_missing_timezones(first_date=first, last_date=last)
    for vtimezone in cal.walk("VTIMEZONE"):
        vtimezone.pop("COMMENT", None)
        vtimezone.add("comment", f"Fuseau horaire valable du {first:%d/%m/%Y} au {last:%d/%m/%Y}.")

"""French wording of dates, durations and lists, shared by every command."""

from __future__ import annotations

from datetime import date, datetime

WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre")


def date_fr(d: date | datetime, weekday: bool = True) -> str:
    """``mardi 24 novembre 2026`` (``1er`` for the first of the month)."""
    day = "1er" if d.day == 1 else str(d.day)
    text = f"{day} {MONTHS_FR[d.month - 1]} {d.year}"
    return f"{WEEKDAYS_FR[d.weekday()]} {text}" if weekday else text


def time_fr(dt: datetime) -> str:
    """``14 h`` or ``9 h 30``."""
    return f"{dt.hour} h" if dt.minute == 0 else f"{dt.hour} h {dt.minute:02d}"


def datetime_fr(dt: datetime) -> str:
    return f"{date_fr(dt)} à {time_fr(dt)}"


def minutes_fr(minutes: int) -> str:
    """``90`` → ``1 h 30``, ``45`` → ``45 min``, ``120`` → ``2 h``."""
    hours, mins = divmod(int(minutes), 60)
    if hours and mins:
        return f"{hours} h {mins:02d}"
    if hours:
        return f"{hours} h"
    return f"{mins} min"


def elapsed_fr(seconds: float) -> str:
    """An uptime: ``moins d'une minute``, ``12 min``, ``3 h 05``, ``2 j 4 h``."""
    seconds = int(seconds)
    if seconds < 60:
        return "moins d'une minute"
    minutes = seconds // 60
    if minutes < 24 * 60:
        return minutes_fr(minutes)
    days, rest = divmod(minutes, 24 * 60)
    return f"{days} j {rest // 60} h"


def join_fr(items: list[str], last: str = "et") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def pill(user_id: str, name: str | None = None) -> str:
    """A Markdown link that Matrix clients render as a mention pill."""
    return f"[{name or user_id}](https://matrix.to/#/{user_id})"

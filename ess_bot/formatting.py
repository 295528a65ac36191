"""French wording of dates, durations and lists, shared by every command."""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import quote as _url_quote

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
    """A Markdown link that Matrix clients render as a mention pill. Only the bot makes them: the
    renderer turns ``mxpill:`` into a matrix.to link and refuses matrix.to links written any other way."""
    return f"[{md_escape(name or user_id)}](mxpill:{_url_quote(user_id, safe='@:!#$+=~')})"


# -- user text in Markdown -------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()>#+\-.!])")
LINK_SCHEMES = ("http://", "https://", "mailto:")


def md_escape(text: object) -> str:
    """Any text a person or the configuration provided, ready to sit in a Markdown reply: each
    character Markdown would read as markup is backslash-escaped, so it shows as typed (the plain
    body gets it back without the backslash). Raw HTML needs nothing here: the renderer never lets it
    through."""
    return _MD_SPECIAL.sub(r"\\\1", str(text if text is not None else ""))


def md_code(text: object) -> str:
    """Text shown as inline code (a command to copy, a typed value): a backtick fence longer than any
    run of backticks in the text, so the text cannot close it."""
    value = str(text if text is not None else "").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or longest else ""
    return f"{fence}{pad}{value}{pad}{fence}" if value else ""


def safe_url(url: str) -> str | None:
    """``url`` if it is an ``http``, ``https`` or ``mailto`` link that is not a matrix.to one (a
    matrix.to link would draw a mention pill), else None."""
    value = (url or "").strip()
    lowered = value.lower()
    if not lowered.startswith(LINK_SCHEMES) or "matrix.to" in lowered.split("/")[2:3] or \
            any(c.isspace() or ord(c) < 32 for c in value):
        return None
    return value


def md_link(text: object, url: str) -> str:
    """A Markdown link to ``url`` when it is safe (:func:`safe_url`), else the text and the address as
    plain text. The characters Markdown would end a link destination on are percent-encoded."""
    checked = safe_url(url)
    if checked is None:
        return md_escape(text) if str(text) == (url or "") else f"{md_escape(text)} ({md_escape(url)})"
    target = checked.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return f"[{md_escape(text)}]({target})"

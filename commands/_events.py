"""Shared by !outil, !evenement, !agenda and !permanence: option parsing, French dates and times
(future-oriented), event cards, announcements and the reminder job.

Not a command module (the leading underscore keeps it out of the registry); ``commands.evenement``
exports :data:`JOB_HANDLERS`.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterator

from sqlalchemy import select

from ess_bot.config import Config
from ess_bot.formatting import MONTHS_FR, WEEKDAYS_FR, date_fr, datetime_fr, join_fr, time_fr
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import ChoiceError, match_choice
from ess_bot.scheduler import JobContext
from ess_bot.services.events import (AUDIENCES, NETWORK, NETWORK_LABEL, Change, EventError, EventView, NotFound,
                                     when_fr)
from ess_bot.services.tools import ToolError
from ess_bot.storage.models import ScheduledJob
from ess_bot.text import closest, escape_html, fold
from ess_bot.vocabulary import ChoiceList

REMINDER_KIND = "event_reminder"


def ex(ctx: Context, example: str) -> str:
    """An example written with "!" shown with the configured prefix."""
    return ctx.prefix + example[1:] if example.startswith("!") else example


def q(value: str) -> str:
    """How a typed value is named in a message: « valeur » (angle brackets neutralised)."""
    return "« " + value.replace("<", "‹").replace(">", "›") + " »"


def safe(text: str) -> str:
    """User text shown in a Markdown reply: no raw HTML."""
    return (text or "").replace("<", "‹").replace(">", "›")


@contextmanager
def domain_errors(ctx: Context, example: str | None = None) -> Iterator[None]:
    """Turn refusals of the tool and event services into a French reply with an example."""
    try:
        yield
    except (ToolError, EventError) as exc:
        message = exc.message
        if example and "xemple" not in message:
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None


# -- arguments -----------------------------------------------------------------------------------

_OPTION = re.compile(r"^([^\W\d][\w\-']*)\s*=(.*)$", re.S)
_LINK = re.compile(r"^<?https?://", re.I)


@dataclass
class Args:
    words: list[str] = field(default_factory=list)      # plain tokens, in order
    options: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)       # without "#"
    links: list[str] = field(default_factory=list)


def split_args(ctx: Context, args: list[str], keys: dict[str, tuple[str, ...]], example: str) -> Args:
    """Sort tokens into words, ``key=value`` options (``keys``: canonical → aliases), ``#tags`` and links.

    Unknown, empty or repeated options are refused with the list of possible ones and ``example``.
    """
    lookup = {fold(k): k for k in keys} | {fold(a): k for k, aliases in keys.items() for a in aliases}
    out = Args()
    for tok in args:
        if _LINK.match(tok):
            out.links.append(tok.strip("<>"))
            continue
        if tok.startswith("#") and len(tok) > 1:
            out.tags += [t for t in tok.split("#") if t.strip(" ,")]
            continue
        m = _OPTION.match(tok)
        if m is None:
            out.words.append(tok)
            continue
        key = lookup.get(fold(m.group(1)))
        if key is None:
            possible = ", ".join(f"`{k}=`" for k in keys)
            raise UserError(f"Option inconnue : {q(m.group(1) + '=')}. Options possibles : {possible}.\n"
                            f"Exemple : `{ex(ctx, example)}`")
        value = m.group(2).strip()
        if not value:
            raise UserError(f"L'option `{key}=` n'a pas de valeur. Exemple : `{ex(ctx, example)}`")
        if key in out.options:
            raise UserError(f"L'option `{key}=` est donnée deux fois. Gardez-en une seule.")
        out.options[key] = value
    out.tags = [t.strip(" ,") for t in out.tags]
    return out


def record_id(ctx: Context, args: list[str], what: str, example: str) -> int:
    """``12``, ``n°12``, ``#12`` → 12; a French refusal otherwise."""
    text = args[0] if args else ""
    m = re.fullmatch(r"(?:n°|no|n|#)?\s*(\d{1,9})", text.strip(), re.I)
    if m is None:
        shown = q(text) if text else "rien"
        raise UserError(f"Il faut le numéro {what} (j'ai reçu {shown}). Exemple : `{ex(ctx, example)}`")
    return int(m.group(1))


def match_closed(ctx: Context, text: str, clist: ChoiceList, example: str) -> str:
    """A closed-list key from what was typed (accents, case and separators ignored; prefixes accepted)."""
    try:
        return match_choice(text, clist).key
    except ChoiceError as exc:
        raise UserError(f"{exc.message}\nExemple : `{ex(ctx, example)}`") from None


def match_closed_list(ctx: Context, text: str, clist: ChoiceList, example: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in re.split(r"[,;+]", text):
        if part.strip():
            key = match_closed(ctx, part.strip(), clist, example)
            if key not in out:
                out.append(key)
    return tuple(out)


# -- dates and times (future-oriented) ------------------------------------------------------------

MONTHS = {fold(m): i + 1 for i, m in enumerate(MONTHS_FR)} | {
    "janv": 1, "jan": 1, "fev": 2, "fevr": 2, "avr": 4, "juil": 7, "sept": 9, "sep": 9, "oct": 10, "nov": 11,
    "dec": 12}
WEEKDAY_KEYS = {fold(d): i for i, d in enumerate(WEEKDAYS_FR)}
DATE_EXAMPLE = "`15/01/2027 18h`, `15 janvier 2027 18h30`, `demain 9h`"
_NUM_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2})\s*(?:[hH:](\d{2})?|[hH])$")
_TIME_RANGE = re.compile(r"^(\d{1,2}(?:[hH:]\d{0,2})?)\s*[-–à]\s*(\d{1,2}(?:[hH:]\d{0,2})?)$")
CONNECTORS = {"le", "a", "à", "de", "du", "au", "des", "l'", "jusqu'a", "jusqu'à", "-", "–"}


def _make_date(ctx: Context, y: int, m: int, d: int, text: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise UserError(f"Cette date n'existe pas : {q(text)}. Exemples : {DATE_EXAMPLE}.") from None


def _upcoming(ctx: Context, m: int, d: int, today: date, text: str) -> date:
    """Day and month without a year: this year's, or next year's if already past."""
    found = _make_date(ctx, today.year, m, d, text) if not (m == 2 and d == 29) else None
    if found is None or found < today:
        for y in (today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4):
            try:
                cand = date(y, m, d)
            except ValueError:
                continue
            if cand >= today:
                return cand
        raise UserError(f"Cette date n'existe pas : {q(text)}. Exemples : {DATE_EXAMPLE}.")
    return found


def parse_time(text: str) -> time | None:
    """``18h``, ``18h30``, ``18:30``, ``9H`` → time; None if it does not look like a time."""
    m = _TIME.match(text.strip())
    if m is None:
        return None
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    if h > 23 or mi > 59:
        raise UserError(f"Heure impossible : {q(text)}. Exemples : `18h`, `18h30`, `9:15`.")
    return time(h, mi)


def match_date(ctx: Context, words: list[str], i: int, today: date) -> tuple[date, int] | None:
    """A date starting at ``words[i]``: (date, number of words used), or None."""
    w = fold(words[i]).rstrip(".,")
    if w in ("demain",):
        return today + timedelta(days=1), 1
    if w in ("aujourd'hui", "aujourdhui", "auj"):
        return today, 1
    if w in ("apres-demain",):
        return today + timedelta(days=2), 1
    m = _ISO_DATE.match(w)
    if m:
        return _make_date(ctx, int(m.group(1)), int(m.group(2)), int(m.group(3)), words[i]), 1
    m = _NUM_DATE.match(w)
    if m:
        d, mo, y = int(m.group(1)), int(m.group(2)), m.group(3)
        if y is None:
            return _upcoming(ctx, mo, d, today, words[i]), 1
        return _make_date(ctx, int(y) + (2000 if len(y) == 2 else 0), mo, d, words[i]), 1
    start = i
    weekday = None
    if w in WEEKDAY_KEYS and i + 1 < len(words):
        weekday = WEEKDAY_KEYS[w]
        i += 1
        w = fold(words[i]).rstrip(".,")
    if (w.isdigit() or w == "1er") and i + 1 < len(words) and fold(words[i + 1]).rstrip(".,") in MONTHS:
        d = 1 if w == "1er" else int(w)
        mo = MONTHS[fold(words[i + 1]).rstrip(".,")]
        used = i + 2 - start
        text = " ".join(words[start:start + used])
        if i + 2 < len(words) and re.fullmatch(r"\d{4}", words[i + 2]):
            found = _make_date(ctx, int(words[i + 2]), mo, d, text + " " + words[i + 2])
            used += 1
        else:
            found = _upcoming(ctx, mo, d, today, text)
        if weekday is not None and found.weekday() != weekday:
            raise UserError(f"Le {date_fr(found, weekday=False)} est un {WEEKDAYS_FR[found.weekday()]}, pas un "
                            f"{WEEKDAYS_FR[weekday]}. Vérifiez la date.")
        return found, used
    return None


@dataclass
class When:
    day: date | None = None
    start: time | None = None
    end: time | None = None
    rest: list[str] = field(default_factory=list)   # the words that are not part of the date


def find_when(ctx: Context, words: list[str], today: date) -> When:
    """Pick a date and a start time (and maybe ``18h-21h``) out of ``words``; the rest is kept."""
    out = When()
    used: set[int] = set()
    i = 0
    while i < len(words):
        tok = words[i]
        if out.day is None:
            found = match_date(ctx, words, i, today)
            if found is not None:
                out.day = found[0]
                used.update(range(i, i + found[1]))
                i += found[1]
                continue
        if out.start is None:
            m = _TIME_RANGE.match(tok)
            if m and parse_time(m.group(1)) is not None and parse_time(m.group(2)) is not None:
                out.start, out.end = parse_time(m.group(1)), parse_time(m.group(2))
                used.add(i)
                i += 1
                continue
            t = parse_time(tok)
            if t is not None:
                out.start = t
                used.add(i)
                i += 1
                continue
        i += 1
    # connectors next to the date ("le 15/01 à 18h") are not part of the title
    for j, w in enumerate(words):
        if j not in used and fold(w) in CONNECTORS and ((j + 1) in used or (j - 1) in used):
            used.add(j)
    out.rest = [w for j, w in enumerate(words) if j not in used]
    return out


def parse_moment(ctx: Context, text: str, today: date, default_day: date | None, what: str,
                 example: str) -> tuple[date, time | None]:
    """A ``fin=``/``date=`` value: ``21h`` (on ``default_day``), ``16/01/2027``, ``16/01/2027 12h``."""
    words = text.replace(",", " ").split()
    when = find_when(ctx, words, today)
    leftovers = [w for w in when.rest if fold(w) not in CONNECTORS]
    if leftovers or (when.day is None and when.start is None):
        raise UserError(f"{what.capitalize()} illisible : {q(text)}. Exemples : {DATE_EXAMPLE}.\n"
                        f"Exemple : `{ex(ctx, example)}`")
    day = when.day or default_day
    if day is None:
        raise UserError(f"Précisez le jour pour {what} : {q(text)}. Exemple : `{ex(ctx, example)}`")
    return day, when.start


def at(config: Config, day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=config.bot.tz)


# -- rooms ---------------------------------------------------------------------------------------

def announcement_rooms(config: Config) -> tuple[str, ...]:
    """Where an event is announced: the announcement rooms, and the partner rooms if configured."""
    rooms = list(config.rooms.announcements)
    if config.events.announce_in_partner_rooms:
        rooms += [p.room for p in config.partners if p.room]
    return tuple(dict.fromkeys(rooms))


def room_label(config: Config, room_id: str) -> str:
    if room_id in config.rooms.announcements:
        n = config.rooms.announcements.index(room_id)
        return "le salon d'annonces" + (f" n°{n + 1}" if len(config.rooms.announcements) > 1 else "")
    if room_id == config.rooms.coordination:
        return "le salon de coordination"
    partner = config.partner_by_room(room_id)
    if partner is not None:
        return f"le salon {de_fr(partner.name)}"
    return f"le salon {room_id}"


def de_fr(name: str) -> str:
    """``de BGE``, ``d'URSCOP``, ``d'Aldess`` (elision before a vowel)."""
    return ("d'" if fold(name[:1]) in "aeiouy" and name[:1] else "de ") + name


def announce_tag(event_id: int, room_id: str) -> str:
    """The outbox tag of an event's first announcement in a room (later notices reply to it)."""
    return f"event:{event_id}:" + hashlib.sha1(room_id.encode()).hexdigest()[:12]


def reminder_key(event_id: int, days: int, sequence: int) -> str:
    return f"event:{event_id}:reminder:{days}" + (f":{sequence}" if sequence else "")


def ics_filename(view: EventView) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(view.title)).strip("-")[:50].strip("-")
    return f"{slug or 'evenement'}-{view.id}.ics"


# -- cards ---------------------------------------------------------------------------------------

def event_card(view: EventView, headline: str, *, extra: list[str] | None = None,
               footer: str | None = None) -> tuple[str, str]:
    """(Markdown, HTML) of an event card: title, date in French, place, organiser, audience, link."""
    rows: list[tuple[str, str, str]] = [("Quand", when_fr(view.start, view.end), "")]
    if view.location:
        rows.append(("Où", view.location, ""))
    rows.append(("Organisé par", NETWORK_LABEL if view.partner == NETWORK else view.organiser, ""))
    if view.audience:
        rows.append(("Public", ", ".join(view.audience_labels), ""))
    if view.link:
        rows.append(("Inscription", view.link, view.link))
    md = [f"{headline} **{safe(view.title)}**"]
    md += [f"**{k} :** {safe(v)}" for k, v, _ in rows]
    html = [f"<p>{headline} <strong>{escape_html(view.title)}</strong></p>", "<ul>"]
    for k, v, href in rows:
        value = f'<a href="{escape_html(href)}">{escape_html(v)}</a>' if href else escape_html(v)
        html.append(f"<li><strong>{k} :</strong> {value}</li>")
    html.append("</ul>")
    if view.tags:
        tags = " ".join(f"#{t}" for t in view.tags)
        md.append(tags)
        html.append(f"<p>{escape_html(tags)}</p>")
    for line in extra or []:
        md.append(safe(line))
        html.append(f"<p>{escape_html(line)}</p>")
    if footer:
        md.append(footer)
        html.append(f"<p><em>{escape_html(footer)}</em></p>")
    return "\n".join(md), "".join(html)


def changes_lines(changes: list[Change]) -> list[str]:
    return [f"{c.field.capitalize()} : {c.old} → {c.new}" for c in changes]


def relative_day(start: datetime, now: datetime) -> str:
    days = (start.date() - now.astimezone(start.tzinfo).date()).days
    if days <= 0:
        return f"aujourd'hui à {time_fr(start)}"
    if days == 1:
        return f"demain à {time_fr(start)}"
    return f"dans {days} jours, le {date_fr(start)} à {time_fr(start)}"


def announce_event(ctx, view: EventView, ics: bytes, headline: str, *, extra: list[str] | None = None,
                   footer: str | None = None, first: bool = False) -> None:
    """Post the card, then the .ics file, in every room of the event (``ctx``: a Context or JobContext)."""
    markdown, html = event_card(view, headline, extra=extra, footer=footer)
    for room in view.rooms:
        out = ctx.announce(room, markdown, html=html, tag=announce_tag(view.id, room) if first else None)
        if not first:
            out.reply_to = "tag:" + announce_tag(view.id, room)
        ctx.announce_file(room, ics_filename(view), ics, "text/calendar")


def schedule_reminders(ctx: Context, view: EventView) -> list[tuple[int, datetime]]:
    plan = ctx.services.events.reminders(view)
    for n, when in plan:
        ctx.schedule(REMINDER_KIND, when, {"event_id": view.id, "days": n, "sequence": view.sequence},
                     key=reminder_key(view.id, n, view.sequence))
    return plan


def reminders_text(config: Config, plan: list[tuple[int, datetime]]) -> str:
    if not config.events.reminder_days:
        return "aucun (les rappels sont désactivés dans la configuration)"
    if not plan:
        return "aucun (l'événement est trop proche)"
    return join_fr([f"J-{n} ({date_fr(when, weekday=False)})" for n, when in plan])


# -- the reminder job ------------------------------------------------------------------------------

async def reminder_job(jc: JobContext) -> None:
    """``event_reminder``: remind every room of the event, J-N before it."""
    p = jc.job.payload
    try:
        view = await jc.services.events.get(jc.session, int(p["event_id"]))
    except NotFound:
        jc.status, jc.note = "skipped", "événement introuvable"
        return
    now = jc.clock.now()
    if view.cancelled:
        jc.status, jc.note = "skipped", "événement annulé"
        return
    if view.sequence != p.get("sequence", 0):
        jc.status, jc.note = "skipped", "événement modifié depuis : un autre rappel est prévu"
        return
    if view.start <= now:
        jc.status, jc.note = "skipped", "événement déjà commencé ou passé"
        return
    if jc.late and await _closer_reminder_due(jc, view.id, int(p.get("days", 0)), now):
        jc.status, jc.note = "skipped", "un rappel plus proche de l'événement part à sa place"
        return
    extra = []
    if jc.late:
        planned = jc.job.run_at.astimezone(jc.clock.tz)
        extra.append(f"(Rappel prévu le {datetime_fr(planned)}, envoyé en retard : le bot était indisponible.)")
    announce_event(jc, view, jc.services.events.ics(view), "⏰ Rappel :",
                   extra=[f"C'est {relative_day(view.start, now)}.", *extra])


async def _closer_reminder_due(jc: JobContext, event_id: int, days: int, now: datetime) -> bool:
    """A missed J-7 is pointless when the J-1 of the same event is due too: only the latter is sent."""
    jobs = (await jc.session.scalars(select(ScheduledJob).where(ScheduledJob.status == "pending")
                                     .where(ScheduledJob.key.startswith(f"event:{event_id}:reminder:"))
                                     .where(ScheduledJob.run_at <= now)
                                     .where(ScheduledJob.id != jc.job.id))).all()
    return any(int((j.payload or {}).get("days", 0)) < days for j in jobs)


JOB_HANDLERS = {REMINDER_KIND: reminder_job}


# -- month names (for !agenda) -----------------------------------------------------------------

def month_number(word: str) -> int | None:
    """``décembre`` / ``dec`` / ``decmbre`` → 12; None if it is not a month."""
    key = fold(word).rstrip(".,")
    if key in MONTHS:
        return MONTHS[key]
    if len(key) >= 4:
        near = closest(key, [fold(m) for m in MONTHS_FR], cutoff=0.75)
        if near is not None:
            return MONTHS[fold(near)]
    return None


def audience_keys(ctx: Context, text: str, example: str) -> tuple[str, ...]:
    return match_closed_list(ctx, text, AUDIENCES, example)


def organiser_key(ctx: Context, text: str, example: str) -> str:
    """``urscop`` / ``URSCOP`` / ``BGE`` / ``réseau`` → a partner slug or NETWORK."""
    key = re.sub(r"[\W_]+", "", fold(text))
    if key in ("reseau", "reseauess", "lereseau", "network"):
        return NETWORK
    names = {}
    for p in ctx.config.partners:
        names[re.sub(r"[\W_]+", "", fold(p.slug))] = p.slug
        names[re.sub(r"[\W_]+", "", fold(p.name))] = p.slug
    if key in names:
        return names[key]
    prefixed = {slug for k, slug in names.items() if k.startswith(key)} if len(key) >= 2 else set()
    if len(prefixed) == 1:
        return prefixed.pop()
    known = ", ".join(f"`{p.slug}`" for p in ctx.config.partners)
    raise UserError(f"Organisateur inconnu : {q(text)}. Possibles : {known} ou `réseau`. "
                    f"Exemple : `{ex(ctx, example)}`")

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

from ess_bot.framework.command import example_for as ex  # noqa: F401 (re-exported)
from ess_bot.config import Config
from ess_bot.formatting import (MONTHS_FR, WEEKDAYS_FR, date_fr, datetime_fr, join_fr, md_code, md_escape, md_link,
                                time_fr)
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import (MONTHS, WEEKDAYS, ChoiceError, DateError, OptionError, ParseError, check_horizon,
                             match_choice, md_quote, parse_number, resolve_options, split_options)
from ess_bot.scheduler import JobContext
from ess_bot.services.events import (AUDIENCES, NETWORK, NETWORK_LABEL, REMINDER_KEY, EventError, EventView,
                                     NotFound)
from ess_bot.services.tools import TOOL_TYPES, Change, ToolError
from ess_bot.text import Token, closest, fold
from ess_bot.vocabulary import PHASES, Choice, ChoiceList

REMINDER_KIND = "event_reminder"


# User and configuration text goes into the Markdown of every reply through md_escape (as is),
# md_quote (a typed value named: « valeur »), md_code (a command to copy) or md_link (a checked link):
# it shows exactly as typed and can never become markup, HTML or a link.


@contextmanager
def domain_errors(ctx: Context, example: str | None = None) -> Iterator[None]:
    """Turn refusals of the tool and event services into a French reply with an example (their messages
    are Markdown already, every value in them escaped)."""
    try:
        yield
    except (ToolError, EventError) as exc:
        message = exc.message
        if example and not re.search(r"(?i)\bexemples?\s*(?::|`)", message):
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None


# -- arguments -----------------------------------------------------------------------------------

_LINK = re.compile(r"^<?https?://", re.I)
# a word that is an address of another kind (``javascript:…``, ``data:…``, ``mailto:…``): taken as a link,
# so that the service refuses it by name, instead of ending up in the title
_OTHER_SCHEME = re.compile(r"^<?(?:javascript|vbscript|data|file|ftps?|sftp|mailto|tel|sms|blob|about|wss?|matrix|"
                           r"mxc|intent|view-source|chrome|ms-[a-z-]+):\S", re.I)
CLEAR_WORDS = ("-", "aucun", "aucune", "rien")


@dataclass
class Args:
    words: list[str] = field(default_factory=list)      # plain tokens, in order
    quoted: list[bool] = field(default_factory=list)    # aligned with words: typed between quotes
    options: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)       # "#tag", without "#"
    untags: list[str] = field(default_factory=list)     # "-#tag" (to remove), without "-#"
    links: list[str] = field(default_factory=list)


def words_fr(words: list[str], shown: int = 5) -> str:
    """Words not understood, named: ``« a », « b » et « c »`` — the first ``shown`` of a long list, then
    how many more."""
    named = [md_quote(w) for w in words[:shown]]
    if len(words) > shown:
        return ", ".join(named) + f" et {len(words) - shown} autre{'s' if len(words) - shown > 1 else ''}"
    return join_fr(named)


def tokens_for(ctx: Context, args: list[str]) -> list[Token]:
    """``args`` (the handler's, or a tail of them) with their quoting, from ``ctx.tokens``."""
    known = ctx.tokens[len(ctx.tokens) - len(args):] if args else []
    if [t.text for t in known] == list(args):
        return list(known)
    return [Token(a) for a in args]  # args built by hand: no quoting known


def split_args(ctx: Context, args: list[str], keys: ChoiceList, example: str) -> Args:
    """Sort tokens into words, ``key=value`` options (``keys``: the possible options), ``#tags``,
    ``-#tags`` and links. A token typed between quotes is always a word (a title with ``=``, starting
    with ``#`` or with ``https://`` stays a title).

    Unknown, empty or repeated options are refused with the list of possible ones and ``example``.
    """
    options, rest = split_options(tokens_for(ctx, args))
    out = Args()
    try:
        out.options = resolve_options(options, keys, ex(ctx, example))
    except OptionError as exc:
        raise UserError(exc.message) from None
    for tok in rest:
        text = tok.text
        if tok.quoted:
            out.words.append(text)
            out.quoted.append(True)
        elif _LINK.match(text) or _OTHER_SCHEME.match(text):
            out.links.append(text[1:-1] if text.startswith("<") and text.endswith(">") else text)
        elif text.startswith("-#") and len(text) > 2:
            out.untags += [t.strip(" ,") for t in text[1:].split("#") if t.strip(" ,")]
        elif text.startswith("#") and len(text) > 1:
            out.tags += [t.strip(" ,") for t in text.split("#") if t.strip(" ,")]
        else:
            out.words.append(text)
            out.quoted.append(False)
    return out


def option_keys(name: str, keys: dict[str, tuple[str, ...]]) -> ChoiceList:
    """The options of a command (canonical name → aliases) as a closed list for :func:`split_args`."""
    return ChoiceList(name, tuple(Choice(k, k, aliases) for k, aliases in keys.items()))


def tag_option(text: str) -> tuple[str, ...]:
    """``tags=a,b`` / ``tags="#a #b"`` → ("a", "b"); ``tags=-`` or ``tags=aucun`` → () (clears them)."""
    if fold(text.strip()) in CLEAR_WORDS:
        return ()
    return tuple(t for t in re.split(r"[\s,;#]+", text) if t)


def clearable(value: str | None) -> str | None:
    """``lieu=-`` or ``lieu=aucun`` empties an optional field ("")."""
    if value is None:
        return None
    return "" if fold(value.strip()) in CLEAR_WORDS else value


def single_link(ctx: Context, a: Args, what: str, example: str) -> str | None:
    """The one link given (as a word or with ``lien=``), or None; two are refused."""
    links = list(a.links) + ([a.options["lien"]] if "lien" in a.options else [])
    if len(links) > 1:
        raise UserError(f"Un seul lien par {what} (j'en vois {len(links)}). Exemple : `{ex(ctx, example)}`")
    return links[0] if links else None


def record_id(ctx: Context, args: list[str], what: str, example: str) -> int:
    """``12``, ``n°12``, ``#12`` → 12 (:func:`ess_bot.parsing.parse_number`); a French refusal otherwise."""
    try:
        return parse_number(args[0] if args else "", what, ex(ctx, example))
    except ParseError as exc:
        raise UserError(exc.message) from None


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

DATE_EXAMPLE = "`15/01/2027 18h`, `15 janvier 2027 18h30`, `jeudi 9h`, `demain 9h`"
_NUM_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2})\s*(?:[hH:](\d{2})?|[hH])$")
_TIME_RANGE = re.compile(r"^(\d{1,2}(?:[hH:]\d{0,2})?)\s*[-–à]\s*(\d{1,2}(?:[hH:]\d{0,2})?)$")
CONNECTORS = {"le", "a", "à", "de", "du", "au", "des", "l'", "jusqu'a", "jusqu'à", "-", "–", "ce"}
NEXT_WORDS = ("prochain", "prochaine")


def _make_date(y: int, m: int, d: int, text: str, today: date) -> date:
    try:
        found = date(y, m, d)
    except ValueError:
        raise UserError(f"Cette date n'existe pas : {md_quote(text)}. Exemples : {DATE_EXAMPLE}.") from None
    return _within(found, text, today)


def _within(found: date, text: str, today: date) -> date:
    """``found`` if it is inside the calendar horizon (:func:`ess_bot.parsing.check_horizon`)."""
    try:
        return check_horizon(found, text, today, example=f"`15/01/{today.year + 1} 18h`")
    except DateError as exc:
        raise UserError(exc.message) from None


def _upcoming(m: int, d: int, today: date, text: str) -> date:
    """Day and month without a year: this year's, or the next one's if already past."""
    for y in range(today.year, today.year + 5):
        try:
            cand = date(y, m, d)
        except ValueError:
            if m == 2 and d == 29:
                continue  # 29 February: the next leap year
            break
        if cand >= today:
            return cand
    raise UserError(f"Cette date n'existe pas : {md_quote(text)}. Exemples : {DATE_EXAMPLE}.")


def parse_time(text: str) -> time | None:
    """``18h``, ``18h30``, ``18:30``, ``9H`` → time; None if it does not look like a time."""
    m = _TIME.match(text.strip())
    if m is None:
        return None
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    if h > 23 or mi > 59:
        raise UserError(f"Heure impossible : {md_quote(text)}. Exemples : `18h`, `18h30`, `9:15`.")
    return time(h, mi)


def _key(word: str) -> str:
    return fold(word).rstrip(".,")


def _explicit_date(words: list[str], i: int, today: date) -> tuple[date, int] | None:
    """``15/01/2027``, ``15/01``, ``2027-01-15``, ``15 janvier [2027]``, ``1er février`` at ``words[i]``."""
    w = _key(words[i])
    m = _ISO_DATE.match(w)
    if m:
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), words[i], today), 1
    m = _NUM_DATE.match(w)
    if m:
        d, mo, y = int(m.group(1)), int(m.group(2)), m.group(3)
        if y is None:
            return _upcoming(mo, d, today, words[i]), 1
        return _make_date(int(y) + (2000 if len(y) == 2 else 0), mo, d, words[i], today), 1
    if (re.fullmatch(r"[0-9]{1,2}", w) or w == "1er") and i + 1 < len(words) and _key(words[i + 1]) in MONTHS:
        d = 1 if w == "1er" else int(w)
        mo = MONTHS[_key(words[i + 1])]
        text = " ".join(words[i:i + 2])
        if i + 2 < len(words) and re.fullmatch(r"[0-9]{4}", words[i + 2]):
            return _make_date(int(words[i + 2]), mo, d, text + " " + words[i + 2], today), 3
        return _upcoming(mo, d, today, text), 2
    return None


def match_date(ctx: Context, words: list[str], i: int, today: date) -> tuple[date, int] | None:
    """A date starting at ``words[i]``: (date, number of words used), or None.

    A weekday alone (``jeudi``, ``jeudi prochain``) is the next one, never today; with a date
    (``jeudi 14 janvier``) it must agree with it."""
    w = _key(words[i])
    if w == "demain":
        return today + timedelta(days=1), 1
    if w in ("aujourd'hui", "aujourdhui", "auj"):
        return today, 1
    if w == "apres-demain":
        return today + timedelta(days=2), 1
    if w in WEEKDAYS:
        weekday = WEEKDAYS[w]
        found = _explicit_date(words, i + 1, today) if i + 1 < len(words) else None
        if found is not None:
            if found[0].weekday() != weekday:
                raise UserError(f"Le {date_fr(found[0], weekday=False)} est un {WEEKDAYS_FR[found[0].weekday()]}, "
                                f"pas un {WEEKDAYS_FR[weekday]}. Vérifiez la date.")
            return found[0], found[1] + 1
        used = 2 if i + 1 < len(words) and _key(words[i + 1]) in NEXT_WORDS else 1
        return today + timedelta(days=(weekday - today.weekday()) % 7 or 7), used
    return _explicit_date(words, i, today)


@dataclass
class When:
    day: date | None = None
    start: time | None = None
    end: time | None = None
    rest: list[str] = field(default_factory=list)   # the words that are not part of the date


def find_when(ctx: Context, words: list[str], today: date, quoted: list[bool] | None = None) -> When:
    """Pick a date and a start time (and maybe ``18h-21h``) out of ``words``; the rest is kept.
    ``quoted`` (aligned with ``words``): words typed between quotes, never read as a date or a time."""
    fixed = {j for j, q in enumerate(quoted or []) if q}
    out = When()
    used: set[int] = set()
    i = 0
    while i < len(words):
        if i in fixed:
            i += 1
            continue
        tok = words[i]
        if out.day is None:
            found = match_date(ctx, words, i, today)
            if found is not None and not fixed & set(range(i, i + found[1])):
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
        if j not in used and j not in fixed and fold(w) in CONNECTORS and ((j + 1) in used or (j - 1) in used):
            used.add(j)
    out.rest = [w for j, w in enumerate(words) if j not in used]
    return out


def parse_moment(ctx: Context, text: str, today: date, default_day: date | None, what: str,
                 example: str) -> tuple[date, time | None]:
    """A ``fin=``/``date=`` value: ``21h`` (on ``default_day``), ``16/01/2027``, ``jeudi``, ``16/01/2027 12h``."""
    words = text.replace(",", " ").split()
    when = find_when(ctx, words, today)
    leftovers = [w for w in when.rest if fold(w) not in CONNECTORS]
    if leftovers or (when.day is None and when.start is None):
        raise UserError(f"{what[:1].upper() + what[1:]} illisible : {md_quote(text)}. Exemples : {DATE_EXAMPLE}.\n"
                        f"Exemple : `{ex(ctx, example)}`")
    day = when.day or default_day
    if day is None:
        raise UserError(f"Précisez le jour pour {what} : {md_quote(text)}. Exemple : `{ex(ctx, example)}`")
    return day, when.start


def at(config: Config, day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=config.bot.tz)


def month_number(word: str) -> int | None:
    """``décembre`` / ``dec`` / ``decmbre`` → 12; None if it is not a month (for !agenda)."""
    key = _key(word)
    if key in MONTHS:
        return MONTHS[key]
    if len(key) >= 4:
        near = closest(key, [fold(m) for m in MONTHS_FR], cutoff=0.75)
        if near is not None:
            return MONTHS[fold(near)]
    return None


# -- French wording of dates and changes -----------------------------------------------------------

def when_fr(start: datetime, end: datetime) -> str:
    """``vendredi 15 janvier 2027, de 18 h à 21 h`` or ``du … à 18 h au … à 12 h``."""
    if start.date() == end.date():
        return f"{date_fr(start)}, de {time_fr(start)} à {time_fr(end)}"
    return f"du {date_fr(start)} à {time_fr(start)} au {date_fr(end)} à {time_fr(end)}"


def tags_fr(tags) -> str:
    """``#a #b`` in Markdown (each tag escaped: a ``#`` at the start of a line would make a heading)."""
    return " ".join(md_escape(f"#{t}") for t in tags)


def tags_change_fr(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    """``#a #b → #a #c (ajouté : #c ; retiré : #b)``."""
    old_keys, new_keys = {fold(t) for t in old}, {fold(t) for t in new}
    added = [t for t in new if fold(t) not in old_keys]
    removed = [t for t in old if fold(t) not in new_keys]
    what = []
    if added:
        what.append(("ajoutés" if len(added) > 1 else "ajouté") + " : " + tags_fr(added))
    if removed:
        what.append(("retirés" if len(removed) > 1 else "retiré") + " : " + tags_fr(removed))
    return f"{tags_fr(old) or 'aucun'} → {tags_fr(new) or 'aucun'}" + (f" ({' ; '.join(what)})" if what else "")


FIELD_NAMES = {"title": "titre", "type": "type", "phase": "phase", "link": "lien", "description": "description",
               "tags": "mots-clés", "when": "date", "location": "lieu", "audience": "public",
               "organiser": "organisateur"}


def change_fr(ctx, c: Change) -> str:
    """One change of a tool or an event, in French Markdown: ``Lieu : Le Pixel → Salle des fêtes``."""
    name = FIELD_NAMES.get(c.field, c.field)
    if c.field == "tags":
        text = tags_change_fr(tuple(c.old), tuple(c.new))
    elif c.field == "when":
        text = f"{when_fr(*c.old)} → {when_fr(*c.new)}"
    elif c.field == "type":
        text = f"{TOOL_TYPES.label(c.old)} → {TOOL_TYPES.label(c.new)}"
    elif c.field == "phase":
        text = f"{PHASES.label(c.old, 'aucune')} → {PHASES.label(c.new, 'aucune')}"
    elif c.field == "audience":
        text = " → ".join(", ".join(AUDIENCES.label(a) for a in v) or "non précisé" for v in (c.old, c.new))
    elif c.field == "organiser":
        text = " → ".join(md_escape(ctx.services.events.organiser_name(v)) for v in (c.old, c.new))
    else:
        none = {"description": "aucune", "location": "non précisé"}.get(c.field, "aucun")
        text = f"{md_escape(c.old) if c.old else none} → {md_escape(c.new) if c.new else none}"
    return f"{name[:1].upper() + name[1:]} : {text}"


def changes_lines(ctx, changes: list[Change]) -> list[str]:
    return [change_fr(ctx, c) for c in changes]


# -- rooms ---------------------------------------------------------------------------------------

def announcement_rooms(config: Config) -> tuple[str, ...]:
    """Where an event is announced: the announcement rooms, and the partner rooms if configured."""
    rooms = list(config.rooms.announcements)
    if config.events.announce_in_partner_rooms:
        rooms += [p.room for p in config.partners if p.room]
    return tuple(dict.fromkeys(rooms))


def room_label(config: Config, room_id: str) -> str:
    """Where something was announced, in Markdown (a partner's name from the configuration, escaped)."""
    if room_id in config.rooms.announcements:
        n = config.rooms.announcements.index(room_id)
        return "le salon d'annonces" + (f" n°{n + 1}" if len(config.rooms.announcements) > 1 else "")
    if room_id == config.rooms.coordination:
        return "le salon de coordination"
    partner = config.partner_by_room(room_id)
    if partner is not None:
        return f"le salon {md_escape(de_fr(partner.name))}"
    return f"le salon {md_escape(room_id)}"


def de_fr(name: str) -> str:
    """``de BGE``, ``d'URSCOP``, ``d'Aldess`` (elision before a vowel)."""
    return ("d'" if fold(name[:1]) in "aeiouy" and name[:1] else "de ") + name


def announce_tag(event_id: int, room_id: str) -> str:
    """The outbox tag of an event's first announcement in a room (later notices reply to it)."""
    return f"event:{event_id}:" + hashlib.sha1(room_id.encode()).hexdigest()[:12]


def reminders_prefix(event_id: int) -> str:
    """The key prefix of every reminder job of an event (to cancel them all)."""
    return REMINDER_KEY.format(id=event_id)


def reminder_key(event_id: int, days: int, sequence: int) -> str:
    return f"{reminders_prefix(event_id)}{days}" + (f":{sequence}" if sequence else "")


def ics_filename(view: EventView) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(view.title)).strip("-")[:50].strip("-")
    return f"{slug or 'evenement'}-{view.id}.ics"


# -- cards ---------------------------------------------------------------------------------------

def event_card(view: EventView, headline: str, *, extra: list[str] | None = None,
               footer: str | None = None) -> str:
    """The Markdown of an event card: title, date in French, place, organiser, audience, link, tags.
    ``headline``, ``extra`` lines and ``footer`` are Markdown already (any user text in them escaped)."""
    rows: list[tuple[str, str]] = [("Quand", when_fr(view.start, view.end))]
    if view.location:
        rows.append(("Où", md_escape(view.location)))
    rows.append(("Organisé par", md_escape(NETWORK_LABEL if view.partner == NETWORK else view.organiser)))
    if view.audience:
        rows.append(("Public", md_escape(", ".join(view.audience_labels))))
    if view.link:
        rows.append(("Inscription", md_link(view.link, view.link)))
    blocks = [f"{headline} **{md_escape(view.title)}**", "\n".join(f"- **{k} :** {v}" for k, v in rows)]
    if view.tags:
        blocks.append(tags_fr(view.tags))
    blocks += list(extra or [])
    if footer:
        blocks.append(f"*{footer}*")
    return "\n\n".join(blocks)


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
    markdown = event_card(view, headline, extra=extra, footer=footer)
    for room in view.rooms:
        out = ctx.announce(room, markdown, tag=announce_tag(view.id, room) if first else None)
        if not first:
            out.reply_to = "tag:" + announce_tag(view.id, room)
        ctx.announce_file(room, ics_filename(view), ics, "text/calendar")


def schedule_reminders(ctx: Context, view: EventView) -> list[tuple[int, datetime]]:
    plan = ctx.services.events.reminders(view)
    for n, when in plan:
        ctx.schedule(REMINDER_KIND, when, {"event_id": view.id, "days": n, "sequence": view.sequence},
                     key=reminder_key(view.id, n, view.sequence))
    return plan


async def event_warnings(ctx: Context, view: EventView) -> list[str]:
    """Accepted but worth a second look: a weekend or a public holiday, the same title at the same time."""
    out = []
    info = ctx.services.events.day_info(view.start.date())
    day = date_fr(view.start)
    move = (f"L'événement est bien enregistré ; pour le déplacer : "
            f"`{ctx.prefix}evenement modifier {view.id} date=…`.")
    if info.public_holiday:
        out.append(f"⚠️ Le {day} est un jour férié ({md_escape(info.public_holiday)}) : vérifiez la date. {move}")
    elif info.weekend:
        out.append(f"⚠️ Le {day} tombe un week-end : vérifiez la date. {move}")
    for other in await ctx.services.events.same_title_and_start(ctx.session, view):
        out.append(f"⚠️ L'événement n°{other.id} {md_quote(other.title)} a déjà ce titre et ce début : s'il "
                   "s'agit d'un doublon, annulez l'un des deux avec "
                   f"`{ctx.prefix}evenement annuler {view.id} \"doublon\"`.")
    return out


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
    if jc.late and await jc.services.events.reminder_superseded(jc.session, view.id, int(p.get("days", 0)),
                                                                 jc.job.id, now):
        jc.status, jc.note = "skipped", "un rappel plus proche de l'événement part à sa place"
        return
    extra = []
    if jc.late:
        planned = jc.job.run_at.astimezone(jc.clock.tz)
        extra.append(f"(Rappel prévu le {datetime_fr(planned)}, envoyé en retard : le bot était indisponible.)")
    announce_event(jc, view, jc.services.events.ics(view), "⏰ Rappel :",
                   extra=[f"C'est {relative_day(view.start, now)}.", *extra])


JOB_HANDLERS = {REMINDER_KIND: reminder_job}


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
    known = ", ".join(md_code(p.slug) for p in ctx.config.partners)
    raise UserError(f"Organisateur inconnu : {md_quote(text)}. Possibles : {known} ou `réseau`. "
                    f"Exemple : `{ex(ctx, example)}`")

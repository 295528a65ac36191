"""Helpers of ``!reunion``: reading what people type, French wording, and the flows shared by the
commands and the scheduled jobs (posting a poll, fixing the date, reminders).

Not a command module (the leading underscore keeps it out of the registry).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.framework.command import example_for as ex  # noqa: F401 (re-exported)
from ess_bot.clock import Clock
from ess_bot.config import Config, Member, MeetingSettings
from ess_bot.formatting import WEEKDAYS_FR, date_fr, datetime_fr, join_fr, md_code, md_escape, minutes_fr, pill
from ess_bot.framework.context import Context, Queue, UserError
from ess_bot.framework.messages import Outgoing
from ess_bot.parsing import (DateError, DurationError, ParseError, check_horizon, is_duration, md_quote, parse_duration,
                             parse_number, quote)
from ess_bot.scheduler import cancel as cancel_jobs
from ess_bot.scheduler import schedule as schedule_job
from ess_bot.services.agenda import AgendaEntry
from ess_bot.services.meeting_dates import Candidate, Window, preferred_time
from ess_bot.services.meetings import (MAX_OPTIONS, MeetingError, MeetingService, MeetingView, NoOpenPoll,
                                       OptionTally, PollOverlap, SeveralOpenPolls, Tally, option_tag, poll_tag,
                                       reminder_key_prefix)
from ess_bot.storage.meetings import MAYBE, NO, YES
from ess_bot.text import fold, normalize

ICS_MIME = "text/calendar"
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
POLL_KIND = "org.matrix.msc3381.poll.disclosed"
TEXT_KEY = "org.matrix.msc1767.text"
POLL_QUESTION = "Quelle date vous convient le mieux ?"
DEADLINE_TIME = time(18, 0)     # a poll closes at 18 h on its last day
REMINDER_TIME = time(9, 0)      # reminders go out at 9 h

# job kinds
JOB_POLL_REMINDER = "meeting_poll_reminder"
JOB_POLL_CLOSE = "meeting_poll_close"
JOB_REMINDER = "meeting_reminder"

REACTIONS = {YES: "✅", MAYBE: "🤔", NO: "❌"}
ANSWER_LABELS = {YES: "oui", MAYBE: "si besoin", NO: "non"}
# every reaction key that means an answer (variation selectors removed)
REACTION_ANSWERS = {"✅": YES, "✔": YES, "☑": YES, "👍": YES, "🤔": MAYBE, "❓": MAYBE, "🤷": MAYBE,
                    "❌": NO, "✖": NO, "❎": NO, "👎": NO}
ANSWER_WORDS = {
    "oui": YES, "o": YES, "yes": YES, "y": YES, "ok": YES, "dispo": YES, "✅": YES,
    "sibesoin": MAYBE, "besoin": MAYBE, "sb": MAYBE, "s": MAYBE, "peutetre": MAYBE, "pe": MAYBE, "p": MAYBE,
    "?": MAYBE, "bof": MAYBE, "maybe": MAYBE, "🤔": MAYBE,
    "non": NO, "n": NO, "no": NO, "nondispo": NO, "❌": NO,
}

EXAMPLE_PROPOSE = '!reunion proposer "Rencontre du réseau" entre 1/03 et 15/04 n=4 durée=3h lieu=Besançon limite=20/02'
EXAMPLE_PROPOSE_DATES = '!reunion proposer "Rencontre du réseau" 12/03 14h, 19/03 14h, 26/03 9h30'
EXAMPLE_DISPO = "!reunion dispo 1=oui 2=sibesoin 3=non"
EXAMPLE_MOVE = "!reunion deplacer 3 19/03 14h"
EXAMPLE_EXTEND = "!reunion prolonger 3 27/02"
DURATION_MIN = 15

MONTHS = {"janvier": 1, "janv": 1, "jan": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "mar": 3, "avril": 4,
          "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9, "sept": 9, "sep": 9,
          "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "decembre": 12, "dec": 12}
WEEKDAY_KEYS = {fold(w): i for i, w in enumerate(WEEKDAYS_FR)}
_NUMERIC = re.compile(r"^(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_WORDS = re.compile(r"^(\d{1,2}|1er)\s+([a-z]+)\.?(?:\s+(\d{4}))?$")
_TIME = re.compile(r"^(\d{1,2})\s*(?:h|:)\s*(\d{2})?$|^(\d{1,2})\s*h\s*(\d{2})?$")
_KV = re.compile(r"^([^\W\d][\w°-]*)\s*=\s*(.*)$", re.S)
OPTION_KEYS = {"n": "n", "nombre": "n", "nb": "n", "dates": "n", "duree": "duree", "lieu": "lieu",
               "limite": "limite", "cloture": "limite", "echeance": "limite", "date": "date", "n°": "date"}
OPTION_NAMES = {"n": "n", "duree": "durée", "lieu": "lieu", "limite": "limite", "date": "date"}


class InputError(Exception):
    """Something typed could not be understood; ``message`` is French and names the bad value."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def q(value: str) -> str:
    """A typed value or a title named in a Markdown message: « valeur », escaped (shows as typed)."""
    return md_quote(value)


@contextmanager
def user_errors(ctx: Context, example: str | None = None, several: str | None = None) -> Iterator[None]:
    """Domain refusals and unreadable input → a French reply, with an example when useful.

    ``several``: the example to show when several polls are open, with ``{id}`` for a poll number.
    """
    try:
        yield
    except SeveralOpenPolls as exc:
        text = exc.message
        if several:
            text += f" Exemple : `{ex(ctx, several.format(id=exc.ids[-1]))}`"
        raise UserError(text) from None
    except NoOpenPoll as exc:
        raise UserError(exc.message + f" Pour voir les rencontres : `{ctx.prefix}reunion liste`.") from None
    except (MeetingError, InputError, ParseError) as exc:
        raise UserError(with_example(ctx, exc.message, example)) from None


def with_example(ctx_or_prefix, text: str, example: str | None) -> str:
    """``text`` followed by an example, unless it already shows one."""
    if example and not re.search(r"\bexemples?\s*(?::|`)", fold(text)):
        text += f"\nExemple : `{ex(ctx_or_prefix, example)}`"
    return text


def meeting_number(text: str, example: str, prefix: str) -> int:
    """A meeting (or poll) number: ``3``, ``n°3``; a UserError naming the value otherwise."""
    try:
        return parse_number(text, "de rencontre", ex(prefix, example))
    except ParseError as exc:
        raise UserError(exc.message + f" Les numéros : `{prefix}reunion liste`.") from None


def option_number(text: str, example: str, prefix: str) -> int:
    """A date number within a poll (1 to :data:`MAX_OPTIONS`)."""
    try:
        return parse_number(text, "de date", ex(prefix, example), high=MAX_OPTIONS)
    except ParseError as exc:
        raise InputError(exc.message) from None


# -- reading dates, times, durations -----------------------------------------------------------------

def _key(text: str) -> str:
    return re.sub(r"\s+", " ", fold(normalize(text))).strip(" ,;.")


PAST_GRACE = timedelta(days=60)


def parse_day(text: str, after: date) -> date:
    """A French calendar date; without a year, the first one on or after ``after`` — unless it is less
    than two months before ``after``: then it is this year's, a date just past (refused later, with a
    clear message) rather than one in a year.

    ``12/03``, ``12/03/2026``, ``2026-03-12``, ``12 mars``, ``jeudi 12 mars 2026``, ``1er avril``.
    """
    key = _key(text)
    words = key.split(" ")
    weekday = None
    if words and words[0] in WEEKDAY_KEYS:
        weekday = WEEKDAY_KEYS[words[0]]
        words = words[1:]
    if words and words[0] == "le":
        words = words[1:]
    rest = " ".join(words)
    year = month = day = None
    if m := _ISO.match(rest):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _NUMERIC.match(rest):
        day, month = int(m.group(1)), int(m.group(2))
        if m.group(3):
            year = int(m.group(3)) + (2000 if len(m.group(3)) == 2 else 0)
    elif (m := _WORDS.match(rest)) and m.group(2) in MONTHS:
        day = 1 if m.group(1) == "1er" else int(m.group(1))
        month = MONTHS[m.group(2)]
        year = int(m.group(3)) if m.group(3) else None
    else:
        raise InputError(f"Je ne comprends pas la date {q(text)}. Exemples : `12/03`, `12/03/2026`, `12 mars`.")
    try:
        found = date(year or after.year, month, day)
        if year is None and found < after - PAST_GRACE:
            found = date(after.year + 1, month, day)
    except ValueError:
        raise InputError(f"La date {q(text)} n'existe pas. Exemples : `12/03`, `12 mars 2026`.") from None
    try:
        check_horizon(found, text, after, example=f"`12/03/{after.year + 1}`")
    except DateError as exc:
        raise InputError(exc.message) from None
    if weekday is not None and found.weekday() != weekday:
        raise InputError(f"Le {date_fr(found, weekday=False)} est un {WEEKDAYS_FR[found.weekday()]}, "
                         f"pas un {WEEKDAYS_FR[weekday]} ({q(text)}). Vérifiez la date. "
                         f"Exemple : `{WEEKDAYS_FR[found.weekday()]} {date_fr(found, weekday=False)}`.")
    return found


def parse_time(text: str) -> time | None:
    """``14h``, ``9h30``, ``14:00`` → a time; None if ``text`` is not a time at all."""
    m = _TIME.match(_key(text).replace(" ", ""))
    if not m:
        return None
    hour = int(m.group(1) or m.group(3))
    minute = int(m.group(2) or m.group(4) or 0)
    if hour > 23 or minute > 59:
        raise InputError(f"L'heure {q(text)} n'existe pas. Exemples : `14h`, `9h30`.")
    return time(hour, minute)


def meeting_duration(text: str) -> int:
    """A meeting's length (``3h``, ``2h30``, ``90min``, ``1,5h``) in minutes: the shared
    :func:`ess_bot.parsing.parse_duration`, then at least :data:`DURATION_MIN` minutes."""
    try:
        minutes = parse_duration(text)
    except DurationError as exc:
        if is_duration(text) and "longue" in exc.message:
            raise InputError(f"La durée {q(text)} est trop longue pour une rencontre : 12 heures au plus. "
                             "Exemple : `durée=3h`.") from None
        raise InputError(exc.message) from None
    if minutes < DURATION_MIN:
        raise InputError(f"La durée {q(text)} est trop courte pour une rencontre : {DURATION_MIN} minutes au "
                         "moins. Exemple : `durée=3h`.")
    return minutes


def _date_starts(words: list[str]) -> list[int]:
    """Where a date begins among ``words`` (``12/01/2027``, ``jeudi 12/03``, ``le 12 mars``, ``1er avril``)."""
    keys = [fold(w).strip(".,;") for w in words]

    def day_at(i: int) -> bool:
        k = keys[i] if i < len(keys) else ""
        following = keys[i + 1] if i + 1 < len(keys) else ""
        return bool(_NUMERIC.match(k) or _ISO.match(k) or ((k.isdigit() or k == "1er") and following in MONTHS))

    starts = []
    for i, k in enumerate(keys):
        before = keys[i - 1] if i else ""
        if before in WEEKDAY_KEYS or (before == "le" and k not in WEEKDAY_KEYS):
            continue   # "jeudi 12/03", "le 12 mars": the date began one word earlier
        if k in WEEKDAY_KEYS or (k == "le" and day_at(i + 1)) or day_at(i):
            starts.append(i)
    return starts


def split_dates_hint(text: str) -> str | None:
    """``12/01/2027 14h 19/01/2027 9h30`` → ``12/01/2027 14h, 19/01/2027 9h30`` when ``text`` holds
    several dates written without commas, else None."""
    words = normalize(text).split()
    starts = _date_starts(words)
    if len(starts) < 2:
        return None
    bounds = starts[1:] + [len(words)]
    head = " ".join(words[:starts[0]])
    parts = [" ".join(words[a:b]) for a, b in zip(starts, bounds)]
    return (head + " " if head else "") + ", ".join(parts)


def parse_when(text: str, after: date, duration_minutes: int, tz: tzinfo) -> datetime:
    """``12/03 14h``, ``jeudi 12 mars à 9h30``; without a time, the scorer's preferred one."""
    words = normalize(text).split()
    if not words:
        raise InputError("Une date est vide (deux virgules de suite ?). Exemple : `12/03 14h, 19/03 9h30`.")
    at = parse_time(words[-1]) if len(words) > 1 else None
    if at is not None:
        words = words[:-1]
    while words and fold(words[-1]) in ("a", "à", "vers", "des", "dès"):
        words = words[:-1]
    if not words:
        raise InputError(f"Il manque le jour dans {q(text.strip())}. Exemple : `12/03 14h`.")
    day = parse_day(" ".join(words), after)
    return datetime.combine(day, at or preferred_time(day, duration_minutes), tzinfo=tz)


DATE_WORDS = set(MONTHS) | set(WEEKDAY_KEYS) | {"le", "a", "à", "vers", "des", "dès", "1er", "er"}


def unknown_words(text: str) -> list[str]:
    """The words of ``text`` that cannot belong to a date (a title without quotes, say)."""
    def datelike(word: str) -> bool:
        key = fold(word).strip(".,;")
        if key in DATE_WORDS or key.isdigit() or _NUMERIC.match(key) or _ISO.match(key):
            return True
        try:
            return parse_time(key) is not None
        except InputError:
            return True
    return [w for w in normalize(text).split() if not datelike(w)]


# -- !reunion proposer ---------------------------------------------------------------------------------

@dataclass
class Proposal:
    title: str = "Rencontre du réseau"
    window: Window | None = None
    n: int | None = None
    duration: int = 180
    location: str = ""
    deadline_day: date | None = None
    explicit: list[datetime] = field(default_factory=list)
    explicit_text: list[str] = field(default_factory=list)   # as typed, for messages


def _options(args: list[str], allowed: set[str], example: str) -> tuple[dict[str, str], list[str]]:
    """``key=value`` tokens (keys folded, checked) apart from the rest."""
    found: dict[str, str] = {}
    rest: list[str] = []
    for token in args:
        m = _KV.match(token)
        if not m:
            rest.append(token)
            continue
        key = OPTION_KEYS.get(fold(m.group(1)))
        if fold(m.group(1)) in ("entre", "du", "fenetre", "periode") and "n" in allowed:
            raise InputError(f"{q(token)} : une période s'écrit sans « = », avec deux dates. "
                             "Exemple : `entre 1/01 et 31/03`.")
        if key is None or key not in allowed:
            names = ", ".join(f"`{OPTION_NAMES[k]}=`" for k in sorted(allowed))
            raise InputError(f"Option inconnue : {q(m.group(1) + '=')}. Options possibles : {names}. "
                             f"Exemple : `{example}`")
        if key in found:
            raise InputError(f"L'option {q(m.group(1) + '=')} est donnée deux fois.")
        found[key] = m.group(2).strip()
    return found, rest


def _take_window(tokens: list[str], today: date) -> tuple[Window | None, list[str]]:
    """``entre 1/03 et 15/04`` or ``du 1er mars au 15 avril`` anywhere in the arguments."""
    keys = [fold(t) for t in tokens]
    for i, k in enumerate(keys):
        if k not in ("entre", "du"):
            continue
        ends = [j for j in range(i + 1, len(keys)) if keys[j] in (("et",) if k == "entre" else ("au",))]
        if not ends:
            if k == "entre":
                raise InputError("Fenêtre incomplète après « entre ». Exemple : `entre 1/03 et 15/04`.")
            continue
        j = ends[0]
        first_words = [t for t in tokens[i + 1:j] if fold(t) != "le"]
        try:
            start = parse_day(" ".join(first_words), today)
        except InputError:
            if k == "du":
                continue  # "Rencontre du réseau": not a window
            raise
        for n in (4, 3, 2, 1):
            words = tokens[j + 1:j + 1 + n]
            if len(words) < n:
                continue
            try:
                end = parse_day(" ".join(w for w in words if fold(w) != "le"), start)
            except InputError:
                continue
            if end < start:
                raise InputError(f"La fenêtre se termine ({date_fr(end)}) avant de commencer ({date_fr(start)}).")
            if (end - start).days > 366:
                raise InputError("La fenêtre dépasse un an : choisissez une période plus courte.")
            return Window(start, end), tokens[:i] + tokens[j + 1 + n:]
        after = " ".join(tokens[j + 1:j + 3]) or "(rien)"
        raise InputError(f"Je ne comprends pas la fin de la fenêtre : {q(after)}. Exemple : `entre 1/03 et 15/04`.")
    return None, tokens


def _is_datelike(token: str, today: date) -> bool:
    try:
        parse_day(token, today)
        return True
    except InputError:
        pass
    try:
        return parse_time(token) is not None
    except InputError:
        return True


def parse_proposal(args: list[str], today: date, tz: tzinfo, settings: MeetingSettings, prefix: str) -> Proposal:
    example = ex(prefix, EXAMPLE_PROPOSE)
    opts, rest = _options(args, {"n", "duree", "lieu", "limite"}, example)
    prop = Proposal(duration=settings.default_duration_minutes, location=settings.default_location)
    if "duree" in opts:
        prop.duration = meeting_duration(opts["duree"])
    if "lieu" in opts:
        prop.location = " ".join(opts["lieu"].split())
        if not prop.location:
            raise InputError(f"Le lieu est vide. Exemple : `lieu=Besançon` ou `lieu=\"Maison de l'ESS, Dijon\"`.")
    if "n" in opts:
        if not re.fullmatch(r"[0-9]{1,2}", opts["n"]) or not 1 <= int(opts["n"]) <= 10:
            raise InputError(f"Le nombre de dates {q(opts['n'])} doit être un nombre de 1 à 10. Exemple : `n=4`.")
        prop.n = int(opts["n"])
    if "limite" in opts:
        prop.deadline_day = parse_day(opts["limite"], today)
    prop.window, rest = _take_window(rest, today)
    if rest and not _is_datelike(rest[0], today):
        prop.title = " ".join(rest[0].split())
        rest = rest[1:]
    if rest:
        pieces = [p for p in re.split(r"\s*[,;]\s*", " ".join(rest))]
        for piece in pieces:
            strange = unknown_words(piece)
            if strange:
                raise InputError(f"Je n'ai pas compris {q(' '.join(strange))}. Si c'est le titre, mettez-le entre "
                                 f"guillemets. Exemple : `{ex(prefix, EXAMPLE_PROPOSE_DATES)}`")
            hint = split_dates_hint(piece)
            if hint is not None:   # "12/01/2027 14h 19/01/2027 9h30": several dates without commas
                fixed = md_code(f'{prefix}reunion proposer "{prop.title}" {hint}')
                raise InputError(f"Je vois plusieurs dates dans {q(piece.strip())} : séparez les dates par des "
                                 f"virgules. Exemple : {fixed}")
            prop.explicit.append(parse_when(piece, today, prop.duration, tz))
            prop.explicit_text.append(piece.strip())
        if prop.window is not None or prop.n is not None:
            raise InputError("Donnez soit des dates précises, soit une fenêtre (`entre … et …`, `n=`), pas les "
                             f"deux. Exemples : `{example}` ou `{ex(prefix, EXAMPLE_PROPOSE_DATES)}`")
    if prop.window is not None:  # leave time to answer: from three days on, and after the deadline
        start = max(prop.window.start, today + timedelta(days=3))
        if prop.deadline_day is not None:
            start = max(start, prop.deadline_day + timedelta(days=1))
        if start > prop.window.end:
            raise InputError(f"La fenêtre se termine le {date_fr(prop.window.end)} : c'est trop tôt pour laisser le "
                             "temps de répondre au sondage. Choisissez une période plus lointaine.")
        prop.window = Window(start, prop.window.end)
    return prop


NOTICE_AFTER_DEADLINE = timedelta(days=7)   # automatic dates: at least a week between the close and the meeting


def weekday_before(day: date) -> date:
    """``day``, or the Friday before when it falls on a weekend (nobody is pinged on a Sunday)."""
    return day - timedelta(days=max(0, day.weekday() - 4))


def default_deadline(now: datetime, settings: MeetingSettings) -> datetime:
    day = weekday_before(now.date() + timedelta(days=settings.default_deadline_days))
    return datetime.combine(day, DEADLINE_TIME, tzinfo=now.tzinfo)


def deadline_for(prop: Proposal, first: datetime, now: datetime, settings: MeetingSettings) -> datetime:
    """The poll's deadline: ``limite=`` at 18 h, else in ``default_deadline_days`` (a weekday), and
    then the day before the first date at the latest."""
    tz = now.tzinfo
    if prop.deadline_day is not None:
        return datetime.combine(prop.deadline_day, DEADLINE_TIME, tzinfo=tz)
    latest = datetime.combine(first.astimezone(tz).date() - timedelta(days=1), DEADLINE_TIME, tzinfo=tz)
    deadline = min(default_deadline(now, settings), latest)
    if deadline < now + timedelta(days=1):
        soon = date_fr(now.date() + timedelta(days=3), weekday=False)
        raise InputError(f"La première date ({datetime_fr(first.astimezone(tz))}) est trop proche pour laisser le "
                         "temps de répondre : proposez des dates au moins trois jours plus tard (à partir du "
                         f"{soon}), ou donnez une date limite (`limite=`). Exemple : `{EXAMPLE_PROPOSE_DATES}`")
    return deadline


def past_dates(prop: Proposal, now: datetime) -> None:
    """Explicit dates already past: refused, naming the first one as typed."""
    for text, start in sorted(zip(prop.explicit_text, prop.explicit), key=lambda p: p[1]):
        if start <= now:
            raise InputError(f"La date {q(text)} ({datetime_fr(start)}) est déjà passée : proposez des dates à "
                             f"venir. Exemple : `{EXAMPLE_PROPOSE_DATES}`")


# -- !reunion dispo ------------------------------------------------------------------------------------

ALL = 0   # "tout=oui": every date


def answer_word(text: str) -> str | None:
    key = re.sub(r"[\s\-_'’.!]+", "", fold(normalize(text))).replace("\ufe0f", "")
    return ANSWER_WORDS.get(key)


def reaction_answer(key: str) -> str | None:
    return REACTION_ANSWERS.get(re.sub("[\ufe0f\U0001f3fb-\U0001f3ff]", "", key or "").strip())


def _positions(text: str, prefix: str = "!") -> list[int] | None:
    key = fold(text).strip().lstrip("n°").strip()
    if key in ("tout", "toutes", "tous", "*"):
        return [ALL]
    parts = [p for p in re.split(r"[,+]", key) if p]
    if parts and all(p.isdigit() for p in parts):
        return [option_number(p, EXAMPLE_DISPO, prefix) for p in parts]
    return None


def parse_dispo(args: list[str], prefix: str) -> tuple[int | None, list[tuple[int, str]]]:
    """``[id] 1=oui 2=sibesoin 3=non`` or ``[id] 2 oui 3 si besoin`` → (meeting id, [(date n°, answer)]).

    Date number 0 (:data:`ALL`) stands for every date (``tout=non``).
    """
    example = ex(prefix, EXAMPLE_DISPO)
    tokens: list[str] = []
    for token in args:  # "si besoin" / "peut être" written in two words
        if tokens and fold(token) in ("besoin", "etre") and fold(tokens[-1]).endswith(("si", "peut")):
            tokens[-1] += token
        else:
            tokens.append(token)
    pairs: list[tuple[int, str]] = []
    meeting_id: int | None = None
    if any(_KV.match(t) or re.match(r"^[\d,+]+=", t) for t in tokens):
        for i, token in enumerate(tokens):
            m = re.match(r"^([^=]+)=(.*)$", token)
            if m is None:
                if i == 0 and token.isdigit():
                    meeting_id = meeting_number(token, EXAMPLE_DISPO.replace("dispo", "dispo 3"), prefix)
                    continue
                raise InputError(f"Je n'ai pas compris {q(token)}. Exemple : `{example}`")
            positions, answer = _positions(m.group(1), prefix), answer_word(m.group(2))
            if positions is None:
                raise InputError(f"{q(m.group(1))} n'est pas un numéro de date. Exemple : `{example}`")
            if answer is None:
                raise InputError(f"Réponse inconnue : {q(m.group(2))} (possibles : oui, si besoin, non). "
                                 f"Exemple : `{example}`")
            pairs += [(p, answer) for p in positions]
    else:
        if len(tokens) >= 2 and tokens[0].isdigit() and _positions(tokens[1], prefix) is not None:
            meeting_id = meeting_number(tokens[0], "!reunion dispo 3 2 oui", prefix)
            tokens = tokens[1:]
        items = [(_positions(t, prefix), answer_word(t), t) for t in tokens]
        i = 0
        while i < len(items):
            positions, _, text = items[i]
            if positions is None:
                raise InputError(f"J'attendais un numéro de date à la place de {q(text)}. Exemple : "
                                 f"`{ex(prefix, '!reunion dispo 2 oui')}` ou `{example}`")
            if i + 1 >= len(items) or items[i + 1][1] is None:
                what = f", pas {q(items[i + 1][2])}" if i + 1 < len(items) else ""
                raise InputError(f"Après la date n°{text}, j'attendais oui, si besoin ou non{what}. "
                                 f"Exemple : `{ex(prefix, '!reunion dispo 2 oui')}`")
            pairs += [(p, items[i + 1][1]) for p in positions]
            i += 2
    if not pairs:
        raise InputError(f"Indiquez une réponse pour au moins une date. Exemple : `{example}`")
    return meeting_id, pairs


# -- wording --------------------------------------------------------------------------------------------

def members_of(config: Config, user_ids) -> list[Member]:
    """The configured members behind ``user_ids`` (an unknown id stands as a bare member)."""
    return [config.member(u) or Member(user_id=u, partner="") for u in user_ids]


def names(config: Config, user_ids) -> str:
    """The members' names, in Markdown (names from the configuration, escaped)."""
    return join_fr([md_escape(m.display) for m in members_of(config, user_ids)])


def pills(config: Config, user_ids) -> str:
    return join_fr([pill(m.user_id, m.display) for m in members_of(config, user_ids)])


def coordinators(config: Config) -> list[Member]:
    """Who decides about meetings: the coordinators (the admins when none is configured)."""
    return config.members_with_role("coordinator") or config.members_with_role("admin")


def taken_fr(entries: tuple[AgendaEntry, ...] | list[AgendaEntry]) -> str:
    """``déjà pris : rencontre du réseau « Rencontre T2 », « Forum de l'ESS »`` (empty when nothing).

    Plain text, like :func:`candidate_summary` and :func:`assessed_note`: it is kept as a date's note;
    whoever puts it into Markdown escapes it."""
    labels = [("rencontre du réseau " if e.kind == "reunion" else "") + quote(e.title) for e in entries]
    return "déjà pris : " + ", ".join(labels) if labels else ""


def candidate_risks(c: Candidate) -> list[str]:
    """What a date risks, in French: never proposed (public holiday…), days taken, then the rest."""
    return ([c.excluded] if c.excluded else []) + ([taken_fr(c.taken)] if c.taken else []) + list(c.risks)


def candidate_summary(c: Candidate) -> str:
    """One short French line: ``mardi après-midi, hors vacances`` or ``… — attention : …``."""
    good = ", ".join(c.reasons)
    bad = "; ".join(candidate_risks(c))
    if good and bad:
        return f"{good} — attention : {bad}"
    return good or (f"attention : {bad}" if bad else "")


def overlap_fr(o: PollOverlap) -> str:
    """A warning about another open poll on the same period."""
    if o.same_days:
        days = join_fr([date_fr(d) for d in o.same_days])
        return f"le sondage n°{o.id} {q(o.title)}, encore ouvert, propose aussi le {days}"
    return (f"le sondage n°{o.id} {q(o.title)}, encore ouvert, porte sur la même période "
            f"(du {date_fr(o.first.date())} au {date_fr(o.last.date())})")


def closed_fr(view: MeetingView) -> str:
    """Why a poll no longer takes answers nor closes: closed (with the date chosen) or cancelled."""
    head = f"Le sondage n°{view.id} {q(view.title)}"
    if view.is_cancelled:
        return f"{head} est annulé" + (f" (raison : {md_escape(view.cancel_reason)})" if view.cancel_reason
                                       else "") + "."
    chosen = view.option(view.chosen_position) if view.chosen_position else None
    text = f"{head} est déjà clos : date retenue"
    if chosen is not None:
        text += f" n°{chosen.position}, **{datetime_fr(chosen.starts_at)}**"
        if view.starts_at != chosen.starts_at:
            text += f" (déplacée depuis au **{datetime_fr(view.starts_at)}**)"
    else:
        text += f" **{datetime_fr(view.starts_at)}**"
    return text + where_fr(view) + "."


def relative_fr(today: date, day: date) -> str:
    days = (day - today).days
    if days == 0:
        return "aujourd'hui"
    if days == 1:
        return "demain"
    if days > 1:
        return f"dans {days} jours"
    if days == -1:
        return "hier"
    return f"il y a {-days} jours"


def where_fr(view: MeetingView) -> str:
    """``, Besançon`` (Markdown: the place escaped) or nothing."""
    return f", {md_escape(view.location)}" if view.location else ""


def tally_line(option: OptionTally, config: Config) -> str:
    yes, maybe, no = option.counts

    def part(emoji: str, count: int, users) -> str:
        return f"{emoji} {count}" + (f" ({names(config, users)})" if users else "")

    line = " · ".join([part("✅", yes, option.yes), part("🤔", maybe, option.maybe), part("❌", no, option.no)])
    if option.missing:
        line += f" · sans réponse : {len(option.missing)} ({names(config, option.missing)})"
    return f"**{option.position}.** {datetime_fr(option.starts_at)} — {line}"


def counts_fr(option: OptionTally) -> str:
    yes, maybe, no = option.counts
    return f"{yes} oui, {maybe} si besoin, {no} non"


def status_fr(view: MeetingView, now: datetime) -> str:
    if view.is_poll and view.deadline <= now:
        return (f"sondage ouvert ({len(view.options)} dates), date limite dépassée le {datetime_fr(view.deadline)} : "
                "à clore ou prolonger")
    if view.is_poll:
        return f"sondage ouvert ({len(view.options)} dates, réponses jusqu'au {datetime_fr(view.deadline)})"
    if view.is_cancelled:
        when = f" (prévue le {datetime_fr(view.starts_at)})" if view.starts_at else ""
        return f"annulée{when}"
    if view.ends_at <= now:
        return f"passée ({datetime_fr(view.starts_at)}{where_fr(view)})"
    return f"{datetime_fr(view.starts_at)}{where_fr(view)}"


def tally_text(t: Tally, config: Config, now: datetime | None = None) -> str:
    v = t.meeting
    if v.is_poll and now is not None and v.deadline <= now:
        head = (f"📊 **Sondage n°{v.id} — {md_escape(v.title)}** — date limite dépassée ({datetime_fr(v.deadline)}), "
                "sondage encore ouvert")
    elif v.is_poll:
        head = f"📊 **Sondage n°{v.id} — {md_escape(v.title)}** — réponses jusqu'au {datetime_fr(v.deadline)}"
    elif v.is_fixed:
        head = (f"📊 **Sondage n°{v.id} — {md_escape(v.title)}** — clos ; date retenue : n°{v.chosen_position}, "
                f"{datetime_fr(v.starts_at)}")
        if v.starts_at != v.option(v.chosen_position).starts_at:
            head += " (déplacée depuis)"
    else:
        head = f"📊 **Sondage n°{v.id} — {md_escape(v.title)}** — rencontre annulée"
    lines = [head] + [tally_line(o, config) for o in t.options]
    if t.not_answered:
        lines.append(f"Pas encore répondu : {names(config, t.not_answered)}.")
    else:
        lines.append("Tout le monde a répondu. Merci !")
    best = t.best
    if v.is_poll and best is not None:
        lines.append(f"👉 Meilleure date pour l'instant : **n°{best.position}, {datetime_fr(best.starts_at)}** "
                     f"({counts_fr(best)}).")
    return "\n".join(lines)


# -- flows shared by commands and jobs -------------------------------------------------------------------

def _schedule(q: Queue, session: AsyncSession, clock: Clock, kind: str, run_at: datetime, payload: dict,
              key: str) -> None:
    if isinstance(q, Context):
        q.schedule(kind, run_at, payload, key=key)  # tells the scheduler to re-arm after the commit
    else:
        schedule_job(session, kind, run_at, payload, key, now=clock.now())


def post_poll(q: Queue, config: Config, view: MeetingView, voters: list[str]) -> None:
    """The poll in the coordination room: an introduction mentioning the expected voters, one message
    per date carrying the three answer reactions, and optionally a native Matrix poll."""
    p = config.bot.command_prefix
    members = voters
    intro = (f"📊 **Sondage n°{view.id} — {md_escape(view.title)}**"
             f" ({minutes_fr(view.duration_minutes)}{where_fr(view)})\n"
             f"Bonjour {pills(config, members)} ! Quelles dates vous conviennent ? Répondez à **chaque date** "
             "ci-dessous par une réaction : ✅ oui · 🤔 si besoin · ❌ non (retirer votre réaction retire la réponse).\n"
             f"Sans réactions : `{p}reunion dispo {view.id} 1=oui 2=sibesoin 3=non`.\n"
             f"Réponses jusqu'au **{datetime_fr(view.deadline)}** ; `{p}reunion etat {view.id}` montre où on en est.")
    q.announce(view.room_id, intro, mentions=members, tag=f"meeting:{view.id}:intro")
    for option in view.options:
        text = f"**{option.position}.** {datetime_fr(option.starts_at)}"
        if option.note:
            text += f" — {md_escape(option.note)}"
        q.announce(view.room_id, text, tag=option_tag(view.id, option.position))
        for answer in (YES, MAYBE, NO):
            q.send(Outgoing(room_id=view.room_id, kind="reaction", key=REACTIONS[answer],
                            reacts_to="tag:" + option_tag(view.id, option.position)))
    if view.native_poll:
        answers = [{"id": str(o.position), TEXT_KEY: f"{o.position}. {datetime_fr(o.starts_at)}"}
                   for o in view.options]
        fallback = POLL_QUESTION + "\n" + "\n".join(a[TEXT_KEY] for a in answers)
        content = {TEXT_KEY: fallback, "body": fallback,
                   POLL_START: {"kind": POLL_KIND, "max_selections": 1,
                                "question": {TEXT_KEY: f"{POLL_QUESTION} ({view.title}, sondage n°{view.id})",
                                             "body": POLL_QUESTION},
                                "answers": answers}}
        q.send(Outgoing(room_id=view.room_id, kind="poll", body=fallback, event_type=POLL_START, extra=content,
                        tag=poll_tag(view.id), paced=True))


def schedule_poll_jobs(q: Queue, session: AsyncSession, clock: Clock, settings: MeetingSettings,
                       view: MeetingView, *, revision: str = "") -> datetime | None:
    """The reminder to members without an answer and the automatic close; returns the reminder time.

    ``revision`` tells the keys apart when a prolonged poll schedules them again (keys are unique)."""
    _schedule(q, session, clock, JOB_POLL_CLOSE, view.deadline, {"meeting_id": view.id},
              f"meeting:{view.id}:poll:close{revision}")
    if settings.poll_reminder_days <= 0:
        return None
    day = weekday_before(view.deadline.date() - timedelta(days=settings.poll_reminder_days))
    at = datetime.combine(day, REMINDER_TIME, tzinfo=clock.tz)
    if at <= clock.now() or at >= view.deadline:
        return None
    _schedule(q, session, clock, JOB_POLL_REMINDER, at, {"meeting_id": view.id},
              f"meeting:{view.id}:poll:reminder{revision}")
    return at


def reminder_time(start: datetime, days: int, tz: tzinfo) -> datetime:
    """9 h on day J-``days`` (the Friday before when that is a weekend); on the day itself, 9 h or two
    hours before the start if that is earlier."""
    if days == 0:
        return min(datetime.combine(start.astimezone(tz).date(), REMINDER_TIME, tzinfo=tz),
                   start - timedelta(hours=2))
    day = weekday_before(start.astimezone(tz).date() - timedelta(days=days))
    return datetime.combine(day, REMINDER_TIME, tzinfo=tz)


def schedule_reminders(q: Queue, session: AsyncSession, clock: Clock, settings: MeetingSettings,
                       view: MeetingView) -> list[int]:
    """J-N reminders of a fixed meeting (keys carry the sequence: a move schedules new ones)."""
    planned = []
    for days in settings.reminder_days:
        at = reminder_time(view.starts_at, days, clock.tz)
        if at <= clock.now():
            continue
        _schedule(q, session, clock, JOB_REMINDER, at, {"meeting_id": view.id, "days": days,
                                                         "sequence": view.sequence},
                  f"{reminder_key_prefix(view.id)}{days}:s{view.sequence}")
        planned.append(days)
    return planned


def ics_name(view: MeetingView) -> str:
    return f"rencontre-reseau-{view.id}.ics"


def meeting_rooms(config: Config, view: MeetingView) -> list[str]:
    rooms = [config.rooms.coordination or view.room_id]
    return rooms + [r for r in config.rooms.announcements if r not in rooms]


def reminders_fr(days: list[int]) -> str:
    return join_fr([("le jour même" if d == 0 else f"J-{d}") for d in days])


async def fix_date(q: Queue, session: AsyncSession, config: Config, clock: Clock, svc: MeetingService,
                   meeting_id: int, by: str | None, position: int | None = None, *, late: bool = False) -> MeetingView:
    """Close the poll (best date unless ``position``), end the native poll, announce the date with
    its .ics in the coordination and announcement rooms, and plan the reminders."""
    view, tally = await svc.close(session, meeting_id, by, position)
    await cancel_jobs(session, f"meeting:{view.id}:poll:")
    chosen = next(o for o in tally.options if o.position == view.chosen_position)
    if view.native_poll:
        await end_native_poll(q, session, svc, view, f"Sondage clos : date retenue {datetime_fr(view.starts_at)}.")
    planned = schedule_reminders(q, session, clock, config.meetings, view)
    members = svc.voter_ids()
    if by is None:
        how = "Sondage clos à la date limite" + (" (avec retard : le bot était indisponible)" if late else "")
    else:
        how = f"Date choisie par {names(config, [by])}"
    if tally.answered == 0:
        how += " ; personne n'avait répondu"
    else:
        how += f" ; réponses pour cette date : {counts_fr(chosen)}"
    lines = [f"📅 **{md_escape(view.title)}** : la date est fixée !",
             f"**{datetime_fr(view.starts_at)}** ({minutes_fr(view.duration_minutes)}){where_fr(view)}.",
             how + ".",
             (f"Rappels prévus : {reminders_fr(planned)}. " if planned else "")
             + "Le fichier agenda (.ics) suit ce message.",
             f"Avec : {pills(config, members)}"]
    data = svc.ics(view)
    for room in meeting_rooms(config, view):
        q.announce(room, "\n".join(lines), mentions=members)
        q.announce_file(room, ics_name(view), data, ICS_MIME)
    return view


async def end_native_poll(q: Queue, session: AsyncSession, svc: MeetingService, view: MeetingView,
                          text: str) -> None:
    """End the poll's native Matrix poll (refers to it by tag when it is not sent yet)."""
    start_id = await svc.poll_event_id(session, view.id)
    q.send(Outgoing(room_id=view.room_id, kind="poll_end", body=text, event_type=POLL_END,
                    extra={"m.relates_to": {"rel_type": "m.reference",
                                            "event_id": start_id or "tag:" + poll_tag(view.id)},
                           TEXT_KEY: text, "body": text, POLL_END: {}}))


def extend_example(view: MeetingView, today: date) -> str | None:
    """A deadline to suggest for ``!reunion prolonger``: in a week, and two days before the first date
    at the latest; None when there is no room left."""
    first = min(o.starts_at for o in view.options).date()
    day = weekday_before(min(today + timedelta(days=7), first - timedelta(days=2)))
    return day.strftime("%d/%m") if day > today else None


def notify_no_answers(q: Queue, config: Config, clock: Clock, view: MeetingView, *, late: bool = False) -> None:
    """At the deadline, nobody answered: the poll stays open; the coordinators are told, in the
    coordination room, how to go on (fix a date anyway, or give more time)."""
    p = config.bot.command_prefix
    people = coordinators(config)
    room = config.rooms.coordination or view.room_id
    dates = " · ".join(f"{o.position}. {datetime_fr(o.starts_at)}" for o in view.options)
    day = extend_example(view, clock.today())
    extend = f"`{p}reunion prolonger {view.id} {day}`" if day else f"`{p}reunion prolonger {view.id} <date>`"
    text = (f"📭 **Sondage n°{view.id} — {md_escape(view.title)}** : personne n'a répondu avant la date limite "
            f"({datetime_fr(view.deadline)}). Je n'ai fixé aucune date : le sondage reste ouvert.\n"
            f"{pills(config, [m.user_id for m in people])}, deux possibilités :\n"
            f"- fixer une date quand même : `{p}reunion clore {view.id} date=<n°>` (dates : {dates}) ;\n"
            f"- laisser plus de temps : {extend} (nouvelle date limite, relance reprogrammée).")
    if late:
        text += "\n*(Date limite passée pendant une indisponibilité du bot : message envoyé en retard.)*"
    q.announce(room, text, mentions=[m.user_id for m in people])


def assessed_note(c: Candidate) -> str:
    """For an explicit date: only what it risks (``⚠️ jour férié (Fête nationale)``)."""
    risks = [r for r in candidate_risks(c) if not r.startswith(("lundi", "vendredi"))]
    return "⚠️ " + "; ".join(risks) if risks else ""

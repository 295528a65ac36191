"""Pure parsers for what people type: durations, French dates, closed lists, key=value options,
project codes, FTE numbers, and the RGPD check of free text.

Nothing here touches the database or the chat. Every failure raises :class:`ParseError` (or a
subclass) whose ``message`` is a French sentence naming the bad value and showing an example.
"""

from __future__ import annotations

import difflib
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from random import Random

from ess_bot.formatting import date_fr, md_escape
from ess_bot.text import Token, TokenizeError, fold, normalize, shorten, tokenize_quoted  # noqa: F401 (re-exported)
from ess_bot.vocabulary import Choice, ChoiceList


class ParseError(ValueError):
    """Something typed could not be understood. ``message`` is French and meant for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DurationError(ParseError):
    pass


class DateError(ParseError):
    pass


class ChoiceError(ParseError):
    """A value that is not in a closed list (``candidates`` empty) or that is ambiguous."""

    def __init__(self, message: str, value: str, candidates: tuple[Choice, ...] = ()):
        super().__init__(message)
        self.value = value
        self.candidates = candidates

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


class OptionError(ParseError):
    pass


class PersonalDataError(ParseError):
    """Free text holding an e-mail address or a phone number (refused for the RGPD)."""

    def __init__(self, message: str, kind: str, value: str):
        super().__init__(message)
        self.kind = kind
        self.value = value


def quote(value: str) -> str:
    """How a user's value is named in plain text (the terminal, a file): « valeur ». In a Markdown message
    (every ``ParseError.message``, every chat reply) use :func:`md_quote`."""
    return f"« {value} »"


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


QUOTE_MAX = 200  # a value named in a message is cut there (a 10 kB line is not echoed whole)


def md_quote(value: object) -> str:
    """How a typed (or configured) value is named in a Markdown message: « valeur », escaped
    (:func:`ess_bot.formatting.md_escape`) so that it shows exactly as typed, never as markup; control
    characters (a NUL, a line break) are shown as a space; beyond :data:`QUOTE_MAX` characters, cut (…)."""
    return f"« {md_escape(shorten(_UNPRINTABLE.sub(' ', str(value if value is not None else '')), QUOTE_MAX))} »"


# -- tokens ------------------------------------------------------------------------------------

# -- closed lists ------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-_'./’–—]+")


def choice_key(text: str) -> str:
    """Matching key: accents, case and separators ignored ("Ante-Création" → "antecreation")."""
    return _SEPARATORS.sub("", fold(normalize(text)))


@functools.lru_cache(maxsize=1024)
def _spelling_keys(choice: Choice) -> frozenset[str]:
    """The matching keys of one value's spellings (cached: the vocabulary is fixed, and each `!suivi`
    token is checked against every list)."""
    return frozenset(k for k in (choice_key(s) for s in choice.spellings()) if k)


def _candidates(text: str, clist: ChoiceList, min_prefix: int) -> tuple[list[Choice], list[Choice]]:
    """(exact matches, prefix matches) of ``text`` in ``clist``."""
    key = choice_key(text)
    if not key:
        return [], []
    exact = [c for c in clist.choices if key in _spelling_keys(c)]
    if exact or len(key) < min_prefix:
        return exact, []
    prefixed = [c for c in clist.choices if any(k.startswith(key) for k in _spelling_keys(c))]
    return [], prefixed


def _ambiguous_message(value: str, field: str, choices: list[Choice]) -> str:
    from ess_bot.formatting import join_fr
    names = join_fr([f"{c.label}" for c in choices], last="ou")
    return (f"{md_quote(value)} est ambigu pour {field} : {names}. Écrivez quelques lettres de plus, "
            f"par exemple `{choices[0].label}`.")


def match_choice(text: str, clist: ChoiceList, *, min_prefix: int = 1) -> Choice:
    """The value of ``clist`` that ``text`` names, by full spelling or unambiguous prefix.

    ``emerg`` → émergence, ``indiv`` → individuel. Raises ChoiceError when nothing or several match.
    """
    exact, prefixed = _candidates(text, clist, min_prefix)
    if len(exact) == 1:
        return exact[0]
    found = exact or prefixed
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ChoiceError(_ambiguous_message(text, clist.name, found), text, tuple(found))
    possible = ", ".join(f"`{label}`" for label in clist.labels())
    hint = ""
    near = difflib.get_close_matches(choice_key(text), [choice_key(c.label) for c in clist.choices], n=1)
    if near:
        guess = next(c for c in clist.choices if choice_key(c.label) == near[0])
        hint = f" Vouliez-vous dire `{guess.label}` ?"
    raise ChoiceError(f"Valeur inconnue pour {clist.name} : {md_quote(text)}.{hint} Valeurs possibles : {possible}.",
                      text)


def match_among(text: str, lists: dict[str, ChoiceList], *, min_prefix: int = 3
                ) -> tuple[str, Choice] | None:
    """Which field (and value) a bare word names, when several closed lists are possible.

    ``lists`` maps option names (``phase``, ``modalite``) to their lists. An exact spelling wins over
    prefixes; None when nothing matches; ChoiceError when ambiguous (``acc`` could be accueil or…).
    """
    exact: list[tuple[str, Choice]] = []
    prefixed: list[tuple[str, Choice]] = []
    for name, clist in lists.items():
        e, p = _candidates(text, clist, min_prefix)
        exact += [(name, c) for c in e]
        prefixed += [(name, c) for c in p]
    found = exact or prefixed
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    from ess_bot.formatting import join_fr
    names = join_fr([f"{c.label} ({lists[name].name})" for name, c in found], last="ou")
    if len({name for name, _ in found}) == 1:
        hint = f"Écrivez quelques lettres de plus, par exemple `{found[0][1].label}`."
    else:
        name, c = found[0]
        hint = f"Précisez le champ, par exemple `{name}={c.key}`."
    raise ChoiceError(f"{md_quote(text)} est ambigu : {names}. {hint}", text, tuple(c for _, c in found))


PHRASE_MAX_WORDS = 6


def match_phrase(words: list[str], start: int, lists: dict[str, ChoiceList]) -> tuple[str, Choice, int] | None:
    """A closed-list value written over several words from ``start`` (``demandeur d'emploi indemnisé``,
    ``sans activité``, ``moins de 26 ans``): (field, value, words used), the longest exact spelling
    first. Single words are left to :func:`match_among` (which also accepts prefixes). A word with
    nothing to match (a callers' stand-in for a quoted token, say) ends the phrase."""
    longest = 0
    while start + longest < len(words) and longest < PHRASE_MAX_WORDS and choice_key(words[start + longest]):
        longest += 1
    for n in range(longest, 1, -1):
        key = choice_key(" ".join(words[start:start + n]))
        found = [(name, c) for name, clist in lists.items() for c in clist.choices if key in _spelling_keys(c)]
        if len(found) == 1:
            return found[0][0], found[0][1], n
    return None


def match_age(words: list[str], start: int) -> tuple[str, int] | None:
    """An age in years (``30``, ``30 ans``, ``30ans``) → (age band key, words used); None if not a number.
    An improbable age raises ParseError naming it."""
    from ess_bot.vocabulary import AGE_MAX, AGE_MIN, age_band_for
    word = fold(normalize(words[start]))
    m = re.fullmatch(r"(\d{1,3})\s*(ans?)?", word)
    if m is None:
        return None
    used = 1
    if m.group(2) is None and start + 1 < len(words) and fold(words[start + 1]) in ("an", "ans"):
        used = 2
    age = int(m.group(1))
    if not AGE_MIN <= age <= AGE_MAX:
        raise ParseError(f"Âge improbable : {md_quote(' '.join(words[start:start + used]))} (entre {AGE_MIN} et "
                         f"{AGE_MAX} ans). Indiquez l'âge du porteur ou sa tranche, par exemple `30` ou `26-49`.")
    return age_band_for(age), used


def match_list(text: str, clist: ChoiceList) -> tuple[Choice, ...]:
    """A comma-separated list of values (``juridique,financement``), without duplicates."""
    out: list[Choice] = []
    for part in re.split(r"[,;+]", text):
        if part.strip():
            c = match_choice(part.strip(), clist)
            if c not in out:
                out.append(c)
    if not out:
        raise ChoiceError(f"Liste vide pour {clist.name}. Exemple : `{clist.example or clist.choices[0].label}`.",
                          text)
    return tuple(out)


# -- key=value options -------------------------------------------------------------------------

_OPTION = re.compile(r"^([^\W\d][\w\-']*)\s*=(.*)$", re.S)


@dataclass(frozen=True)
class Option:
    key: str       # as typed
    value: str
    raw: str       # the whole token, for messages


def split_options(tokens: list[Token]) -> tuple[list[Option], list[Token]]:
    """Separate ``key=value`` tokens from the others. ``themes=a, b`` (a space after a comma) is
    joined back into one value. A token that starts with a quote is never an option."""
    options: list[Option] = []
    rest: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        m = None if tok.quoted else _OPTION.match(tok.text)
        if m is None:
            rest.append(tok)
            i += 1
            continue
        value, raw = m.group(2).strip(), tok.text
        while value.endswith(",") and i + 1 < len(tokens) and not _OPTION.match(tokens[i + 1].text):
            i += 1
            value += tokens[i].text
            raw += " " + tokens[i].text
        options.append(Option(key=m.group(1), value=value, raw=raw))
        i += 1
    return options, rest


def resolve_options(options: list[Option], keys: ChoiceList, example: str) -> dict[str, str]:
    """Map each option to its canonical key (``durée`` → ``duree``). Unknown, ambiguous, empty or
    repeated keys raise OptionError; ``example`` is a whole command shown in the message."""
    out: dict[str, str] = {}
    for opt in options:
        try:
            key = match_choice(opt.key, keys).key
        except ChoiceError as exc:
            possible = ", ".join(f"`{c.key}=`" for c in keys.choices)
            what = "ambiguë" if exc.ambiguous else "inconnue"
            raise OptionError(f"Option {what} : {md_quote(opt.key + '=')}. Options possibles : {possible}. "
                              f"Exemple : `{example}`") from None
        if not opt.value:
            raise OptionError(f"L'option {md_quote(opt.raw)} n'a pas de valeur. Exemple : `{example}`")
        if key in out:
            raise OptionError(f"L'option `{key}=` est donnée deux fois ({md_quote(opt.raw)}). Gardez-en une seule.")
        out[key] = opt.value
    return out


# -- durations ---------------------------------------------------------------------------------

DURATION_MAX = 12 * 60
DURATION_EXAMPLES = "`1h30`, `45min`, `2h`, `1,5h`"
_DURATION = re.compile(r"""^(?:
      (?P<h>\d{1,2})\s*h(?:eures?|rs?)?\s*(?P<m>\d{1,2})\s*(?:min(?:utes?)?|mn|m)?
    | (?P<hd>\d{1,2}(?:[.,]\d{1,2})?)\s*h(?:eures?|rs?)?
    | (?P<mm>\d{1,3})\s*(?:min(?:utes?)?|mn|m)
    )$""", re.X)


def is_duration(text: str) -> bool:
    return _DURATION.match(fold(normalize(text))) is not None


def parse_duration(text: str) -> int:
    """``1h30``, ``1 h 30``, ``90min``, ``1,5h``, ``2 h``, ``45mn``, ``2h00`` → minutes (1 to 720)."""
    if not text or not text.strip():
        raise DurationError(f"Durée manquante (je n'ai rien reçu). Exemples : {DURATION_EXAMPLES}.")
    m = _DURATION.match(fold(normalize(text)))
    if m is None:
        raise DurationError(f"Durée illisible : {md_quote(text)}. Exemples : {DURATION_EXAMPLES}.")
    if m.group("h") is not None:
        hours, mins = int(m.group("h")), int(m.group("m"))
        if mins >= 60:
            raise DurationError(f"Durée illisible : {md_quote(text)} ({mins} minutes après l'heure). "
                                f"Exemple : `1h30`.")
        minutes = hours * 60 + mins
    elif m.group("hd") is not None:
        minutes = round(float(m.group("hd").replace(",", ".")) * 60)
    else:
        minutes = int(m.group("mm"))
    if minutes <= 0:
        raise DurationError(f"Une durée doit être positive ({md_quote(text)}). Exemples : {DURATION_EXAMPLES}.")
    if minutes > DURATION_MAX:
        raise DurationError(f"Durée trop longue : {md_quote(text)} (au plus 12 h par suivi ; pour plusieurs "
                            "journées, enregistrez un suivi par jour).")
    return minutes


def _starts_month(words: list[str], i: int) -> bool:
    """True when ``words[i]`` is a month name (``novembre``, ``nov.``): the number before it is a day."""
    return i < len(words) and fold(normalize(words[i])).rstrip(".,") in MONTHS


def match_duration(words: list[str], start: int) -> tuple[int, int] | None:
    """A duration written over 1 to 3 words from ``start`` (``1 h 30``): (minutes, words used).

    A bare number that a month name follows is a day, not minutes: ``2h 15 novembre`` is 2 h on the
    15th of November, ``2h 15`` alone is 2 h 15.
    """
    for n in range(min(3, len(words) - start), 0, -1):
        text = " ".join(words[start:start + n])
        if not is_duration(text):
            continue
        last = words[start + n - 1]
        if n > 1 and last.isdigit() and _starts_month(words, start + n):
            continue  # "2h 15 novembre": leave "15" to the date
        return parse_duration(text), n
    return None


# -- the calendar horizon ----------------------------------------------------------------------
# Events, meetings, deadlines and agenda months are accepted from EARLIEST_YEAR to HORIZON_YEARS years
# ahead: nothing the network plans lies further, and dates out there (year 9999) overflow the date
# arithmetic (time zones, reminders) instead of being refused.

EARLIEST_YEAR = 1970
HORIZON_YEARS = 5


def horizon(today: date) -> tuple[date, date]:
    """(first, last) calendar day accepted for what is planned from ``today``."""
    try:
        last = today.replace(year=today.year + HORIZON_YEARS)
    except ValueError:  # 29 February
        last = today.replace(year=today.year + HORIZON_YEARS, day=28)
    return date(EARLIEST_YEAR, 1, 1), last


def check_horizon(found: date, text: str, today: date, *, example: str | None = None) -> date:
    """``found`` (read from ``text``) if it lies within :func:`horizon`; else a DateError naming the
    value, the accepted range and ``example`` (Markdown, e.g. ``"`15/01/2027 18h`"``)."""
    first, last = horizon(today)
    example = example or f"`15/01/{today.year + 1}`"
    if found > last:
        raise DateError(f"Date trop lointaine : {md_quote(text)} ({date_fr(found)}). Je n'accepte pas de date à plus "
                        f"de {HORIZON_YEARS} ans, soit après le {date_fr(last, weekday=False)} : vérifiez l'année. "
                        f"Exemple : {example}.")
    if found < first:
        raise DateError(f"Date trop ancienne : {md_quote(text)} ({date_fr(found)}). Je n'accepte pas de date avant "
                        f"{EARLIEST_YEAR} : vérifiez l'année. Exemple : {example}.")
    return found


def year_in_horizon(year: int, today: date) -> bool:
    first, last = horizon(today)
    return first.year <= year <= last.year


# -- dates -------------------------------------------------------------------------------------

WEEKDAYS = {"lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6}
MONTHS = {"janvier": 1, "janv": 1, "jan": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "mar": 3,
          "avril": 4, "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9,
          "sept": 9, "sep": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "decembre": 12, "dec": 12}
NUMBER_WORDS = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
                "huit": 8, "neuf": 9, "dix": 10, "quinze": 15}
RETENTION_YEARS = 3  # records older than this are out of the current contract and of the RGPD retention
DATE_EXAMPLES = "`hier`, `mardi`, `12/11`, `12 novembre`, `il y a 3 jours`"
_RELATIVE_WORDS = frozenset({
    "hier", "avant-hier", "avant", "aujourd'hui", "aujourdhui", "auj", "demain", "apres-demain", "il", "y", "a",
    "jour", "jours", "semaine", "semaines", "dernier", "derniere", "prochain", "le", "l'", "ce", "cette", "1er", "er",
    "depuis"})
_ANCHORS = frozenset({"hier", "avant-hier", "aujourd'hui", "aujourdhui", "auj", "demain", "apres-demain"})
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DAY_MONTH = re.compile(r"^(?:(?P<wd>[a-z]+) )?(?P<d>\d{1,2}|1er) (?P<mo>[a-z]+)\.?(?: (?P<y>\d{4}))?$")
_WEEKDAY_NUMERIC = re.compile(
    r"^(?P<wd>[a-z]+) (?P<date>\d{1,2}[/.\-]\d{1,2}(?:[/.\-](?:\d{2}|\d{4}))?|\d{4}-\d{2}-\d{2})$")
_MONTH_YEAR = re.compile(r"^(?:(?:en|mois de|de) )?(?P<mo>[a-z]+)\.? (?P<y>\d{4})$")
_AGO = re.compile(r"^il y a (?P<n>\d{1,3}|[a-z]+) (?P<unit>jours?|semaines?)$")
_WEEKDAY = re.compile(r"^(?P<wd>[a-z]+)(?: (?P<last>dernier|derniere))?$")


def _date_key(text: str) -> str:
    text = fold(normalize(text))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^(?:le |l')", "", text)
    return text


def retention_start(today: date) -> date:
    """The oldest date a record may have: ``RETENTION_YEARS`` years before ``today``."""
    try:
        return today.replace(year=today.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - RETENTION_YEARS, day=28)


def too_old_message(text: str, found: date | str, oldest: date) -> str:
    """Why a date older than the retention period is refused, and what to do instead (French)."""
    shown = date_fr(found) if isinstance(found, date) else found
    return (f"La date {md_quote(text)} ({shown}) a plus de {RETENTION_YEARS} ans : les bilans portent sur la "
            f"convention en cours et, pour le RGPD, les suivis ne sont gardés qu'environ {RETENTION_YEARS} ans "
            f"(rien avant le {date_fr(oldest, weekday=False)}). Gardez ce suivi ancien dans les dossiers de votre "
            "structure ; s'il doit compter dans un bilan, voyez-le avec la coordination. Vérifiez aussi l'année, "
            f"par exemple `12/11/{oldest.year + RETENTION_YEARS}`.")


@dataclass(frozen=True)
class DateReading:
    """A date as read: ``assumed_year`` is set when no year was typed and a past year was deduced
    (``15/12`` read in March 2026 → 2025), so the reply can say so."""

    value: date
    assumed_year: int | None = None


class DateParser:
    """French dates relative to an injected ``now``, most recent past first.

    Common forms (``hier``, ``12/11``, ``mardi``, ``12 novembre``, ``il y a 3 jours``…) are read by
    regular expressions; anything else goes to dateparser. One instance per service container; the
    dateparser object is rebuilt only when ``now`` changes (kept on the instance, never global).
    """

    def __init__(self, tz: tzinfo | None = None) -> None:
        self.tz = tz  # the bot's timezone: an aware ``now`` is read as wall-clock time there
        self._settings = {"PREFER_DATES_FROM": "past", "DATE_ORDER": "DMY", "RETURN_AS_TIMEZONE_AWARE": False}
        self._cached: tuple[datetime, object] | None = None

    def today(self, now: datetime) -> date:
        """The local calendar day of ``now``."""
        return self._local(now).date()

    def _local(self, now: datetime) -> datetime:
        """Naive wall-clock time of ``now`` (days are counted on the local calendar, DST included)."""
        if now.tzinfo is not None and self.tz is not None:
            now = now.astimezone(self.tz)
        return now.replace(tzinfo=None)

    # -- public API --------------------------------------------------------------------------
    def parse(self, text: str, now: datetime, *, allow_future: bool = False, oldest: date | None = None) -> date:
        """The calendar date ``text`` names; DateError if unreadable, impossible, or in the future."""
        return self.read(text, now, allow_future=allow_future, oldest=oldest).value

    def read(self, text: str, now: datetime, *, allow_future: bool = False,
             oldest: date | None = None) -> DateReading:
        """Like :meth:`parse`, and whether a past year was deduced. ``oldest``: refuse earlier dates
        (the retention limit, see :func:`retention_start`).

        A day and month without a year (``15/12``, ``15 décembre``) is the nearest such date to today:
        this year's, or last year's when that one is nearer (then ``assumed_year`` says so) — a nearer
        date still to come is refused as future, with the way to write last year's.
        """
        key = _date_key(text)
        if not key:
            raise DateError(f"Date vide. Exemples : {DATE_EXAMPLES}.")
        today = self._local(now).date()
        reading = self._fast(key, text, today, allow_future)
        if reading is None:
            found = self._dateparser(re.sub(r"\s+", " ", normalize(text)).lower(), now)
            reading = DateReading(found) if found is not None else None
        if reading is None:
            raise DateError(f"Date illisible : {md_quote(text)}. Exemples : {DATE_EXAMPLES}.")
        found = reading.value
        if oldest is not None and found < oldest:
            raise DateError(too_old_message(text, found, oldest))
        if found.year < 2000:
            raise DateError(f"Date trop ancienne : {md_quote(text)} ({date_fr(found)}). Exemple : `12/11`.")
        if found > today and not allow_future:
            raise DateError(f"La date {md_quote(text)} ({date_fr(found)}) est dans le futur : on n'enregistre que ce "
                            "qui a déjà eu lieu. Exemples : " + DATE_EXAMPLES + ".")
        return reading

    def looks_like_date(self, words: list[str]) -> bool:
        """True when every word belongs to the date vocabulary and one of them anchors a date."""
        keys = [fold(normalize(w)).rstrip(".,") for w in words]
        if not keys or any(not k for k in keys):
            return False
        has_number = False
        anchor = False
        month = False
        for k in keys:
            if _NUMERIC_DATE.match(k) or _ISO_DATE.match(k):
                anchor = True
            elif k in WEEKDAYS or k in _ANCHORS:
                anchor = True
            elif k in MONTHS:
                month = True
            elif k.isdigit() or k == "1er":
                has_number = True
            elif k not in _RELATIVE_WORDS and k not in NUMBER_WORDS:
                return False
        if "il" in keys or "y" in keys or "a" in keys:
            # "il y a 3 jours" only: these words mean nothing alone
            if keys[:3] != ["il", "y", "a"] or len(keys) < 5 or keys.count("a") > 1:
                return False
            anchor = True
        return anchor or (month and has_number)

    def match_span(self, words: list[str], start: int, now: datetime, *,
                   oldest: date | None = None) -> tuple[date, int] | None:
        """A date written over 1 to 5 words from ``start``: (date, words used), longest first.

        A span that is clearly a date but wrong (future, 31/02) raises DateError.
        """
        found = self.match_reading(words, start, now, oldest=oldest)
        return (found[0].value, found[1]) if found is not None else None

    def match_reading(self, words: list[str], start: int, now: datetime, *,
                      oldest: date | None = None) -> tuple[DateReading, int] | None:
        """:meth:`match_span` with the :class:`DateReading` (to tell when a year was deduced)."""
        for n in range(min(5, len(words) - start), 0, -1):
            span = words[start:start + n]
            if not self.looks_like_date(span):
                continue
            text = " ".join(span)
            try:
                return self.read(text, now, oldest=oldest), n
            except DateError:
                if n == 1 or self._fast_shape(_date_key(text)):
                    raise
        return None

    # -- fast paths --------------------------------------------------------------------------
    @staticmethod
    def _fast_shape(key: str) -> bool:
        return bool(_NUMERIC_DATE.match(key) or _ISO_DATE.match(key) or _DAY_MONTH.match(key)
                    or _WEEKDAY_NUMERIC.match(key) or _MONTH_YEAR.match(key) or _AGO.match(key))

    def _fast(self, key: str, text: str, today: date, allow_future: bool = False) -> DateReading | None:
        m = _WEEKDAY_NUMERIC.match(key)
        if m and m.group("wd") in WEEKDAYS:  # "jeudi 25/11": the weekday must agree with the date
            reading = self._fast(m.group("date"), text, today, allow_future)
            if reading is not None:
                self._check_weekday(reading.value, m.group("wd"), text)
            return reading
        m = _MONTH_YEAR.match(key)
        if m and m.group("mo") in MONTHS:  # "novembre 2025": which day?
            month, year = MONTHS[m.group("mo")], int(m.group("y"))
            oldest = retention_start(today)
            if (year, month) < (oldest.year, oldest.month):
                from ess_bot.formatting import MONTHS_FR
                raise DateError(too_old_message(text, f"{MONTHS_FR[month - 1]} {year}", oldest))
            raise DateError(f"Il manque le jour dans {md_quote(text)} : précisez-le, par exemple "
                            f"`12 {m.group('mo')} {year}` ou `12/{month:02d}/{year}`.")
        found = self._fast_date(key, text, today, allow_future)
        if found is None or isinstance(found, DateReading):
            return found
        return DateReading(found)

    @staticmethod
    def _check_weekday(found: date, weekday: str, text: str) -> None:
        if WEEKDAYS[weekday] != found.weekday():
            from ess_bot.formatting import WEEKDAYS_FR
            raise DateError(f"Le {date_fr(found, weekday=False)} est un {WEEKDAYS_FR[found.weekday()]}, pas un "
                            f"{weekday} ({md_quote(text)}). Vérifiez la date, par exemple "
                            f"`{WEEKDAYS_FR[found.weekday()]} {found.day:02d}/{found.month:02d}`.")

    def _fast_date(self, key: str, text: str, today: date, allow_future: bool) -> date | DateReading | None:
        if key in ("aujourd'hui", "aujourdhui", "auj", "ce jour"):
            return today
        if key == "hier":
            return today - timedelta(days=1)
        if key in ("avant-hier", "avant hier", "avanthier"):
            return today - timedelta(days=2)
        if key == "demain":
            return today + timedelta(days=1)
        m = _AGO.match(key)
        if m:
            n = int(m.group("n")) if m.group("n").isdigit() else NUMBER_WORDS.get(m.group("n"))
            if n is None:
                return None
            days = n * (7 if m.group("unit").startswith("semaine") else 1)
            if days > 3660:
                raise DateError(f"Date trop ancienne : {md_quote(text)}.")
            return today - timedelta(days=days)
        m = _ISO_DATE.match(key)
        if m:
            return self._make(int(m.group(1)), int(m.group(2)), int(m.group(3)), text)
        m = _NUMERIC_DATE.match(key)
        if m:
            day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
            if year is None:
                return self._recent(day, month, today, text, allow_future)
            y = int(year) + (2000 if len(year) == 2 else 0)
            return self._make(y, month, day, text)
        m = _DAY_MONTH.match(key)
        if m and m.group("mo") in MONTHS and (m.group("wd") is None or m.group("wd") in WEEKDAYS):
            day = 1 if m.group("d") == "1er" else int(m.group("d"))
            month = MONTHS[m.group("mo")]
            found = (self._make(int(m.group("y")), month, day, text) if m.group("y")
                     else self._recent(day, month, today, text, allow_future))
            if m.group("wd") is not None:
                self._check_weekday(found.value if isinstance(found, DateReading) else found, m.group("wd"), text)
            return found
        m = _WEEKDAY.match(key)
        if m and m.group("wd") in WEEKDAYS:
            back = (today.weekday() - WEEKDAYS[m.group("wd")]) % 7
            if m.group("last") and back == 0:
                back = 7
            return today - timedelta(days=back)
        return None

    @staticmethod
    def _make(year: int, month: int, day: int, text: str) -> date:
        try:
            return date(year, month, day)
        except ValueError:
            raise DateError(f"Cette date n'existe pas : {md_quote(text)}. Exemple : `12/11/2026`.") from None

    def _recent(self, day: int, month: int, today: date, text: str, allow_future: bool = False) -> DateReading:
        """Day and month without a year: the nearest such date to ``today``, this year's or last year's
        (one rule for every date: ``12/12`` and ``31/12`` typed on 24 November are both this year's,
        so both refused as future). A deduced past year is reported in ``assumed_year``."""
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise DateError(f"Cette date n'existe pas : {md_quote(text)}. Exemple : `12/11`.")
        try:
            this_year = date(today.year, month, day)
        except ValueError:
            if (month, day) == (2, 29):
                raise DateError(f"Le 29 février n'existe pas en {today.year} (ce n'est pas une année bissextile) : "
                                f"{md_quote(text)} ne peut pas désigner cette année. Pour une autre année, précisez-la, "
                                f"par exemple `29/02/{today.year - today.year % 4}`.") from None
            raise DateError(f"Cette date n'existe pas : {md_quote(text)}. Exemple : `12/11`.") from None
        if this_year <= today:
            return DateReading(this_year)
        try:
            last_year = date(today.year - 1, month, day)
        except ValueError:  # 29/02 of a leap year still to come: last year had none
            last_year = None
        if last_year is None or (this_year - today) <= (today - last_year):
            if allow_future:
                return DateReading(this_year)
            example = f"`{day:02d}/{month:02d}/{today.year - 1}`" if last_year else "`12/11`"
            raise DateError(f"La date {md_quote(text)} ({date_fr(this_year)}) est dans le futur : on n'enregistre que "
                            f"ce qui a déjà eu lieu. Pour l'an dernier, précisez l'année, par exemple {example}.")
        return DateReading(last_year, assumed_year=last_year.year)

    # -- dateparser fallback -----------------------------------------------------------------
    def _parser_for(self, base: datetime):
        if self._cached is None or self._cached[0] != base:
            from dateparser.date import DateDataParser
            parser = DateDataParser(languages=["fr"], settings={**self._settings, "RELATIVE_BASE": base})
            self._cached = (base, parser)
        return self._cached[1]

    def _dateparser(self, key: str, now: datetime) -> date | None:
        base = self._local(now).replace(microsecond=0)
        try:
            data = self._parser_for(base).get_date_data(key)
        except Exception:  # noqa: BLE001 - a third-party parser on free text: any failure means "unreadable"
            return None
        if data is None or data.date_obj is None:
            return None
        return data.date_obj.date()


# -- numbers -----------------------------------------------------------------------------------

def parse_fte(text: str) -> Decimal:
    """Jobs in full-time equivalents: ``2``, ``1,5``, ``0.8`` → Decimal (0 to 999, two decimals)."""
    cleaned = normalize(text).replace(",", ".").replace(" ", "")
    cleaned = re.sub(r"(?i)(etp|emplois?)$", "", cleaned)
    if not re.fullmatch(r"\d{1,3}(?:\.\d{1,2})?", cleaned):
        raise ParseError(f"Nombre d'emplois illisible : {md_quote(text)}. Indiquez des équivalents temps plein, "
                         "par exemple `emplois=2` ou `emplois=1,5`.")
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        raise ParseError(f"Nombre d'emplois illisible : {md_quote(text)}.") from None


_NUMBER = re.compile(r"^(?:n[°o]?|no|#)?\s*\.?\s*(?P<sign>[-+]?)\s*(?P<digits>\d+)$")


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def parse_number(text: str, what: str, example: str, *, low: int = 1, high: int = 10**9) -> int:
    """A record number as people type it: ``42``, ``n°42``, ``n° 42``, ``no 42``, ``#42`` → 42.

    ``what`` completes "Numéro …" (``"du suivi"``, ``"de l'outil"``, ``"de l'événement"``); ``example``
    is a whole command shown in the message (``!suivi annuler 42``). Raises ParseError naming the value
    when it is missing, not a number, or outside ``low``–``high``.
    """
    raw = (text or "").strip()
    if not raw:
        raise ParseError(f"Numéro {what} attendu, par exemple `{example}` (je n'ai rien reçu).")
    m = _NUMBER.match(fold(normalize(raw)).replace("º", "°"))
    if m is None:
        raise ParseError(f"Numéro {what} attendu, par exemple `{example}` (reçu : {md_quote(raw)}).")
    digits = m.group("digits").lstrip("0") or "0"
    if len(digits) > len(str(high)):  # never converted: a 5,000-digit number is over int()'s limit
        value = high + 1 if m.group("sign") != "-" else low - 1
    else:
        value = int(digits) * (-1 if m.group("sign") == "-" else 1)
    if value > high:
        raise ParseError(f"Numéro {md_quote(raw)} trop grand : le numéro {what} va de {low} à {_thousands(high)}. "
                         f"Par exemple `{example}`.")
    if value < low:
        raise ParseError(f"Numéro {md_quote(raw)} trop petit : le numéro {what} commence à {low}. "
                         f"Par exemple `{example}`.")
    return value


# -- project codes -----------------------------------------------------------------------------

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
CODE_LENGTH = 4
_CODE = re.compile(rf"^P-?([{CODE_ALPHABET}]{{{CODE_LENGTH}}})$")
_CODE_SHAPE = re.compile(r"^P-[A-Z0-9]{3,6}$")


def parse_project_code(text: str) -> str | None:
    """``p-7k3q`` or ``P7K3Q`` → ``P-7K3Q``; None if ``text`` is not a project code."""
    m = _CODE.match(normalize(text).upper())
    return f"P-{m.group(1)}" if m else None


def looks_like_code(text: str) -> bool:
    """A code-shaped word (``P-1234``) even if not a valid code: to say "unknown code"."""
    return parse_project_code(text) is not None or bool(_CODE_SHAPE.match(normalize(text).upper()))


def new_project_code(rng: Random | None = None) -> str:
    """A random code such as ``P-7K3Q`` (31⁴ ≈ 920 000 possibilities; uniqueness checked by the caller)."""
    pick = rng.choice if rng is not None else secrets.choice
    return "P-" + "".join(pick(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# -- RGPD --------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_PHONE = re.compile(r"(?<![\d+])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]|0[1-9])(?:[\s.\-]?\d{2}){4}(?!\d)")


# Health data is sensitive (RGPD art. 9): never in the chat, not even "RQTH" as a hint. Whole words,
# accents and case ignored (``sante`` and ``Santé`` both match; ``santon`` does not).
HEALTH_WORDS = (
    "handicap", "handicaps", "handicape", "handicapee", "handicapes", "handicapees", "mdph", "rqth", "aah",
    "ald", "maladie", "maladies", "malade", "malades", "sante", "medical", "medicale", "medicaux", "medicales",
    "depression", "depressions", "depressif", "depressive", "cancer", "cancers", "grossesse", "grossesses",
    "invalidite", "hospitalisation", "hospitalise", "hospitalisee", "psychiatrique", "psychiatrie",
    "burn-out", "burnout", "diabete", "chimiotherapie", "therapie", "traitement medical",
)
_HEALTH = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(HEALTH_WORDS, key=len, reverse=True))
                     + r")(?!\w)")
# Names of places, trades and sectors, not anyone's health: the ESS has maisons de santé (often SCIC),
# centres de santé, mutuelles, sport-santé associations… "Maison de santé des Tilleuls" is a project's
# name; "maladie", "RQTH" or "santé" on its own still are refused. Folded (no accent, lower case);
# spaces and hyphens alike.
HEALTH_SECTOR_PHRASES = (
    "maison de sante", "maisons de sante", "centre de sante", "centres de sante", "pole de sante",
    "poles de sante", "reseau de sante", "mutuelle sante", "mutuelle de sante", "mutuelles de sante",
    "sport sante", "centre medical", "cabinet medical", "materiel medical", "art therapie",
)
_HEALTH_SECTOR = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p).replace(r"\ ", r"[\s\-]+")
                                                     for p in HEALTH_SECTOR_PHRASES) + r")(?!\w)")


@dataclass(frozen=True)
class PersonalData:
    kind: str   # "email" | "phone" | "health"
    value: str


def _fold_spans(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each folded character, its index in ``text`` (to quote what was typed)."""
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        f = fold(ch)
        out.append(f)
        index += [i] * len(f)
    return "".join(out), index


def find_personal_data(text: str) -> list[PersonalData]:
    """E-mail addresses, French phone numbers and health words found in ``text``."""
    text = normalize(text)
    found = [PersonalData("email", m.group(0)) for m in _EMAIL.finditer(text)]
    found += [PersonalData("phone", m.group(0)) for m in _PHONE.finditer(text)]
    folded, index = _fold_spans(text)
    # sector phrases blanked out (same length: the positions still point into ``text``)
    folded = _HEALTH_SECTOR.sub(lambda m: " " * len(m.group(0)), folded)
    for m in _HEALTH.finditer(folded):
        found.append(PersonalData("health", text[index[m.start()]:index[m.end() - 1] + 1]))
    return found


def check_personal_data(text: str, field: str = "la note") -> None:
    """Refuse free text holding an e-mail address, a phone number (no contact details) or a health
    word (handicap, MDPH, RQTH, maladie…: health data must never be written in the chat) — RGPD.

    ``field`` names the text in the message (``"la note"``, ``"le nom du projet"``)."""
    found = find_personal_data(text)
    if not found:
        return
    first = found[0]
    if first.kind == "health":
        raise PersonalDataError(
            f"🔒 {field[:1].upper() + field[1:]} contient une donnée de santé ({md_quote(first.value)}) : pas de données "
            "de santé dans le chat (RGPD, données sensibles : handicap, maladie, RQTH, MDPH…). Gardez-les dans les "
            "fichiers de votre structure et écrivez seulement ce qui sert au suivi, par exemple "
            "« besoin d'un accompagnement adapté ». Retirez ce mot et recommencez.", first.kind, first.value)
    kind = "une adresse e-mail" if first.kind == "email" else "un numéro de téléphone"
    raise PersonalDataError(
        f"🔒 {field[:1].upper() + field[1:]} contient {kind} ({md_quote(first.value)}) : pour respecter le RGPD, aucune "
        "coordonnée personnelle ne doit être enregistrée ici — gardez-les dans les fichiers de votre structure. "
        "Retirez-la et recommencez.", first.kind, first.value)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Typography normalised, control characters and lone surrogates removed, spaces collapsed."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", normalize(text))).strip()


def check_note(text: str, what: str = "la note", limit: int = 280) -> str:
    """A note: trimmed, at most ``limit`` characters, without contact details."""
    text = clean_text(text)
    if len(text) > limit:
        raise ParseError(f"{what.capitalize()} est trop longue ({len(text)} caractères, {limit} au plus). "
                         "Résumez-la en une phrase.")
    check_personal_data(text, what)
    return text


# -- the accompaniment line: "!suivi P-7K3Q émergence 1h30 hier visio "note" themes=juridique" --------

@dataclass
class RecordLine:
    """What a ``!suivi`` line says, before the project is looked up. Fields any order."""

    project_code: str | None = None        # P-7K3Q (or a code-shaped word, to report as unknown)
    project_option: str | None = None      # projet=…
    project_words: list[str] | None = None  # bare words that are nothing else: part of a label
    quoted: list[str] | None = None        # quoted texts: a label and/or the note
    phase: str | None = None
    modality: str | None = None
    duration: int | None = None
    date: date | None = None
    date_text: str | None = None           # the date as typed
    assumed_year: int | None = None        # a past year deduced for a date typed without one
    themes: tuple[str, ...] | None = None
    note: str | None = None                # note=… ("" when cleared with note=-)

    def __post_init__(self) -> None:
        self.project_words = self.project_words or []
        self.quoted = self.quoted or []


RECORD_OPTIONS = ChoiceList("option", (
    Choice("projet", "projet", ("project",)),
    Choice("phase", "phase"),
    Choice("modalite", "modalité", ("mode",)),
    Choice("duree", "durée", ("temps",)),
    Choice("date", "date", ("jour",)),
    Choice("themes", "thèmes", ("theme", "thème")),
    Choice("note", "note", ("commentaire",)),
))
# The first and last words of a record line read one by one: a duration, a date, a phase, a modality and a
# code take at most about 15 words, a project label at most 12 (services.accompaniments.REF_MAX_WORDS), so
# a line of more than 80 words has a label too long whatever its middle is — reading each of 5,000 words
# (a 10 kB line) took a second of the bot's only thread.
RECORD_SCAN_MAX = 40
RECORD_FIELDS = {"phase": "la phase", "modality": "la modalité", "duration": "la durée", "date": "la date"}


def parse_record_line(tokens: list[Token], now: datetime, dates: DateParser, *, example: str) -> RecordLine:
    """Read the fields of an accompaniment line. Pure: the project is resolved by the caller.

    Positional words are tried, in order, as a duration (``1 h 30``), a date (``mardi dernier``),
    a project code, then a phase or a modality (several words, ``post création``, or one word by
    prefix of at least 3 letters); what remains is part of the project's label. Dates older than the
    retention period (:data:`RETENTION_YEARS`) are refused. Quoted texts are a label or the note;
    ``key=value`` options win.
    """
    from ess_bot.vocabulary import MODALITIES, PHASES, THEMES
    options, rest = split_options(tokens)
    opts = resolve_options(options, RECORD_OPTIONS, example)
    line = RecordLine()

    def put(name: str, value, text: str) -> None:
        if getattr(line, name) is not None:
            raise ParseError(f"{RECORD_FIELDS[name].capitalize()} est donnée deux fois (la seconde fois : "
                             f"{md_quote(text)}). Gardez-en une seule. Exemple : `{example}`")
        setattr(line, name, value)

    if "projet" in opts:
        line.project_option = opts["projet"]
    if "phase" in opts:
        put("phase", match_choice(opts["phase"], PHASES).key, opts["phase"])
    if "modalite" in opts:
        put("modality", match_choice(opts["modalite"], MODALITIES).key, opts["modalite"])
    if "duree" in opts:
        put("duration", parse_duration(opts["duree"]), opts["duree"])
    oldest = retention_start(dates.today(now))

    def put_date(reading: DateReading, text: str) -> None:
        put("date", reading.value, text)
        line.date_text, line.assumed_year = text, reading.assumed_year

    if "date" in opts:
        put_date(dates.read(opts["date"], now, oldest=oldest), opts["date"])
    if "themes" in opts:
        line.themes = () if opts["themes"].strip() in ("-", "aucun") else tuple(
            c.key for c in match_list(opts["themes"], THEMES))
    if "note" in opts:
        line.note = "" if opts["note"].strip() == "-" else opts["note"]

    sentinel = "\ue000"  # a quoted token in the lookahead spans: matches nothing (survives normalize and fold)
    words = [sentinel if t.quoted else t.text for t in rest]
    lists = {"phase": PHASES, "modalite": MODALITIES}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if RECORD_SCAN_MAX <= i < len(rest) - RECORD_SCAN_MAX:
            # the middle of a very long line: part of a label already too long, not read word by word
            middle, i = rest[i:len(rest) - RECORD_SCAN_MAX], len(rest) - RECORD_SCAN_MAX
            line.quoted += [t.text for t in middle if t.quoted]
            line.project_words += [t.text for t in middle if not t.quoted]
            continue
        if tok.quoted:
            line.quoted.append(tok.text)
            i += 1
            continue
        found = match_duration(words, i)
        if found is not None:
            put("duration", found[0], " ".join(words[i:i + found[1]]))
            i += found[1]
            continue
        span = dates.match_reading(words, i, now, oldest=oldest)
        if span is not None:
            put_date(span[0], " ".join(words[i:i + span[1]]))
            i += span[1]
            continue
        if looks_like_code(tok.text):
            if line.project_code is not None:
                raise ParseError(f"Deux projets sont cités ({line.project_code} et {md_escape(tok.text)}) : un suivi concerne "
                                 f"un seul projet. Exemple : `{example}`")
            line.project_code = parse_project_code(tok.text) or tok.text.upper()
            i += 1
            continue
        phrase = match_phrase(words, i, lists)  # "post création", "en présentiel"
        if phrase is not None:
            name, choice, n = phrase
            put("phase" if name == "phase" else "modality", choice.key, " ".join(words[i:i + n]))
            i += n
            continue
        matched = match_among(tok.text, lists, min_prefix=3)
        if matched is not None:
            name, choice = matched
            put("phase" if name == "phase" else "modality", choice.key, tok.text)
        else:
            line.project_words.append(tok.text)
        i += 1
    return line


_YES = frozenset({"oui", "o", "yes", "y", "vrai", "true", "1"})
_NO = frozenset({"non", "n", "no", "faux", "false", "0"})


def parse_yes_no(text: str, what: str) -> bool:
    """``oui``/``non`` (and a few synonyms) → bool."""
    key = choice_key(text)
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise ParseError(f"Réponse attendue « oui » ou « non » pour {what} (reçu : {md_quote(text)}).")

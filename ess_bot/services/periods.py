"""Report periods written in French: ``2026``, ``T3 2026``, ``S1 2026``, ``novembre 2026``,
``du 01/01/2026 au 30/06/2026``, ``ce trimestre``, ``trimestre dernier``, ``2025-2026``…

Pure: ``today`` is given by the caller (from the injected clock). Every failure raises
:class:`PeriodError` whose ``message`` is a French sentence naming the value, with examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from ess_bot.formatting import MONTHS_FR, date_fr
from ess_bot.parsing import MONTHS, ParseError, md_quote
from ess_bot.text import fold, normalize

PERIOD_EXAMPLES = ("`2026`, `T3 2026`, `S1 2026`, `novembre 2026`, `du 01/01/2026 au 30/06/2026`, "
                   "`ce trimestre`, `trimestre dernier`")
MIN_YEAR = 2000


class PeriodError(ParseError):
    """A period that cannot be read, is impossible, or has not started yet."""


@dataclass(frozen=True)
class Period:
    """Calendar days from ``start`` to ``end``, both included."""

    start: date
    end: date
    label: str   # "3e trimestre 2026", shown to people
    slug: str    # "2026-T3", used in file names

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def months(self) -> list[tuple[int, int]]:
        """(year, month) of every month the period touches, in order."""
        out: list[tuple[int, int]] = []
        y, m = self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def dates_text(self) -> str:
        """``du 1er juillet au 30 septembre 2026``."""
        if self.start == self.end:
            return f"le {date_fr(self.start, weekday=False)}"
        if self.start.year == self.end.year:
            first = date_fr(self.start, weekday=False).rsplit(" ", 1)[0]
        else:
            first = date_fr(self.start, weekday=False)
        return f"du {first} au {date_fr(self.end, weekday=False)}"


# -- constructors ------------------------------------------------------------------------------

def _ordinal(n: int, feminine: bool = False) -> str:
    return ("1re" if feminine else "1er") if n == 1 else f"{n}e"


def year_period(year: int) -> Period:
    return Period(date(year, 1, 1), date(year, 12, 31), f"année {year}", str(year))


def years_period(first: int, last: int) -> Period:
    if first == last:
        return year_period(first)
    return Period(date(first, 1, 1), date(last, 12, 31), f"années {first} à {last}", f"{first}-{last}")


def quarter_period(year: int, quarter: int) -> Period:
    start = date(year, 3 * quarter - 2, 1)
    return Period(start, _month_end(year, 3 * quarter), f"{_ordinal(quarter)} trimestre {year}",
                  f"{year}-T{quarter}")


def semester_period(year: int, semester: int) -> Period:
    start = date(year, 6 * semester - 5, 1)
    return Period(start, _month_end(year, 6 * semester), f"{_ordinal(semester)} semestre {year}",
                  f"{year}-S{semester}")


def month_period(year: int, month: int) -> Period:
    return Period(date(year, month, 1), _month_end(year, month), f"{MONTHS_FR[month - 1]} {year}",
                  f"{year}-{month:02d}")


def range_period(start: date, end: date) -> Period:
    p = Period(start, end, "", f"{start.isoformat()}_{end.isoformat()}")
    return Period(start, end, p.dates_text(), p.slug)


def current_quarter(today: date) -> Period:
    return quarter_period(today.year, (today.month - 1) // 3 + 1)


def _month_end(year: int, month: int) -> date:
    return (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)


# -- parsing -----------------------------------------------------------------------------------

_ORDINALS = {"1": 1, "1er": 1, "1ere": 1, "1re": 1, "1e": 1, "premier": 1, "premiere": 1,
             "2": 2, "2e": 2, "2eme": 2, "2nd": 2, "2nde": 2, "2d": 2, "deuxieme": 2, "second": 2, "seconde": 2,
             "3": 3, "3e": 3, "3eme": 3, "troisieme": 3, "4": 4, "4e": 4, "4eme": 4, "quatrieme": 4}
_CURRENT = {"ce", "cet", "cette", "en cours", "actuel", "actuelle", "courant", "present", "ci"}
_PREVIOUS = {"dernier", "derniere", "precedent", "precedente", "passe", "passee"}
_UNITS = {"trimestre": "quarter", "semestre": "semester", "mois": "month", "annee": "year", "an": "year"}
_NUM_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_TEXT_DATE = re.compile(r"^(1er|\d{1,2}) ([a-z]+)\.?(?: (\d{4}))?$")
_MONTH = re.compile(r"^([a-z]+)\.?(?: (\d{4}))?$")
_NUM_MONTH = re.compile(r"^(?:(\d{1,2})[/.\-](\d{4})|(\d{4})[/.\-](\d{1,2}))$")
_RANGE_PREFIX = re.compile(r"^(?:du|de|entre|des|dès) ")
_RANGE_SEPARATORS = (" au ", " jusqu'au ", " jusqu'a ", " a ", " et ", " - ", "-")


def _key(text: str) -> str:
    text = fold(normalize(text)).replace("’", "'")
    text = re.sub(r"[\s,;]+", " ", text).strip()
    return re.sub(r"^(?:le |la |l'|les |en |pour |sur |periode |période )+", "", text).strip()


def _unreadable(text: str) -> PeriodError:
    return PeriodError(f"Période illisible : {md_quote(text)}. Exemples : {PERIOD_EXAMPLES}.")


def _check_year(year: int, text: str) -> int:
    if not MIN_YEAR <= year <= 2100:
        raise PeriodError(f"Année impossible : {md_quote(text)} ({year}). Exemple : `T3 2026`.")
    return year


def _recent(make, today: date):
    """The most recent period (this year's, else last year's) that has started by ``today``."""
    p = make(today.year)
    return p if p.start <= today else make(today.year - 1)


def parse_period(text: str, today: date) -> Period:
    """The period ``text`` names; empty text is the current quarter. PeriodError otherwise."""
    if not normalize(text):
        return current_quarter(today)
    key = _key(text)
    period = _relative(key, today) or _named(key, text, today) or _range(key, text, today)
    if period is None:
        raise _unreadable(text)
    if period.start > today:
        raise PeriodError(f"La période {md_quote(text)} ({period.label}) n'a pas encore commencé : nous sommes le "
                          f"{date_fr(today, weekday=False)}. Exemples : {PERIOD_EXAMPLES}.")
    return period


def _relative(key: str, today: date) -> Period | None:
    """``ce trimestre``, ``trimestre dernier``, ``le mois précédent``, ``l'an dernier``, ``cette année``…"""
    words = key.replace("-", " ").replace("'", " ").split()
    units = [w for w in words if w in _UNITS]
    if len(units) != 1:
        return None
    rest = [w for w in words if w not in _UNITS and w not in ("l", "d")]
    unit = _UNITS[units[0]]
    if rest and all(w in _PREVIOUS for w in rest):
        back = 1
    elif all(w in _CURRENT or w == "en" or w == "cours" for w in rest):
        back = 0
    else:
        return None
    if unit == "year":
        return year_period(today.year - back)
    if unit == "month":
        y, m = today.year, today.month - back
        if m == 0:
            y, m = y - 1, 12
        return month_period(y, m)
    if unit == "quarter":
        q = (today.month - 1) // 3 + 1 - back
        return quarter_period(today.year, q) if q else quarter_period(today.year - 1, 4)
    s = (today.month - 1) // 6 + 1 - back
    return semester_period(today.year, s) if s else semester_period(today.year - 1, 2)


def _named(key: str, text: str, today: date) -> Period | None:
    """A year, a quarter, a semester or a month."""
    compact = key.replace(" ", "")
    m = re.fullmatch(r"(?:annee)?(\d{4})", compact)
    if m:
        return year_period(_check_year(int(m.group(1)), text))
    m = re.fullmatch(r"(\d{4})[\-/]?(\d{4})", compact) or re.fullmatch(r"(?:de)?(\d{4})a(\d{4})", compact)
    if m:
        first, last = _check_year(int(m.group(1)), text), _check_year(int(m.group(2)), text)
        if last < first:
            raise PeriodError(f"Années dans le désordre : {md_quote(text)}. Exemple : `2025-2026`.")
        return years_period(first, last)
    for letters, unit, count, make in (("tq", "trimestre", 4, quarter_period), ("s", "semestre", 2, semester_period)):
        found = (re.fullmatch(rf"[{letters}]([1-9])[\-/]?(\d{{4}})?", compact)
                 or re.fullmatch(rf"(\d{{4}})[\-/]?[{letters}]([1-9])", compact))
        number = year = None
        if found:
            a, b = found.groups()
            number, year = (a, b) if not (a and len(a) == 4) else (b, a)
        else:
            words = key.split()
            if unit in words:
                i = words.index(unit)
                before, after = words[:i], words[i + 1:]
                if len(before) == 1 and before[0] in (*_ORDINALS, "dernier", "derniere") and len(after) <= 1:
                    number = str(count) if before[0] in ("dernier", "derniere") else str(_ORDINALS[before[0]])
                    year = after[0] if after else None
                elif not before and 1 <= len(after) <= 2 and after[0] in _ORDINALS:
                    number, year = str(_ORDINALS[after[0]]), (after[1] if len(after) == 2 else None)
                else:
                    continue
                if year is not None and not re.fullmatch(r"\d{4}", year):
                    return None
                if before and before[0] in ("dernier", "derniere") and year is None:
                    return None  # "dernier trimestre" alone is the previous one (handled above)
        if number is None:
            continue
        n = int(number)
        if not 1 <= n <= count:
            raise PeriodError(f"Il n'y a que {count} {unit}s dans une année ({md_quote(text)}). "
                              f"Exemple : `{'T3' if count == 4 else 'S1'} 2026`.")
        if year is None:
            return _recent(lambda y: make(y, n), today)
        return make(_check_year(int(year), text), n)
    m = _NUM_MONTH.fullmatch(compact)
    if m:
        month, year = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(4)), int(m.group(3)))
        if not 1 <= month <= 12:
            raise PeriodError(f"Mois impossible : {md_quote(text)}. Exemple : `11/2026` ou `novembre 2026`.")
        return month_period(_check_year(year, text), month)
    m = _MONTH.fullmatch(key)
    if m and m.group(1) in MONTHS:
        month = MONTHS[m.group(1)]
        if m.group(2):
            return month_period(_check_year(int(m.group(2)), text), month)
        return _recent(lambda y: month_period(y, month), today)
    return None


def _range(key: str, text: str, today: date) -> Period | None:
    """``du 01/01/2026 au 30/06/2026``, ``de janvier à mars 2026``, ``depuis le 01/03/2026``."""
    since = re.fullmatch(r"(?:depuis|a partir)(?: du| de| le)* (.+)", key)
    if since:
        start = _bound(since.group(1), text, None, today, end=False)
        if start is None:
            return None
        if start > today:
            raise PeriodError(f"La date de début est dans le futur : {md_quote(text)}.")
        return range_period(start, today)
    body = _RANGE_PREFIX.sub("", key)
    problem: PeriodError | None = None
    for sep in _RANGE_SEPARATORS:
        for found in re.finditer(re.escape(sep), body):
            left, right = body[:found.start()].strip(), body[found.end():].strip()
            if not left or not right:
                continue
            try:
                end = _bound(right, text, None, today, end=True)
                start = _bound(left, text, end.year, today, end=False) if end is not None else None
                if start is not None and start > end and not re.search(r"\d{4}", left):
                    start = _bound(left, text, end.year - 1, today, end=False)  # du 15/12 au 15/01/2027
            except PeriodError as exc:
                problem = problem or exc
                continue
            if start is None:
                continue
            if start > end:
                raise PeriodError(f"Le début de la période est après sa fin : {md_quote(text)}. "
                                  "Exemple : `du 01/01/2026 au 30/06/2026`.")
            return range_period(start, end)
    if problem is not None:
        raise problem
    return None


def _bound(part: str, text: str, year: int | None, today: date, *, end: bool) -> date | None:
    """One end of a range: a day (``01/01/2026``, ``1er janvier 2026``) or a month (``mars 2026``).
    A missing year is the other end's, or this year's."""
    part = re.sub(r"^(?:le |du |au |l')", "", part).strip()
    default_year = year if year is not None else today.year
    try:
        m = _ISO_DATE.fullmatch(part)
        if m:
            return date(_check_year(int(m.group(1)), text), int(m.group(2)), int(m.group(3)))
        m = _NUM_DATE.fullmatch(part)
        if m:
            y = m.group(3)
            y_int = default_year if y is None else int(y) + (2000 if len(y) == 2 else 0)
            return date(_check_year(y_int, text), int(m.group(2)), int(m.group(1)))
        m = _TEXT_DATE.fullmatch(part)
        if m and m.group(2) in MONTHS:
            day = 1 if m.group(1) == "1er" else int(m.group(1))
            y_int = int(m.group(3)) if m.group(3) else default_year
            return date(_check_year(y_int, text), MONTHS[m.group(2)], day)
    except ValueError:
        raise PeriodError(f"Cette date n'existe pas dans {md_quote(text)}. Exemple : `du 01/01/2026 au 30/06/2026`.") \
            from None
    m = _MONTH.fullmatch(part)
    if m and m.group(1) in MONTHS:
        p = month_period(_check_year(int(m.group(2)) if m.group(2) else default_year, text), MONTHS[m.group(1)])
        return p.end if end else p.start
    m = _NUM_MONTH.fullmatch(part)
    if m:
        month, y_int = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(4)), int(m.group(3)))
        if not 1 <= month <= 12:
            return None
        p = month_period(_check_year(y_int, text), month)
        return p.end if end else p.start
    return None

"""Choosing dates for the network's gatherings: a pure scorer (no database, no chat).

The French calendar rules (public holidays, bridge days, zone A school holidays of the Besançon and
Dijon académies, the summer break) come from ``holidays``; the caller gives the clock's date, a
window, the days already taken (other meetings and events) and the other gatherings of the year,
and gets candidates ranked best first, each with the reasons it was chosen and what it risks.

Automatic proposals never fall on a weekend, a public holiday or a bridge day. Explicit dates are
only assessed: :func:`assess` says what they risk, the caller decides (warn, but accept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

import holidays

from ess_bot.config import MeetingSettings
from ess_bot.formatting import WEEKDAYS_FR, date_fr

MORNING = time(9, 30)
AFTERNOON = time(14, 0)
SUMMER = ((7, 14), (8, 25))          # 14 July – 25 August: most people are away
MIN_NOTICE_DAYS = 14                  # an automatic window starts at least two weeks from today
FULL_DAY_MINUTES = 270                # longer gatherings start in the morning

# score = BASE - penalties; the values only matter relative to each other
BASE = 100.0
PENALTY_BUSY = 45.0
PENALTY_SUMMER = 40.0
PENALTY_SCHOOL = 30.0
PENALTY_MONDAY_FRIDAY = 15.0
PENALTY_AFTER_HOLIDAY = 10.0
PENALTY_BEFORE_HOLIDAY = 6.0
PENALTY_SPACING = 30.0               # at most, for a date right next to another gathering
PENALTY_TARGET = 20.0                # at most, for a date at the edge of the window (when it has a target)


class FrenchCalendar:
    """Public holidays, bridge days and zone A school holidays, computed per year when first asked."""

    def __init__(self) -> None:
        self._public: dict[int, dict[date, str]] = {}
        self._school: dict[int, dict[date, str]] = {}

    def _years(self, cache: dict[int, dict[date, str]], year: int, **kwargs) -> dict[date, str]:
        if year not in cache:
            cache[year] = dict(holidays.country_holidays("FR", years=year, language="fr", **kwargs).items())
        return cache[year]

    def public_holiday(self, day: date) -> str | None:
        """The holiday's French name (``Fête nationale``), or None."""
        return self._years(self._public, day.year).get(day)

    def school_holiday(self, day: date) -> str | None:
        """Zone A (Besançon, Dijon) school holidays: ``Vacances d'hiver``, ``Pont de l'Ascension``…"""
        return self._years(self._school, day.year, subdiv="Zone A", categories=("school",)).get(day)

    def bridge(self, day: date) -> str | None:
        """A bridge day ("pont"): the Friday after a Thursday holiday or the Monday before a Tuesday one.

        Returns the name of the holiday it bridges to.
        """
        if day.weekday() == 4:
            return self.public_holiday(day - timedelta(days=1))
        if day.weekday() == 0:
            return self.public_holiday(day + timedelta(days=1))
        return None

    def info(self, day: date) -> "DayInfo":
        return DayInfo(day=day, public_holiday=self.public_holiday(day), bridge=self.bridge(day),
                       school_holiday=self.school_holiday(day), summer=in_summer(day),
                       after_holiday=self.public_holiday(day - timedelta(days=1)),
                       before_holiday=self.public_holiday(day + timedelta(days=1)))


def in_summer(day: date) -> bool:
    (m1, d1), (m2, d2) = SUMMER
    return date(day.year, m1, d1) <= day <= date(day.year, m2, d2)


@dataclass(frozen=True)
class DayInfo:
    day: date
    public_holiday: str | None = None
    bridge: str | None = None
    school_holiday: str | None = None
    summer: bool = False
    after_holiday: str | None = None
    before_holiday: str | None = None

    @property
    def weekend(self) -> bool:
        return self.day.weekday() >= 5

    @property
    def excluded(self) -> str | None:
        """Why this day is never proposed automatically (French), or None."""
        if self.public_holiday:
            return f"jour férié ({self.public_holiday})"
        if self.weekend:
            return "week-end"
        if self.bridge:
            return f"pont ({'lendemain' if self.day.weekday() == 4 else 'veille'} de : {self.bridge})"
        return None


@dataclass(frozen=True)
class Window:
    """Days considered, both ends included. ``target`` is the day that keeps an even spacing with the
    previous gathering (``after``), when there is one."""

    start: date
    end: date
    target: date | None = None
    after: date | None = None

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Candidate:
    """A proposed start, its score (higher is better), why it was chosen and what it risks."""

    start: datetime
    score: float
    reasons: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    excluded: str | None = None      # explicit dates only: why it would never have been proposed

    @property
    def day(self) -> date:
        return self.start.date()

    def summary(self) -> str:
        """One short French line: ``mardi après-midi, hors vacances`` or ``… — risque : …``."""
        good = ", ".join(self.reasons)
        bad = "; ".join(([self.excluded] if self.excluded else []) + list(self.risks))
        if good and bad:
            return f"{good} — attention : {bad}"
        return good or (f"attention : {bad}" if bad else "")


@dataclass(frozen=True)
class ScoringInput:
    """What the scorer needs besides the window."""

    busy: Mapping[date, Sequence[str]] = field(default_factory=dict)   # day → what already takes it
    gatherings: Sequence[date] = ()     # the other network gatherings (spacing)
    duration_minutes: int = 180
    per_year: int = 4


def spacing_days(per_year: int) -> int:
    return max(7, round(365 / max(per_year, 1)))


def default_window(today: date, gatherings: Sequence[date], per_year: int, not_before: date | None = None) -> Window:
    """The coming window that keeps an even spacing with the latest gathering (past or planned).

    From that gathering + 365/per_year days, ± a quarter of that spacing; never earlier than two
    weeks from today (nor than ``not_before``: the poll must close first). Without any gathering:
    the coming weeks, from then on.
    """
    spacing = spacing_days(per_year)
    margin = max(7, spacing // 4)
    earliest = max(today + timedelta(days=MIN_NOTICE_DAYS), not_before or today)
    latest = max(gatherings) if gatherings else None
    if latest is None:
        return Window(earliest, earliest + timedelta(days=2 * margin))
    target = latest + timedelta(days=spacing)
    start = max(target - timedelta(days=margin), earliest)
    aim = max(target, earliest)   # late already: as soon as possible keeps the spacing best
    return Window(start, max(target, aim) + timedelta(days=margin), aim, latest)


def preferred_time(day: date, duration_minutes: int) -> time:
    """9 h 30 or 14 h: Wednesday and Friday mornings (Wednesday afternoons are often taken by
    families, Friday afternoons by the trip home), other days early afternoon (the morning is for
    travelling across the region); long gatherings start in the morning."""
    if duration_minutes > FULL_DAY_MINUTES or day.weekday() in (2, 4):
        return MORNING
    return AFTERNOON


def _part_of_day(start: time) -> str:
    return "matin" if start < time(12, 0) else "après-midi"


def _evaluate(info: DayInfo, start: datetime, data: ScoringInput, window: Window | None) -> Candidate:
    day = info.day
    score = BASE
    risks: list[str] = []
    reasons: list[str] = [f"{WEEKDAYS_FR[day.weekday()]} {_part_of_day(start.time())}"]
    if info.school_holiday:
        score -= PENALTY_SCHOOL
        risks.append(f"vacances scolaires zone A ({info.school_holiday[0].lower() + info.school_holiday[1:]})")
    if info.summer:
        score -= PENALTY_SUMMER
        risks.append("période estivale (14 juillet – 25 août)")
    if not info.school_holiday and not info.summer:
        reasons[0] += ", hors vacances"
    if day.weekday() in (0, 4):
        score -= PENALTY_MONDAY_FRIDAY
        risks.append("lundi, souvent chargé" if day.weekday() == 0 else "vendredi, souvent écourté")
    if info.after_holiday:
        score -= PENALTY_AFTER_HOLIDAY
        risks.append(f"lendemain de jour férié ({info.after_holiday})")
    if info.before_holiday:
        score -= PENALTY_BEFORE_HOLIDAY
        risks.append(f"veille de jour férié ({info.before_holiday})")
    taken = list(data.busy.get(day, ()))
    if taken:
        score -= PENALTY_BUSY
        risks.append("déjà pris : " + ", ".join(taken))
    spacing = spacing_days(data.per_year)
    closest = min((abs((day - g).days), g) for g in data.gatherings) if data.gatherings else None
    if closest is not None and closest[0] < spacing / 2:
        score -= PENALTY_SPACING * (1 - closest[0] / (spacing / 2))
        if closest[0] > 0:
            risks.append(f"à {closest[0]} jours seulement de la rencontre du {date_fr(closest[1], weekday=False)}")
        elif not taken:
            risks.append("jour d'une autre rencontre du réseau")
    if window is not None and window.target is not None:
        half = max(7, (window.end - window.start).days / 2)
        distance = abs((day - window.target).days)
        score -= PENALTY_TARGET * min(1.0, distance / half)
        if window.after is not None and distance <= 7:
            weeks = round((day - window.after).days / 7)
            reasons.append(f"espacement régulier ({weeks} semaines après la rencontre précédente)")
    return Candidate(start=start, score=round(score, 2), reasons=tuple(reasons), risks=tuple(risks),
                     excluded=info.excluded)


def propose_dates(today: date, window: Window, settings: MeetingSettings, tz: tzinfo, *,
                  busy: Mapping[date, Sequence[str]] | None = None, gatherings: Sequence[date] = (),
                  n: int | None = None, duration_minutes: int | None = None,
                  calendar: FrenchCalendar | None = None) -> list[Candidate]:
    """The ``n`` best candidates in ``window`` (never before tomorrow), best first.

    Weekends, public holidays and bridge days are never proposed. The picks are spread out: no two
    in the same week while enough good weeks remain.
    """
    cal = calendar or FrenchCalendar()
    count = n or settings.candidates
    duration = duration_minutes or settings.default_duration_minutes
    data = ScoringInput(busy=busy or {}, gatherings=tuple(gatherings), duration_minutes=duration,
                        per_year=settings.per_year)
    scored: list[Candidate] = []
    for day in window.days():
        if day <= today:
            continue
        info = cal.info(day)
        if info.excluded:
            continue
        start = datetime.combine(day, preferred_time(day, duration), tzinfo=tz)
        scored.append(_evaluate(info, start, data, window))
    ranked = sorted(scored, key=lambda c: (-c.score, c.start))
    return _spread(ranked, count)


def _spread(ranked: list[Candidate], count: int, tolerance: float = 2.0) -> list[Candidate]:
    """Best first, spread out: one per calendar week while possible, then at least a day apart.

    Among candidates scoring within ``tolerance`` of the best one left, the one farthest from the
    days already picked wins (earliest on a tie), so that equally good proposals cover the window.
    """
    picked: list[Candidate] = []
    for rule in (lambda c, p: c.day.isocalendar()[:2] != p.day.isocalendar()[:2],
                 lambda c, p: abs((c.day - p.day).days) > 1,
                 lambda c, p: c.day != p.day):
        while len(picked) < count:
            eligible = [c for c in ranked if c not in picked and all(rule(c, p) for p in picked)]
            if not eligible:
                break
            best = eligible[0].score
            close = [c for c in eligible if c.score >= best - tolerance]
            picked.append(max(close, key=lambda c: (min((abs((c.day - p.day).days) for p in picked), default=0),
                                                    c.score, -c.day.toordinal())))
    return sorted(picked, key=lambda c: (-c.score, c.start))


def assess(start: datetime, settings: MeetingSettings, *, busy: Mapping[date, Sequence[str]] | None = None,
           gatherings: Sequence[date] = (), duration_minutes: int | None = None,
           calendar: FrenchCalendar | None = None) -> Candidate:
    """An explicit date, scored the same way; ``excluded`` and ``risks`` say what to warn about."""
    cal = calendar or FrenchCalendar()
    data = ScoringInput(busy=busy or {}, gatherings=tuple(gatherings),
                        duration_minutes=duration_minutes or settings.default_duration_minutes,
                        per_year=settings.per_year)
    return _evaluate(cal.info(start.date()), start, data, None)

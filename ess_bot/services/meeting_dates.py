"""Choosing dates for the network's gatherings: a pure scorer (no database, no chat).

The French calendar rules (public holidays, bridge days, zone A school holidays of the Besançon and
Dijon académies, the summer break) come from :mod:`ess_bot.calendar_fr`; the caller gives the clock's date, a
window, the days already taken (other meetings and events) and the other gatherings of the year,
and gets candidates ranked best first, each with the reasons it was chosen and what it risks.

Automatic proposals never fall on a weekend, a public holiday or a bridge day. Explicit dates are
only assessed: :func:`assess` says what they risk, the caller decides (warn, but accept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from ess_bot.calendar_fr import DayInfo, FrenchCalendar
from ess_bot.config import MeetingSettings
from ess_bot.formatting import WEEKDAYS_FR, date_fr

MORNING = time(9, 30)
AFTERNOON = time(14, 0)
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
    """A proposed start, its score (higher is better), why it was chosen and what it risks.

    ``taken``: what already takes that day, as given in ``busy`` (raw: the caller words it)."""

    start: datetime
    score: float
    reasons: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    excluded: str | None = None      # explicit dates only: why it would never have been proposed
    taken: tuple[Any, ...] = ()

    @property
    def day(self) -> date:
        return self.start.date()


@dataclass(frozen=True)
class ScoringInput:
    """What the scorer needs besides the window."""

    busy: Mapping[date, Sequence[Any]] = field(default_factory=dict)   # day → what already takes it (raw)
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
    taken = tuple(data.busy.get(day, ()))
    if taken:
        score -= PENALTY_BUSY
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
                     excluded=info.excluded, taken=taken)


def propose_dates(today: date, window: Window, settings: MeetingSettings, tz: tzinfo, *,
                  busy: Mapping[date, Sequence[Any]] | None = None, gatherings: Sequence[date] = (),
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


def assess(start: datetime, settings: MeetingSettings, *, busy: Mapping[date, Sequence[Any]] | None = None,
           gatherings: Sequence[date] = (), duration_minutes: int | None = None,
           calendar: FrenchCalendar | None = None) -> Candidate:
    """An explicit date, scored the same way; ``excluded`` and ``risks`` say what to warn about."""
    cal = calendar or FrenchCalendar()
    data = ScoringInput(busy=busy or {}, gatherings=tuple(gatherings),
                        duration_minutes=duration_minutes or settings.default_duration_minutes,
                        per_year=settings.per_year)
    return _evaluate(cal.info(start.date()), start, data, None)

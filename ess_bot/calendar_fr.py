"""French calendar knowledge shared by every service that picks or assesses days.

Public holidays (``holidays``), bridge days ("ponts"), zone A school holidays (Besançon and Dijon
académies) and the summer break. Pure: no database, no chat, no clock (the caller gives the days).
Holiday names are the library's French names (``Fête nationale``, ``Vacances d'hiver``…).

Usage::

    from ess_bot.calendar_fr import FrenchCalendar
    cal = FrenchCalendar()          # one per service: caches computed years
    cal.public_holiday(day)         # "Ascension" or None
    cal.bridge(day)                 # name of the holiday a bridge day leans on, or None
    cal.school_holiday(day)         # "Vacances d'hiver" or None
    cal.is_working_day(day)         # not a weekend, not a public holiday
    cal.info(day)                   # DayInfo with all of the above
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


SUMMER = ((7, 14), (8, 25))          # 14 July – 25 August: most people are away


def in_summer(day: date) -> bool:
    """Whether ``day`` falls in the summer break (14 July – 25 August, both included)."""
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


class FrenchCalendar:
    """Public holidays, bridge days and zone A school holidays, computed per year when first asked."""

    def __init__(self) -> None:
        self._public: dict[int, dict[date, str]] = {}
        self._school: dict[int, dict[date, str]] = {}

    def _years(self, cache: dict[int, dict[date, str]], year: int, **kwargs) -> dict[date, str]:
        if year not in cache:
            import holidays  # loaded on first use: a faster bot start

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

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a public holiday (bridge days and school holidays are working days)."""
        return day.weekday() < 5 and self.public_holiday(day) is None

    def info(self, day: date) -> DayInfo:
        return DayInfo(day=day, public_holiday=self.public_holiday(day), bridge=self.bridge(day),
                       school_holiday=self.school_holiday(day), summer=in_summer(day),
                       after_holiday=self.public_holiday(day - timedelta(days=1)),
                       before_holiday=self.public_holiday(day + timedelta(days=1)))


__all__ = ["SUMMER", "DayInfo", "FrenchCalendar", "in_summer"]

"""The partners' drop-in hours (``[[permanences]]`` of the configuration) and their next dates.

A permanence does not take place on a French public holiday (:mod:`ess_bot.calendar_fr`); today counts
while it has not ended. Towns are looked up accent- and case-insensitively, by prefix (``lons``) or with a
small typo; a département (``25``) or a postcode (``25300``) gives the permanences in it (the postcode is
read from the address).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ess_bot.calendar_fr import FrenchCalendar
from ess_bot.clock import Clock
from ess_bot.config import WEEKDAYS, Config, Permanence
from ess_bot.text import fold

LOOKAHEAD_DAYS = 120  # no weekly permanence is interrupted this long by holidays
_POSTCODE = re.compile(r"(?<!\d)(\d{5})(?!\d)")
_DEPARTMENT = re.compile(r"^(?:\d{2}|2[ab]|97\d)$")


@dataclass(frozen=True)
class NextDate:
    day: date
    skipped: tuple[tuple[date, str], ...] = ()  # holidays passed over on the way: (date, name)


@dataclass(frozen=True)
class PermanenceView:
    """One partner's permanence in one town at one address and hours, on one or more weekdays."""

    town: str
    partner: str
    partner_name: str
    address: str
    hours: str
    slots: tuple[tuple[time, time], ...]
    weekdays: tuple[int, ...]        # 0 = Monday
    next: NextDate | None
    postcode: str | None = None      # read from the address
    department: str | None = None    # "25", "2A", "974"


def postcode_of(address: str) -> str | None:
    """The last five-digit number of an address (``…, 90000 Belfort`` → ``90000``), or None."""
    found = _POSTCODE.findall(address or "")
    return found[-1] if found else None


def department_of(postcode: str | None) -> str | None:
    """``25300`` → ``25``; Corsica ``20000``–``20199`` → ``2A``, ``20200`` and above → ``2B``; overseas
    ``97411`` → ``974``."""
    if not postcode:
        return None
    if postcode.startswith("97") or postcode.startswith("98"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if int(postcode) < 20200 else "2B"
    return postcode[:2]


@dataclass(frozen=True)
class AreaMatch:
    """The permanences of a département or a postcode. For a postcode with none, those of its
    département (``exact`` False)."""

    department: str
    postcode: str | None = None
    views: tuple[PermanenceView, ...] = ()
    exact: bool = True


@dataclass(frozen=True)
class TownMatch:
    town: str | None                  # the town meant, if exactly one
    candidates: tuple[str, ...] = ()  # several towns fit (prefix)


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", fold(text))


class PermanenceService:
    def __init__(self, config: Config, clock: Clock):
        self.config = config
        self.clock = clock
        self.calendar = FrenchCalendar()

    def towns(self) -> list[str]:
        seen: dict[str, str] = {}
        for p in self.config.permanences:
            seen.setdefault(_key(p.town), p.town)
        return sorted(seen.values(), key=fold)

    def find_town(self, text: str) -> TownMatch:
        """``besancon`` → Besançon, ``lons`` → Lons-le-Saunier, ``belfor`` → Belfort."""
        key = _key(text)
        towns = self.towns()
        if not key:
            return TownMatch(None)
        by_key = {_key(t): t for t in towns}
        if key in by_key:
            return TownMatch(by_key[key])
        prefixed = [t for k, t in by_key.items() if k.startswith(key)]
        if len(prefixed) == 1:
            return TownMatch(prefixed[0])
        if len(prefixed) > 1:
            return TownMatch(None, tuple(prefixed))
        near = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.75)
        return TownMatch(by_key[near[0]] if near else None)

    @staticmethod
    def is_area(text: str) -> bool:
        """Whether ``text`` is a département (``25``, ``2A``, ``974``) or a postcode (``25300``)."""
        key = fold(text.strip())
        return bool(_DEPARTMENT.match(key) or re.fullmatch(r"\d{5}", key))

    def find_area(self, text: str, now: datetime | None = None) -> AreaMatch:
        """``25`` → the permanences in the Doubs; ``90000`` → those at that postcode, or else in its
        département. ``text`` must satisfy :meth:`is_area`."""
        key = fold(text.strip()).upper()
        views = self.all(now)
        if len(key) == 5:
            department = department_of(key) or key[:2]
            exact = tuple(v for v in views if v.postcode == key)
            if exact:
                return AreaMatch(department, key, exact)
            return AreaMatch(department, key, tuple(v for v in views if v.department == department), exact=False)
        return AreaMatch(key, None, tuple(v for v in views if v.department == key))

    def next_date(self, permanence: Permanence, now: datetime | None = None) -> NextDate | None:
        return self._next_for_weekdays((WEEKDAYS.index(permanence.weekday),), permanence.slots,
                                       now or self.clock.now())

    def for_town(self, town: str, now: datetime | None = None) -> list[PermanenceView]:
        return [v for v in self.all(now) if _key(v.town) == _key(town)]

    def all(self, now: datetime | None = None) -> list[PermanenceView]:
        """Every permanence, grouped (same partner, town, address and hours on several days), sorted by
        town, then next date."""
        now = now or self.clock.now()
        groups: dict[tuple, list[Permanence]] = {}
        for p in self.config.permanences:
            groups.setdefault((_key(p.town), p.partner, p.address, p.slots), []).append(p)
        views: list[PermanenceView] = []
        for perms in groups.values():
            first = perms[0]
            weekdays = tuple(sorted({WEEKDAYS.index(p.weekday) for p in perms}))
            partner = self.config.partner(first.partner)
            postcode = postcode_of(first.address)
            views.append(PermanenceView(town=first.town, partner=first.partner,
                                        partner_name=partner.name if partner else first.partner,
                                        address=first.address, hours=first.hours, slots=first.slots,
                                        weekdays=weekdays, next=self._next_for_weekdays(weekdays, first.slots, now),
                                        postcode=postcode, department=department_of(postcode)))
        far = date.max
        return sorted(views, key=lambda v: (fold(v.town), v.next.day if v.next else far, v.partner_name))

    def _next_for_weekdays(self, weekdays: tuple[int, ...], slots: tuple[tuple[time, time], ...],
                           now: datetime) -> NextDate | None:
        local = now.astimezone(self.clock.tz)
        today = local.date()
        closing = max((end for _, end in slots), default=time(23, 59))
        skipped: list[tuple[date, str]] = []
        for offset in range(LOOKAHEAD_DAYS):
            day = today + timedelta(days=offset)
            if day.weekday() not in weekdays:
                continue
            if offset == 0 and local.time() >= closing:
                continue  # today's has already ended
            name = self.calendar.public_holiday(day)
            if name:
                skipped.append((day, name))
                continue
            return NextDate(day, tuple(skipped))
        return None

"""The meeting date scorer: French calendar rules, penalties, preferences, spacing, DST."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from commands._reunion import assessed_note, candidate_summary, taken_fr
from ess_bot.calendar_fr import FrenchCalendar
from ess_bot.clock import Clock
from ess_bot.config import MeetingSettings
from ess_bot.services import meeting_dates
from ess_bot.services.agenda import AgendaEntry
from ess_bot.services.meeting_dates import Window, assess, default_window, preferred_time, propose_dates
from tests.support import PARIS

SETTINGS = MeetingSettings()
CAL = FrenchCalendar()


def clock_at(y, m, d) -> Clock:
    return Clock(PARIS, frozen_at=datetime(y, m, d, 10, 0))


def propose(today: date, start: date, end: date, n: int = 4, **kw):
    return propose_dates(today, Window(start, end), SETTINGS, PARIS, n=n, calendar=CAL, **kw)


def days(cands) -> list[date]:
    return sorted(c.day for c in cands)


# -- the French calendar -------------------------------------------------------------------------------------

@pytest.mark.parametrize("year, bridges", [
    (2026, [date(2026, 1, 2), date(2026, 5, 15), date(2026, 7, 13)]),
    (2027, [date(2027, 5, 7), date(2027, 11, 12)]),
])
def test_bridge_days_of_2026_and_2027(year, bridges):
    every_day = [date(year, 1, 1) + timedelta(days=i) for i in range(365)]
    assert [d for d in every_day if CAL.bridge(d) and not CAL.public_holiday(d)] == bridges
    assert CAL.bridge(date(2026, 5, 15)) == "Ascension" and CAL.bridge(date(2026, 7, 13)) == "Fête nationale"
    assert CAL.info(date(2026, 7, 13)).excluded == "pont (veille de : Fête nationale)"
    assert CAL.info(date(2027, 11, 12)).excluded == "pont (lendemain de : Armistice)"


def test_public_holidays_in_french():
    assert CAL.public_holiday(date(2026, 7, 14)) == "Fête nationale"
    assert CAL.public_holiday(date(2026, 5, 14)) == "Ascension"
    assert CAL.public_holiday(date(2027, 3, 29)) == "Lundi de Pâques"
    assert CAL.public_holiday(date(2026, 7, 15)) is None
    assert CAL.info(date(2026, 11, 11)).excluded == "jour férié (Armistice)"
    assert CAL.info(date(2026, 3, 28)).excluded == "week-end"


@pytest.mark.parametrize("day, name", [
    (date(2026, 2, 9), "Vacances d'hiver"), (date(2026, 2, 20), "Vacances d'hiver"),
    (date(2026, 4, 7), "Vacances de printemps"), (date(2026, 4, 17), "Vacances de printemps"),
    (date(2026, 10, 20), "Vacances de la Toussaint"), (date(2026, 12, 21), "Vacances de Noël"),
    (date(2026, 7, 6), "Vacances d'été"), (date(2026, 5, 15), "Pont de l'Ascension"),
    (date(2027, 2, 16), "Vacances d'hiver"), (date(2027, 4, 13), "Vacances de printemps"),
    (date(2027, 10, 26), "Vacances de la Toussaint"), (date(2027, 7, 6), "Vacances d'été"),
    (date(2026, 2, 6), None), (date(2026, 2, 23), None), (date(2026, 3, 10), None), (date(2027, 2, 12), None),
    (date(2027, 3, 2), None),
])
def test_zone_a_school_holidays_2026_2027(day, name):
    assert CAL.school_holiday(day) == name


# -- automatic proposals ------------------------------------------------------------------------------------

def test_never_a_weekend_public_holiday_or_bridge():
    today = date(2026, 1, 5)
    for start, end in [(date(2026, 5, 1), date(2026, 5, 31)), (date(2026, 7, 6), date(2026, 7, 17)),
                       (date(2027, 5, 3), date(2027, 5, 14)), (date(2027, 11, 8), date(2027, 11, 12))]:
        cands = propose(today, start, end, n=10)
        assert cands
        for c in cands:
            assert c.day.weekday() < 5 and not CAL.public_holiday(c.day) and not CAL.bridge(c.day), c
    may = days(propose(today, date(2026, 5, 11), date(2026, 5, 15), n=5))
    assert date(2026, 5, 14) not in may and date(2026, 5, 15) not in may
    assert days(propose(today, date(2027, 11, 11), date(2027, 11, 12), n=5)) == []


def test_zone_a_school_holidays_are_avoided_and_named():
    cands = propose(date(2026, 1, 5), date(2026, 2, 2), date(2026, 2, 27), n=2)
    assert all(not CAL.school_holiday(c.day) for c in cands)
    only_holidays = propose(date(2026, 1, 5), date(2026, 2, 10), date(2026, 2, 12), n=1)
    assert only_holidays[0].risks[0] == "vacances scolaires zone A (vacances d'hiver)"
    assert "hors vacances" not in candidate_summary(only_holidays[0])


def test_summer_is_avoided():
    cands = propose(date(2026, 5, 4), date(2026, 7, 1), date(2026, 8, 31), n=4)
    for c in cands:
        assert not (date(2026, 7, 14) <= c.day <= date(2026, 8, 25)), c
    summer = assess(datetime(2026, 8, 4, 14, 0, tzinfo=PARIS), SETTINGS, calendar=CAL)
    assert "période estivale (14 juillet – 25 août)" in summer.risks
    assert summer.score < propose(date(2026, 5, 4), date(2026, 7, 1), date(2026, 7, 3), n=1)[0].score


def test_mondays_and_fridays_come_last_and_tuesday_to_thursday_first():
    week = propose(date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 6), n=5)
    assert {c.day.weekday() for c in week[:3]} == {1, 2, 3} and {c.day.weekday() for c in week[3:]} == {0, 4}
    assert "lundi, souvent chargé" in week[3].risks + week[4].risks


def entry(kind: str, ident: int, title: str, day: date) -> AgendaEntry:
    start = datetime.combine(day, datetime.min.time(), tzinfo=PARIS).replace(hour=9)
    return AgendaEntry(kind=kind, ident=ident, title=title, start=start, end=start + timedelta(hours=3))


def test_busy_days_from_other_sources_are_avoided():
    forum = entry("evenement", 1, "Forum de l'ESS", date(2026, 3, 3))
    meeting = entry("reunion", 4, "X", date(2026, 3, 4))
    busy = {date(2026, 3, 3): [forum], date(2026, 3, 4): [meeting],
            date(2026, 3, 5): [entry("evenement", 2, "Inauguration", date(2026, 3, 5))]}
    best = propose(date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 6), n=1, busy=busy)[0]
    assert best.day not in busy
    tuesday = assess(datetime(2026, 3, 3, 14, 0, tzinfo=PARIS), SETTINGS, busy=busy, calendar=CAL)
    assert tuesday.taken == (forum,)                       # raw: the scorer words nothing about it
    assert not any("Forum" in r for r in tuesday.risks)
    assert assessed_note(tuesday) == "⚠️ déjà pris : « Forum de l'ESS »"
    wednesday = assess(datetime(2026, 3, 4, 9, 30, tzinfo=PARIS), SETTINGS, busy=busy, calendar=CAL)
    assert "attention : déjà pris : rencontre du réseau « X »" in candidate_summary(wednesday)
    assert taken_fr([]) == ""


def test_the_french_calendar_is_the_shared_one():
    assert meeting_dates.FrenchCalendar is FrenchCalendar
    assert CAL.public_holiday(date(2026, 5, 14)) == "Ascension" and CAL.bridge(date(2026, 5, 15)) == "Ascension"
    assert CAL.is_working_day(date(2026, 5, 15)) and not CAL.is_working_day(date(2026, 5, 14))
    assert not CAL.is_working_day(date(2026, 5, 16))


def test_preferred_times():
    assert preferred_time(date(2026, 3, 3), 180).hour == 14          # Tuesday afternoon
    assert preferred_time(date(2026, 3, 4), 180).strftime("%H:%M") == "09:30"   # Wednesday morning
    assert preferred_time(date(2026, 3, 5), 180).hour == 14          # Thursday afternoon
    assert preferred_time(date(2026, 3, 5), 360).strftime("%H:%M") == "09:30"   # a full day
    c = propose(date(2026, 2, 2), date(2026, 3, 3), date(2026, 3, 3), n=1)[0]
    assert c.start == datetime(2026, 3, 3, 14, 0, tzinfo=PARIS) and candidate_summary(c) == "mardi après-midi, hors vacances"
    morning = assess(datetime(2026, 3, 3, 9, 30, tzinfo=PARIS), SETTINGS, calendar=CAL)
    assert candidate_summary(morning) == "mardi matin, hors vacances"


def test_day_after_a_holiday_is_flagged():
    c = assess(datetime(2026, 4, 7, 14, 0, tzinfo=PARIS), SETTINGS, calendar=CAL)  # after Easter Monday
    assert "lendemain de jour férié (Lundi de Pâques)" in c.risks
    assert "vacances scolaires zone A (vacances de printemps)" in c.risks
    assert "lendemain de jour férié" in candidate_summary(c) and c.excluded is None


def test_explicit_dates_say_what_they_risk():
    assert assess(datetime(2026, 7, 14, 14, 0, tzinfo=PARIS), SETTINGS, calendar=CAL).excluded == \
        "jour férié (Fête nationale)"
    assert assess(datetime(2026, 5, 15, 9, 30, tzinfo=PARIS), SETTINGS, calendar=CAL).excluded == \
        "pont (lendemain de : Ascension)"
    assert assess(datetime(2026, 1, 2, 9, 30, tzinfo=PARIS), SETTINGS, calendar=CAL).excluded.startswith("pont")
    assert assess(datetime(2026, 3, 7, 9, 30, tzinfo=PARIS), SETTINGS, calendar=CAL).excluded == "week-end"


def test_spacing_with_other_gatherings():
    cands = propose(date(2026, 2, 2), date(2026, 3, 2), date(2026, 3, 27), n=1, gatherings=[date(2026, 3, 5)])
    assert cands[0].day >= date(2026, 3, 24) or cands[0].day <= date(2026, 3, 3)
    near = assess(datetime(2026, 3, 10, 14, 0, tzinfo=PARIS), SETTINGS, gatherings=[date(2026, 3, 5)], calendar=CAL)
    assert "à 5 jours seulement de la rencontre du 5 mars 2026" in near.risks


def test_spread_over_distinct_weeks():
    cands = propose(date(2026, 2, 2), date(2026, 3, 2), date(2026, 3, 27), n=4)
    weeks = {c.day.isocalendar()[1] for c in cands}
    assert len(cands) == 4 and len(weeks) == 4
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)


# -- the default window ---------------------------------------------------------------------------------------

def test_default_window_keeps_the_yearly_spacing():
    w = default_window(date(2026, 3, 20), [date(2025, 12, 1), date(2026, 3, 12)], per_year=4)
    assert w.target == date(2026, 6, 11) and w.after == date(2026, 3, 12)
    assert (w.start, w.end) == (date(2026, 5, 20), date(2026, 7, 3))
    cands = propose_dates(date(2026, 3, 20), w, SETTINGS, PARIS, gatherings=[date(2026, 3, 12)], calendar=CAL)
    best = cands[0]
    assert abs((best.day - w.target).days) <= 7
    assert any(r.startswith("espacement régulier") for r in best.reasons)


def test_default_window_without_gatherings_or_when_late():
    today = date(2026, 1, 20)
    w = default_window(today, [], per_year=4)
    assert w.start == today + timedelta(days=14) and w.target is None and w.end > w.start
    late = default_window(today, [date(2025, 3, 1)], per_year=4)      # last one long ago: as soon as possible
    assert late.start == today + timedelta(days=14) and late.target == late.start
    after_poll = default_window(today, [], per_year=4, not_before=date(2026, 2, 10))
    assert after_poll.start == date(2026, 2, 10)
    planned = default_window(today, [date(2026, 3, 12)], per_year=2)   # the next one is planned already
    assert planned.target == date(2026, 3, 12) + timedelta(days=182)


# -- daylight saving time ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28)])
def test_around_dst_changes(change):
    cands = propose(change - timedelta(days=20), change - timedelta(days=6), change + timedelta(days=6), n=10)
    assert change not in days(cands)
    for c in cands:
        local = c.start.astimezone(PARIS)
        assert (local.hour, local.minute) in ((14, 0), (9, 30))
        summer_time = (c.day > change) == (change.month == 3)
        assert c.start.utcoffset() == timedelta(hours=2 if summer_time else 1), c
    assert date(2027, 3, 29) not in days(cands)  # Easter Monday 2027, the day after the change


def test_frozen_clock_today_feeds_the_scorer():
    clock = clock_at(2026, 10, 20)
    cands = propose(clock.today(), clock.today(), clock.today() + timedelta(days=3), n=4)
    assert all(c.day > clock.today() for c in cands)
    assert all(c.start.utcoffset() == timedelta(hours=2) for c in cands)
    assert datetime(2026, 10, 21, 9, 30, tzinfo=PARIS).astimezone(timezone.utc).hour == 7

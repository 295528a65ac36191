from datetime import datetime, timedelta, timezone

from icalendar import Calendar

from ess_bot.ics import CalendarItem, build_calendar, make_uid
from tests.support import PARIS

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=PARIS)


def test_calendar_parses_back_with_timezone_uid_sequence_and_status():
    start = datetime(2027, 3, 28, 14, 0, tzinfo=PARIS)  # the day clocks go forward
    items = [CalendarItem(uid=make_uid("meeting", 12), title="Rencontre du réseau", start=start,
                          end=start + timedelta(hours=3), location="Besançon", sequence=2),
             CalendarItem(uid=make_uid("event", 3), title="Inauguration", start=start, end=start + timedelta(hours=1),
                          cancelled=True)]
    cal = Calendar.from_ical(build_calendar(items, PARIS, NOW, name="Agenda du réseau"))
    assert str(cal["method"]) == "PUBLISH" and "ess-bot" in str(cal["prodid"]) and str(cal["version"]) == "2.0"
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    first, second = cal.walk("VEVENT")
    assert str(first["uid"]) == "meeting-12@ess-bot"
    assert first.decoded("dtstart") == start and first["dtstart"].params["TZID"] == "Europe/Paris"
    assert first.decoded("dtend").astimezone(timezone.utc) == datetime(2027, 3, 28, 15, 0, tzinfo=timezone.utc)
    assert int(first["sequence"]) == 2 and str(first["status"]) == "CONFIRMED"
    assert str(first["location"]) == "Besançon" and str(first["summary"]) == "Rencontre du réseau"
    assert first.decoded("dtstamp") == NOW.astimezone(timezone.utc)
    assert str(second["status"]) == "CANCELLED"

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


def test_timezone_text_is_french_and_covers_every_event():
    # icalendar's own VTIMEZONE comment is English ("This timezone only works from … to …")
    early = datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    late = datetime(2028, 10, 29, 2, 30, tzinfo=PARIS)  # the night clocks go back, two years later
    items = [CalendarItem(uid=make_uid("event", 1), title="Café ESS", start=early, end=early + timedelta(hours=1)),
             CalendarItem(uid=make_uid("event", 2), title="Nuit", start=late, end=late + timedelta(hours=2))]
    body = build_calendar(items, PARIS, NOW)
    assert b"This timezone" not in body and b"only works" not in body
    cal = Calendar.from_ical(body)
    (vtimezone,) = cal.walk("VTIMEZONE")
    assert str(vtimezone["COMMENT"]) == "Fuseau horaire valable du 01/01/2026 au 01/01/2029."
    observances = vtimezone.walk("STANDARD") + vtimezone.walk("DAYLIGHT")
    assert {str(o["TZNAME"]) for o in observances} == {"CET", "CEST"}  # abbreviations: neutral
    assert min(o.decoded("DTSTART") for o in observances) <= early.replace(tzinfo=None)
    # the offsets a client derives from this VTIMEZONE are the real ones on both dates
    tzinfo = vtimezone.to_tz()
    for event, expected in zip(cal.walk("VEVENT"), (early, late)):
        local = event.decoded("dtstart").replace(tzinfo=None)
        assert local.replace(tzinfo=tzinfo).utcoffset() == expected.utcoffset()
    # no English word anywhere a client may show (the comment, names, statuses are keywords)
    text_lines = [line for line in body.decode().splitlines()
                  if line.split(":", 1)[0] in ("COMMENT", "SUMMARY", "DESCRIPTION", "X-WR-CALNAME", "LOCATION")]
    assert all(not set(line.lower().split()) & {"this", "the", "only", "works", "from", "to"} for line in text_lines)


def test_empty_calendar_has_no_timezone():
    cal = Calendar.from_ical(build_calendar([], PARIS, NOW, name="Agenda du réseau"))
    assert cal.walk("VTIMEZONE") == [] and cal.walk("VEVENT") == []

"""Pure parts of the meeting service: the best date and its tie-breaks, the .ics of a meeting."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from icalendar import Calendar

from ess_bot.clock import Clock
from ess_bot.ics import build_calendar
from ess_bot.services.meetings import MeetingService, MeetingView, OptionTally, OptionView, best_option
from tests.support import PARIS, make_config

T1 = datetime(2026, 3, 10, 14, 0, tzinfo=PARIS)
T2 = datetime(2026, 3, 12, 14, 0, tzinfo=PARIS)
T3 = datetime(2026, 3, 17, 9, 30, tzinfo=PARIS)


def opt(position, start, yes=0, maybe=0, no=0) -> OptionTally:
    return OptionTally(position=position, starts_at=start, counts=(yes, maybe, no))


def test_fewest_no_wins_over_most_yes():
    assert best_option([opt(1, T1, yes=5, no=1), opt(2, T2, yes=2)]).position == 2


def test_then_most_yes():
    assert best_option([opt(1, T1, yes=2, maybe=3), opt(2, T2, yes=3), opt(3, T3, yes=1, no=0)]).position == 2


def test_then_most_if_needed():
    assert best_option([opt(1, T1, yes=2, maybe=0, no=1), opt(2, T2, yes=2, maybe=1, no=1)]).position == 2


def test_then_earliest():
    # positions follow the dates, but the rule is about the date itself
    assert best_option([opt(2, T2, yes=1), opt(1, T1, yes=1), opt(3, T3, yes=1)]).position == 1
    assert best_option([opt(1, T3, maybe=2), opt(2, T2, maybe=2)]).position == 2


def test_no_answers_at_all_gives_the_earliest_and_no_options_none():
    assert best_option([opt(1, T1), opt(2, T2)]).position == 1
    assert best_option([]) is None


# -- the .ics --------------------------------------------------------------------------------------------

NOW = datetime(2026, 2, 20, 18, 0, tzinfo=PARIS)


def meeting(start: datetime, **kw) -> MeetingView:
    base = MeetingView(id=7, title="Rencontre du réseau", status="fixed", location="Besançon", duration_minutes=180,
                       room_id="!coord:test", deadline=NOW, native_poll=True, sequence=0,
                       created_by="@claire:test", created_at=NOW - timedelta(days=14),
                       options=(OptionView(id=1, position=1, starts_at=start),), starts_at=start, chosen_position=1)
    return replace(base, **kw)


def service() -> MeetingService:
    return MeetingService(make_config("sqlite+aiosqlite:///:memory:"), Clock(PARIS, frozen_at=NOW))


def parse(data: bytes):
    cal = Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def test_ics_of_a_fixed_meeting_parses_back():
    start = datetime(2026, 3, 12, 14, 0, tzinfo=PARIS)
    cal, ev = parse(service().ics(meeting(start)))
    assert str(cal["method"]) == "PUBLISH" and str(cal["version"]) == "2.0" and "ess-bot" in str(cal["prodid"])
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(ev["uid"]) == "meeting-7@ess-bot"
    assert ev["dtstart"].params["TZID"] == "Europe/Paris" and ev.decoded("dtstart") == start
    assert ev.decoded("dtend") == start + timedelta(hours=3)
    assert ev.decoded("dtstart").astimezone(timezone.utc) == datetime(2026, 3, 12, 13, 0, tzinfo=timezone.utc)
    assert str(ev["summary"]) == "Rencontre du réseau" and str(ev["location"]) == "Besançon"
    assert int(ev["sequence"]) == 0 and str(ev["status"]) == "CONFIRMED"
    assert ev.decoded("dtstamp") == NOW.astimezone(timezone.utc)
    assert "ATTENDEE" not in ev


def test_ics_across_dst_changes():
    for start, utc_hour in [(datetime(2026, 3, 31, 14, 0, tzinfo=PARIS), 12),   # after 2026-03-29
                            (datetime(2026, 10, 27, 9, 30, tzinfo=PARIS), 8),    # after 2026-10-25
                            (datetime(2027, 3, 30, 14, 0, tzinfo=PARIS), 12)]:   # after 2027-03-28
        _, ev = parse(service().ics(meeting(start)))
        assert ev.decoded("dtstart").astimezone(timezone.utc).hour == utc_hour
        assert ev.decoded("dtstart") == start


def test_ics_of_a_moved_then_cancelled_meeting_keeps_its_uid_and_raises_the_sequence():
    start = datetime(2026, 3, 12, 14, 0, tzinfo=PARIS)
    _, moved = parse(service().ics(meeting(start + timedelta(days=7), sequence=1)))
    assert str(moved["uid"]) == "meeting-7@ess-bot" and int(moved["sequence"]) == 1
    _, cancelled = parse(service().ics(meeting(start, status="cancelled", sequence=2, cancel_reason="grève")))
    assert str(cancelled["uid"]) == "meeting-7@ess-bot" and int(cancelled["sequence"]) == 2
    assert str(cancelled["status"]) == "CANCELLED"


def test_announcement_ics_is_the_calendar_feed_entry():
    """The .ics sent with an announcement and the feed's VEVENT come from the same AgendaEntry."""
    svc = service()
    for view in (meeting(datetime(2026, 3, 12, 14, 0, tzinfo=PARIS), sequence=1),
                 meeting(datetime(2026, 3, 12, 14, 0, tzinfo=PARIS), status="cancelled", sequence=2)):
        entry = svc.entry(view)
        assert svc.calendar_item(view) == entry.calendar_item()
        _, sent = parse(svc.ics(view))
        _, fed = parse(build_calendar([entry.calendar_item()], PARIS, NOW))
        for prop in ("UID", "SEQUENCE", "DESCRIPTION", "LOCATION", "STATUS", "SUMMARY", "DTSTART", "DTEND"):
            assert sent.get(prop) is not None and sent[prop].to_ical() == fed[prop].to_ical(), prop
        assert str(sent["description"]).startswith("Organisé par le réseau ESS")

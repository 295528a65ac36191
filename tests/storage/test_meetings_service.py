"""The meeting service against a real, migrated database: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import inspect

from ess_bot.clock import Clock
from ess_bot.services.agenda import AgendaEntry
from ess_bot.services.meeting_dates import Window
from ess_bot.services.meetings import (Invalid, MeetingService, NewMeeting, NoOpenPoll, NotFound, SeveralOpenPolls,
                                       WrongState)
from ess_bot.storage.db import Database
from ess_bot.storage.meetings import Meeting
from tests.support import PARIS, make_config

NOW = datetime(2026, 2, 2, 10, 0, tzinfo=PARIS)          # a Monday
D1 = datetime(2026, 3, 10, 14, 0, tzinfo=PARIS)
D2 = datetime(2026, 3, 12, 14, 0, tzinfo=PARIS)
D3 = datetime(2026, 3, 18, 9, 30, tzinfo=PARIS)
DEADLINE = datetime(2026, 2, 20, 18, 0, tzinfo=PARIS)
CLAIRE, KARIM, MARC, ADMIN = "@claire:test", "@karim:test", "@marc:test", "@admin:test"


class FakeEvents:
    """Another CalendarSource (the events of the network)."""

    def __init__(self, entries: list[AgendaEntry]):
        self.entries = entries

    async def calendar_items(self, session, start, end):
        return [e for e in self.entries if e.start < end and e.end > start]


@pytest.fixture
async def env(db_url):
    db = Database(db_url)
    await db.upgrade()
    clock = Clock(PARIS, frozen_at=NOW)
    forum = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)
    events = FakeEvents([AgendaEntry(kind="evenement", ident=1, title="Forum de l'ESS", start=forum,
                                     end=forum + timedelta(hours=8))])
    svc = MeetingService(make_config(db_url), clock, other_sources=[events])
    try:
        yield db, clock, svc
    finally:
        await db.dispose()


def new(starts=(D2, D1, D3), deadline=DEADLINE, **kw) -> NewMeeting:
    fields = dict(title="Rencontre du réseau", starts=tuple(starts), location="Besançon", duration_minutes=180,
                  deadline=deadline, room_id="!coord:test", created_by=CLAIRE, native_poll=True,
                  notes=tuple(f"note {s.day}" for s in starts))
    fields.update(kw)
    return NewMeeting(**fields)


async def test_tables_exist_after_migrations(env):
    db, _, _ = env
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"meetings", "meeting_options", "meeting_votes"} <= tables


async def test_propose_orders_dates_and_keeps_notes(env):
    db, _, svc = env
    async with db.sessions.begin() as s:
        view = await svc.propose(s, new())
    async with db.sessions() as s:
        again = await svc.get(s, view.id)
    assert [o.starts_at for o in again.options] == [D1, D2, D3]
    assert [o.position for o in again.options] == [1, 2, 3]
    assert again.option(2).note == "note 12" and again.is_poll and again.deadline == DEADLINE
    assert again.options[0].starts_at.tzinfo is not None and again.options[0].starts_at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(starts=(NOW - timedelta(days=1),)), "déjà passée"),
    (dict(deadline=D2), "doit précéder"),
    (dict(deadline=NOW - timedelta(hours=1)), "date limite des réponses"),
    (dict(starts=(D1, D1)), "proposée deux fois"),
    (dict(starts=tuple(D1 + timedelta(days=i) for i in range(11))), "Trop de dates"),
    (dict(title="  "), "titre"),
    (dict(duration_minutes=5), "durée"),
])
async def test_propose_refuses_bad_input(env, kwargs, message):
    db, _, svc = env
    async with db.sessions.begin() as s:
        with pytest.raises(Invalid) as err:
            await svc.propose(s, new(**kwargs))
    assert message in err.value.message


async def test_answers_latest_wins_withdrawal_and_poll_precedence(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
    async with db.sessions.begin() as s:
        await svc.answer(s, mid, KARIM, {1: "oui"}, source="reaction", event_id="$r1")
        await svc.answer(s, mid, KARIM, {1: "non"}, source="reaction", event_id="$r2")   # changes his mind
        await svc.answer(s, mid, MARC, {1: "oui", 2: "sibesoin"}, source="text", event_id="$t1")
        await svc.answer(s, mid, CLAIRE, {2: "oui"}, source="reaction", event_id="$r3")
        assert await svc.poll_response(s, mid, CLAIRE, [3], event_id="$p1")
        await svc.poll_response(s, mid, MARC, [2], event_id="$p2")      # explicit "si besoin" wins for date 2
        await svc.answer(s, mid, "@stranger:test", {1: "oui"}, source="reaction", event_id="$x")  # not a member
        await svc.answer(s, mid, ADMIN, {1: "non"}, source="text", event_id="$a1")     # technical account
        await svc.poll_response(s, mid, ADMIN, [3], event_id="$a2")
    async with db.sessions.begin() as s:
        assert await svc.answers_of(s, mid, KARIM) == {1: "non"}
        assert await svc.withdraw(s, "$r2") == 1                         # removed ❌: ✅ stands again
        assert await svc.answers_of(s, mid, KARIM) == {1: "oui"}
        assert await svc.withdraw(s, "$r3") == 1                         # Claire's reaction removed
        assert await svc.withdraw(s, "$unknown") == 0
        assert await svc.answers_of(s, mid, MARC) == {1: "oui", 2: "sibesoin"}
        t = await svc.tally(s, mid)
    one, two, three = t.options
    assert one.counts == (2, 0, 0) and one.yes == (KARIM, MARC) and one.missing == (CLAIRE,)
    assert two.counts == (0, 1, 0) and two.maybe == (MARC,)
    assert three.counts == (1, 0, 0) and three.yes == (CLAIRE,)
    assert t.not_answered == () and t.answered == 3
    assert t.best.position == 1
    async with db.sessions.begin() as s:                                   # a new native answer replaces the old
        await svc.poll_response(s, mid, CLAIRE, [1], event_id="$p3")
        t = await svc.tally(s, mid)
        assert t.options[2].counts == (0, 0, 0) and t.options[0].yes == (CLAIRE, KARIM, MARC)
        await svc.poll_response(s, mid, CLAIRE, [], event_id="$p4")      # an empty answer un-votes
        assert await svc.answers_of(s, mid, CLAIRE) == {}


async def test_admins_are_neither_expected_nor_counted(env):
    """The expected voters are the advisors and coordinators: an admin account is a technical one."""
    db, _, svc = env
    assert svc.voter_ids() == [CLAIRE, KARIM, MARC] and not svc.is_voter(ADMIN)
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.answer(s, mid, ADMIN, {1: "non", 2: "non"}, source="text", event_id="$a1")
        await svc.poll_response(s, mid, ADMIN, [3], event_id="$a2")
        await svc.answer(s, mid, KARIM, {1: "oui"}, source="text", event_id="$k1")
        t = await svc.tally(s, mid)
        assert await svc.answers_of(s, mid, ADMIN) == {}
    assert [o.counts for o in t.options] == [(1, 0, 0), (0, 0, 0), (0, 0, 0)]
    assert t.not_answered == (CLAIRE, MARC) and t.answered == 1
    assert all(ADMIN not in o.missing + o.yes + o.no for o in t.options)


async def test_text_redaction_and_errors_on_answers(env):
    db, _, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.answer(s, mid, KARIM, {1: "oui", 3: "non"}, source="text", event_id="$msg")
        assert await svc.withdraw(s, "$msg") == 2   # deleting the !reunion dispo message withdraws it too
        with pytest.raises(Invalid, match="pas de date n°7"):
            await svc.answer(s, mid, KARIM, {7: "oui"}, source="text")
        with pytest.raises(NotFound):
            await svc.answer(s, 999, KARIM, {1: "oui"}, source="text")


async def test_close_picks_the_best_and_then_refuses_answers(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.answer(s, mid, KARIM, {1: "oui", 2: "oui", 3: "non"}, source="text")
        await svc.answer(s, mid, MARC, {1: "non", 2: "sibesoin", 3: "oui"}, source="text")
        await svc.answer(s, mid, CLAIRE, {1: "oui", 2: "oui", 3: "oui"}, source="text")
    async with db.sessions.begin() as s:
        view, tally = await svc.close(s, mid, None)
    assert view.is_fixed and view.chosen_position == 2 and view.starts_at == D2 and view.closed_by is None
    assert view.ends_at == D2 + timedelta(hours=3) and view.sequence == 0
    async with db.sessions.begin() as s:
        with pytest.raises(WrongState, match="clos"):
            await svc.answer(s, mid, ADMIN, {1: "oui"}, source="reaction", event_id="$late")
        assert not await svc.poll_response(s, mid, ADMIN, [1], event_id="$late2")   # after the end: ignored
        assert await svc.withdraw(s, "$any") == 0
        with pytest.raises(WrongState):
            await svc.close(s, mid, CLAIRE)
    async with db.sessions.begin() as s:
        other = (await svc.propose(s, new())).id
        view, _ = await svc.close(s, other, CLAIRE, position=3)
    assert view.starts_at == D3 and view.closed_by == CLAIRE
    async with db.sessions.begin() as s:
        third = (await svc.propose(s, new())).id
        with pytest.raises(Invalid, match="pas de date n°9"):
            await svc.close(s, third, CLAIRE, position=9)


async def test_find_poll(env):
    db, _, svc = env
    async with db.sessions.begin() as s:
        with pytest.raises(NoOpenPoll):
            await svc.find_poll(s, None)
        a = (await svc.propose(s, new())).id
        assert (await svc.find_poll(s, None)).id == a
        b = (await svc.propose(s, new())).id
        with pytest.raises(SeveralOpenPolls) as err:
            await svc.find_poll(s, None)
        assert err.value.ids == [a, b]
        assert (await svc.find_poll(s, b)).id == b
        assert sorted(await svc.open_poll_options(s)) == [(a, 1), (a, 2), (a, 3), (b, 1), (b, 2), (b, 3)]


async def test_move_cancel_sequence_calendar_and_next(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        with pytest.raises(WrongState, match="sondage est ouvert"):
            await svc.move(s, mid, CLAIRE, D3)
        await svc.close(s, mid, CLAIRE, position=1)
    async with db.sessions.begin() as s:
        moved = await svc.move(s, mid, CLAIRE, D1 + timedelta(days=2))
        with pytest.raises(Invalid, match="déjà passée"):
            await svc.move(s, mid, CLAIRE, NOW - timedelta(days=1))
    assert moved.before == D1 and moved.meeting.starts_at == D1 + timedelta(days=2) and moved.meeting.sequence == 1
    lo, hi = datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS)
    async with db.sessions() as s:
        items = await svc.calendar_items(s, lo, hi)
        assert [(e.kind, e.ident, e.start, e.sequence, e.uid) for e in items] == \
            [("reunion", mid, D1 + timedelta(days=2), 1, f"meeting-{mid}@ess-bot")]
        assert (await svc.next_meeting(s)).id == mid
        assert await svc.gatherings(s) == [date(2026, 3, 12)]
        assert await svc.calendar_items(s, hi, hi + timedelta(days=30)) == []
    async with db.sessions.begin() as s:
        cancelled = await svc.cancel(s, mid, CLAIRE, "  grève   des transports ")
        with pytest.raises(WrongState, match="déjà annulée"):
            await svc.cancel(s, mid, CLAIRE)
    assert cancelled.is_cancelled and cancelled.sequence == 2 and cancelled.cancel_reason == "grève des transports"
    async with db.sessions() as s:
        assert await svc.calendar_items(s, lo, hi) == []
        assert [e.cancelled for e in await svc.calendar_items(s, lo, hi, include_cancelled=True)] == [True]
        assert await svc.next_meeting(s) is None
    async with db.sessions.begin() as s:   # cancelling a poll: no .ics went out, the sequence stays
        poll = await svc.propose(s, new())
        assert (await svc.cancel(s, poll.id, CLAIRE)).sequence == 0


async def test_past_meetings_cannot_be_moved_or_cancelled_and_list_order(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        first = (await svc.propose(s, new())).id
        await svc.close(s, first, CLAIRE, position=1)
        second = (await svc.propose(s, new(starts=(D3 + timedelta(days=30),),
                                           deadline=D3 + timedelta(days=20)))).id
    clock.set(D1 + timedelta(hours=4))
    async with db.sessions.begin() as s:
        with pytest.raises(WrongState, match="déjà eu lieu"):
            await svc.move(s, first, CLAIRE, D3)
        with pytest.raises(WrongState, match="déjà eu lieu"):
            await svc.cancel(s, first, CLAIRE)
        views = await svc.list_meetings(s)
        assert [v.id for v in views] == [second, first]
        assert await svc.next_meeting(s) is None


async def test_busy_days_and_suggestions_avoid_events_and_meetings(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.close(s, mid, CLAIRE, position=3)   # 18 March
    async with db.sessions() as s:
        busy = await svc.busy_days(s, date(2026, 3, 2), date(2026, 3, 20))
        assert {day: [(e.kind, e.ident, e.title) for e in entries] for day, entries in busy.items()} == {
            date(2026, 3, 3): [("evenement", 1, "Forum de l'ESS")],
            date(2026, 3, 18): [("reunion", mid, "Rencontre du réseau")]}      # raw: worded by the chat layer
        assert await svc.busy_days(s, date(2026, 3, 2), date(2026, 3, 20), exclude=mid) == {
            date(2026, 3, 3): busy[date(2026, 3, 3)]}
        window, cands = await svc.suggest(s, window=Window(date(2026, 3, 2), date(2026, 3, 6)), n=1)
        assert cands[0].day not in busy and cands[0].day.weekday() in (1, 2, 3)
        (forum,) = await svc.assess_dates(s, [datetime(2026, 3, 3, 14, 0, tzinfo=PARIS)])
        assert [e.title for e in forum.taken] == ["Forum de l'ESS"]
        (own_day,) = await svc.assess_dates(s, [datetime(2026, 3, 18, 14, 0, tzinfo=PARIS)], exclude=mid)
        assert own_day.taken == () and not any("rencontre" in r for r in own_day.risks)
        window, cands = await svc.suggest(s)         # default window: a quarter after 18 March
        assert window.after == date(2026, 3, 18) and window.target == date(2026, 6, 17)
        assert all(window.start <= c.day <= window.end for c in cands) and len(cands) == 4


# -- review fixes (both backends) ----------------------------------------------------------------------

async def test_a_poll_is_closed_once_from_stale_sessions(env):
    """``clore`` and the deadline job both saw the poll open: only the first close wins."""
    db, _, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.answer(s, mid, KARIM, {2: "oui"}, source="text")
    async with db.sessions() as first, db.sessions() as second:
        stale = [await first.get(Meeting, mid), await second.get(Meeting, mid)]   # held: the identity map is weak
        assert [m.status for m in stale] == ["poll", "poll"]
        await svc.close(first, mid, CLAIRE, position=1)
        await first.commit()
        assert stale[1].status == "poll"                  # the second session still sees the poll open
        with pytest.raises(WrongState) as err:
            await svc.close(second, mid, None)
        await second.rollback()
    assert err.value.meeting.is_fixed and err.value.meeting.chosen_position == 1
    async with db.sessions() as s:
        view = await svc.get(s, mid)
    assert view.closed_by == CLAIRE and view.starts_at == D1


async def test_a_poll_is_closed_once_when_both_close_at_the_same_time(env):
    db, _, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
    async with db.sessions() as first, db.sessions() as second:
        await svc.get(first, mid)
        await svc.get(second, mid)
        await svc.close(first, mid, CLAIRE, position=3)   # not committed: holds the row (or the write lock)
        loser = asyncio.create_task(svc.close(second, mid, None))
        await asyncio.sleep(0.3)
        assert not loser.done()                           # waits for the first transaction
        await first.commit()
        with pytest.raises(WrongState):
            await loser
        await second.rollback()
    async with db.sessions() as s:
        view = await svc.get(s, mid)
    assert view.chosen_position == 3 and view.closed_by == CLAIRE


async def test_numbers_beyond_an_sql_integer_are_not_found(env):
    db, _, svc = env
    async with db.sessions() as s:
        for number in (10**20, 2**31, 0, -1):
            with pytest.raises(NotFound):
                await svc.get(s, number)


async def test_meeting_ends_are_computed_in_sql(env):
    """next_meeting, list_meetings and calendar_items tell "not over yet" in SQL (start + duration)."""
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        await svc.close(s, mid, CLAIRE, position=1)          # 10 March, 14 h – 17 h
        later = (await svc.propose(s, new(starts=(D3 + timedelta(days=30),), deadline=D3))).id
        await svc.close(s, later, CLAIRE)
        cancelled = (await svc.propose(s, new())).id
        await svc.cancel(s, cancelled, CLAIRE)
    clock.set(D1 + timedelta(hours=2, minutes=59))           # in progress
    async with db.sessions() as s:
        assert (await svc.next_meeting(s)).id == mid
        assert [v.id for v in await svc.list_meetings(s)] == [mid, later, cancelled]
        assert [e.ident for e in await svc.calendar_items(s, D1 + timedelta(hours=2), D1 + timedelta(days=1))] == [mid]
    clock.set(D1 + timedelta(hours=3))                       # just over
    async with db.sessions() as s:
        assert (await svc.next_meeting(s)).id == later
        assert [v.id for v in await svc.list_meetings(s)] == [later, mid, cancelled]   # past: latest first
        assert await svc.calendar_items(s, D1 + timedelta(hours=3), D1 + timedelta(days=1)) == []
        assert [v.id for v in await svc.list_meetings(s, past_limit=1)] == [later, mid]
        assert (await svc.latest_closed(s)).id == later


async def test_extend_a_poll(env):
    db, clock, svc = env
    async with db.sessions.begin() as s:
        mid = (await svc.propose(s, new())).id
        with pytest.raises(Invalid, match="doit être après l'actuelle"):
            await svc.extend(s, mid, DEADLINE - timedelta(days=1))
    clock.set(DEADLINE + timedelta(hours=1))                 # the deadline passed: any later date will do
    async with db.sessions.begin() as s:
        with pytest.raises(Invalid, match="déjà passée"):
            await svc.extend(s, mid, DEADLINE)
        with pytest.raises(Invalid, match="doit précéder la première date proposée"):
            await svc.extend(s, mid, D1)
        view = await svc.extend(s, mid, DEADLINE + timedelta(days=7))
    assert view.is_poll and view.deadline == DEADLINE + timedelta(days=7)
    async with db.sessions.begin() as s:
        await svc.close(s, mid, CLAIRE)
        with pytest.raises(WrongState):
            await svc.extend(s, mid, DEADLINE + timedelta(days=8))


async def test_overlapping_open_polls(env):
    db, _, svc = env
    async with db.sessions.begin() as s:
        a = (await svc.propose(s, new())).id                               # 10, 12, 18 March
        b = (await svc.propose(s, new(starts=(D3 + timedelta(days=7),)))).id   # 25 March
        overlaps = await svc.overlapping_polls(s, [D2.replace(hour=9), D3 + timedelta(days=1)])
        assert [(o.id, o.same_days) for o in overlaps] == [(a, (date(2026, 3, 12),))]
        assert overlaps[0].first == D1 and overlaps[0].last == D3
        assert [o.id for o in await svc.overlapping_polls(s, [D3 + timedelta(days=7, hours=-5)])] == [b]
        assert await svc.overlapping_polls(s, [D1], exclude=a) == []
        assert await svc.overlapping_polls(s, [D1 - timedelta(days=2)]) == []
        await svc.close(s, a, CLAIRE)
        assert await svc.overlapping_polls(s, [D2]) == []

"""Network gatherings: proposing dates, collecting answers, fixing the date, moving, cancelling.

Knows nothing about chat: typed inputs in, typed views out; every method takes the caller's
AsyncSession (the command's or the job's transaction). Failures raise :class:`MeetingError`
subclasses whose ``message`` is a French sentence in Markdown, every value in it escaped
(:func:`ess_bot.parsing.md_quote`) — the chat layer adds syntax and examples.

Answers: each member answers each date with oui / si besoin / non. The answers are a log
(:class:`~ess_bot.storage.meetings.MeetingVote`); for a member and a date the latest standing
explicit answer (reaction or text) counts; without one, a native poll answer counts as « oui » for
the date it picked (the native poll is single choice: it says which date suits best, not which ones
do not). The best date has the fewest « non », then the most « oui », then the most « si besoin »,
then is the earliest.

Who is expected to answer: the members whose role is ``advisor`` or ``coordinator``
(:data:`VOTER_ROLES`); ``admin`` accounts are technical and neither mentioned nor counted.

Closing is race-free: the poll becomes ``fixed`` through ``UPDATE … WHERE status = 'poll'``, so that
``!reunion clore`` and the deadline job can never both close it (the loser gets :class:`AlreadyClosed`).

The service is also a :class:`~ess_bot.services.agenda.CalendarSource`: fixed meetings are agenda
entries of kind ``reunion``; the announcement's .ics is built from the same entry as the calendar feed.
Days already taken are returned raw (the :class:`~ess_bot.services.agenda.AgendaEntry` that takes them);
the chat layer words them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.calendar_fr import FrenchCalendar
from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.formatting import date_fr, datetime_fr
from ess_bot.ics import CalendarItem, build_calendar, make_uid
from ess_bot.parsing import md_quote
from ess_bot.services.agenda import AgendaEntry, CalendarSource
from ess_bot.services.events import NETWORK_LABEL
from ess_bot.services.meeting_dates import Candidate, Window, assess, default_window, propose_dates
from ess_bot.storage.meetings import (ANSWERS, CANCELLED, FIXED, MAYBE, NO, POLL, SOURCE_POLL, YES, Meeting,
                                      MeetingOption, MeetingVote, meeting_end)
from ess_bot.storage.models import OutboxMessage, ScheduledJob
from ess_bot.text import without_controls

TITLE_MAX = 120
LOCATION_MAX = 200
REASON_MAX = 280
MAX_OPTIONS = 10
SOURCES = ("reaction", "text", SOURCE_POLL)
VOTER_ROLES = ("advisor", "coordinator")   # who is expected to answer a poll (admins: technical accounts)
MAX_ID = 2**31 - 1                         # INTEGER columns: larger numbers cannot name a meeting


# -- message tags and job keys (what the chat layer sent or planned for a meeting) -----------------

def option_tag(meeting_id: int, position: int) -> str:
    """The outbox tag of the message of one date of a poll (reactions to it are answers)."""
    return f"meeting:{meeting_id}:option:{position}"


def poll_tag(meeting_id: int) -> str:
    """The outbox tag of a poll's native Matrix poll."""
    return f"meeting:{meeting_id}:poll"


def reminder_key_prefix(meeting_id: int) -> str:
    """Scheduled reminders of a fixed meeting have keys starting with this."""
    return f"meeting:{meeting_id}:reminder:"


# -- errors ------------------------------------------------------------------------------------


class MeetingError(Exception):
    """A domain rule refused the request. ``message`` is French and meant for the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(MeetingError):
    pass


class Invalid(MeetingError):
    pass


class WrongState(MeetingError):
    """The meeting is not in a state that allows this (voting on a closed poll, moving a poll…)."""


class AlreadyClosed(WrongState):
    """The poll is no longer open (closed, possibly a moment ago by someone else, or cancelled).
    ``meeting`` is its current state, for the caller to say which date was chosen."""

    def __init__(self, message: str, meeting: "MeetingView"):
        super().__init__(message)
        self.meeting = meeting


class NoOpenPoll(MeetingError):
    pass


class SeveralOpenPolls(MeetingError):
    def __init__(self, message: str, ids: list[int]):
        super().__init__(message)
        self.ids = ids


# -- inputs and views ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NewMeeting:
    title: str
    starts: tuple[datetime, ...]          # aware; the candidate dates
    location: str
    duration_minutes: int
    deadline: datetime                    # aware; the poll closes then
    room_id: str
    created_by: str
    native_poll: bool = False
    notes: tuple[str, ...] = ()           # per date: why it was proposed / what it risks


@dataclass(frozen=True)
class OptionView:
    id: int
    position: int
    starts_at: datetime
    note: str = ""


@dataclass(frozen=True)
class MeetingView:
    id: int
    title: str
    status: str
    location: str
    duration_minutes: int
    room_id: str
    deadline: datetime
    native_poll: bool
    sequence: int
    created_by: str
    created_at: datetime
    options: tuple[OptionView, ...]
    starts_at: datetime | None = None
    chosen_position: int | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    @property
    def ends_at(self) -> datetime | None:
        return self.starts_at + timedelta(minutes=self.duration_minutes) if self.starts_at else None

    @property
    def is_poll(self) -> bool:
        return self.status == POLL

    @property
    def is_fixed(self) -> bool:
        return self.status == FIXED

    @property
    def is_cancelled(self) -> bool:
        return self.status == CANCELLED

    def option(self, position: int) -> OptionView | None:
        return next((o for o in self.options if o.position == position), None)

    @property
    def uid(self) -> str:
        return make_uid("meeting", self.id)


@dataclass(frozen=True)
class OptionTally:
    position: int
    starts_at: datetime
    yes: tuple[str, ...] = ()        # user ids, in the order of the configuration
    maybe: tuple[str, ...] = ()
    no: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()    # members without an answer for this date
    counts: tuple[int, int, int] = (0, 0, 0)   # oui, si besoin, non (counted in SQL)

    @property
    def rank_key(self) -> tuple:
        yes, maybe, no = self.counts
        return (no, -yes, -maybe, self.starts_at, self.position)


@dataclass(frozen=True)
class Tally:
    meeting: MeetingView
    options: tuple[OptionTally, ...]
    not_answered: tuple[str, ...]    # members who gave no answer at all
    answered: int                    # members who answered at least one date

    @property
    def best(self) -> OptionTally | None:
        return best_option(self.options)


def best_option(options: Sequence[OptionTally]) -> OptionTally | None:
    """Fewest « non », then most « oui », then most « si besoin », then the earliest."""
    return min(options, key=lambda o: o.rank_key) if options else None


@dataclass(frozen=True)
class Moved:
    before: datetime
    meeting: MeetingView


@dataclass(frozen=True)
class PollOverlap:
    """Another open poll whose dates overlap the given ones: its period and the days in common."""

    id: int
    title: str
    first: datetime
    last: datetime
    same_days: tuple[date, ...] = ()


# -- the service ---------------------------------------------------------------------------------

class MeetingService:
    """Meetings of the network. ``other_sources`` are the other calendars (events…) the date scorer
    must avoid; the service counts its own meetings itself."""

    def __init__(self, config: Config, clock: Clock, other_sources: Sequence[CalendarSource] = ()):
        self.config = config
        self.clock = clock
        self.other_sources: list[CalendarSource] = list(other_sources)
        self.calendar = FrenchCalendar()

    @property
    def settings(self):
        return self.config.meetings

    def voter_ids(self) -> list[str]:
        """The members expected to answer polls (advisors and coordinators, in configuration order)."""
        return [m.user_id for m in self.config.members if m.role in VOTER_ROLES]

    def is_voter(self, user_id: str) -> bool:
        return user_id in self.voter_ids()

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.clock.tz)

    # -- reading -------------------------------------------------------------------------------
    async def _row(self, session: AsyncSession, meeting_id: int) -> Meeting:
        row = await session.get(Meeting, meeting_id) if 1 <= meeting_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"Je ne trouve pas de rencontre n°{meeting_id}.")
        return row

    async def _view(self, session: AsyncSession, row: Meeting) -> MeetingView:
        options = (await session.scalars(select(MeetingOption).where(MeetingOption.meeting_id == row.id)
                                         .order_by(MeetingOption.position))).all()
        opts = tuple(OptionView(id=o.id, position=o.position, starts_at=self.local(o.starts_at), note=o.note or "")
                     for o in options)
        chosen = next((o.position for o in opts if o.id == row.chosen_option_id), None)
        return MeetingView(id=row.id, title=row.title, status=row.status, location=row.location or "",
                           duration_minutes=row.duration_minutes, room_id=row.room_id,
                           deadline=self.local(row.deadline), native_poll=row.native_poll, sequence=row.sequence,
                           created_by=row.created_by, created_at=self.local(row.created_at), options=opts,
                           starts_at=self.local(row.starts_at) if row.starts_at else None, chosen_position=chosen,
                           closed_by=row.closed_by, closed_at=self.local(row.closed_at) if row.closed_at else None,
                           cancelled_by=row.cancelled_by,
                           cancelled_at=self.local(row.cancelled_at) if row.cancelled_at else None,
                           cancel_reason=row.cancel_reason)

    async def get(self, session: AsyncSession, meeting_id: int) -> MeetingView:
        return await self._view(session, await self._row(session, meeting_id))

    async def open_polls(self, session: AsyncSession) -> list[MeetingView]:
        rows = (await session.scalars(select(Meeting).where(Meeting.status == POLL).order_by(Meeting.id))).all()
        return [await self._view(session, r) for r in rows]

    async def open_poll_options(self, session: AsyncSession) -> list[tuple[int, int]]:
        """(meeting id, date number) of every date of every open poll."""
        rows = (await session.execute(select(MeetingOption.meeting_id, MeetingOption.position)
                                      .join(Meeting, Meeting.id == MeetingOption.meeting_id)
                                      .where(Meeting.status == POLL)
                                      .order_by(MeetingOption.meeting_id, MeetingOption.position))).all()
        return [(m, p) for m, p in rows]

    async def find_poll(self, session: AsyncSession, meeting_id: int | None) -> MeetingView:
        """The poll ``meeting_id``, or the only open one when no number is given."""
        if meeting_id is not None:
            return await self.get(session, meeting_id)
        polls = await self.open_polls(session)
        if not polls:
            raise NoOpenPoll("Aucun sondage de date n'est ouvert en ce moment.")
        if len(polls) > 1:
            ids = [p.id for p in polls]
            raise SeveralOpenPolls("Plusieurs sondages sont ouverts (" + ", ".join(f"n°{i}" for i in ids)
                                   + ") : précisez lequel.", ids)
        return polls[0]

    async def list_meetings(self, session: AsyncSession, *, past_limit: int = 5) -> list[MeetingView]:
        """Open polls and coming meetings (soonest first), then the latest past or cancelled ones."""
        now = self.clock.now()
        current = or_(Meeting.status == POLL,
                      and_(Meeting.status == FIXED, Meeting.starts_at.is_not(None), meeting_end() > now))
        coming = (await session.scalars(
            select(Meeting).where(current)
            .order_by(case((Meeting.status == POLL, 0), else_=1), func.coalesce(Meeting.starts_at, Meeting.deadline),
                      Meeting.id))).all()
        past = (await session.scalars(
            select(Meeting).where(not_(current))
            .order_by(func.coalesce(Meeting.starts_at, Meeting.cancelled_at, Meeting.created_at).desc(),
                      Meeting.id.desc())
            .limit(past_limit))).all()
        return [await self._view(session, r) for r in [*coming, *past]]

    async def next_meeting(self, session: AsyncSession) -> MeetingView | None:
        """The next fixed meeting that has not ended yet."""
        row = await session.scalar(select(Meeting).where(Meeting.status == FIXED)
                                   .where(meeting_end() > self.clock.now())
                                   .order_by(Meeting.starts_at, Meeting.id).limit(1))
        return await self._view(session, row) if row is not None else None

    async def latest_closed(self, session: AsyncSession) -> MeetingView | None:
        """The poll closed last (its meeting has a date), or None."""
        row = await session.scalar(select(Meeting).where(Meeting.status == FIXED)
                                   .order_by(Meeting.closed_at.desc(), Meeting.id.desc()).limit(1))
        return await self._view(session, row) if row is not None else None

    async def gatherings(self, session: AsyncSession, *, exclude: int | None = None) -> list[date]:
        """The local dates of every fixed meeting (for spacing the next ones), but ``exclude``."""
        query = select(Meeting.starts_at).where(Meeting.status == FIXED).where(Meeting.starts_at.is_not(None))
        if exclude is not None:
            query = query.where(Meeting.id != exclude)
        return sorted(self.local(s).date() for s in (await session.scalars(query)).all())

    async def overlapping_polls(self, session: AsyncSession, starts: Sequence[datetime], *,
                                exclude: int | None = None) -> list[PollOverlap]:
        """The other open polls whose dates overlap the period of ``starts`` (local days, both ends
        included), with the days they have in common."""
        if not starts:
            return []
        tz = self.clock.tz
        days = sorted({self.local(s).date() for s in starts})
        lo = datetime.combine(days[0], datetime.min.time(), tzinfo=tz)
        hi = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        first, last = func.min(MeetingOption.starts_at), func.max(MeetingOption.starts_at)
        query = (select(Meeting.id, Meeting.title, first, last)
                 .join(MeetingOption, MeetingOption.meeting_id == Meeting.id)
                 .where(Meeting.status == POLL)
                 .group_by(Meeting.id, Meeting.title)
                 .having(first < hi).having(last >= lo)
                 .order_by(Meeting.id))
        if exclude is not None:
            query = query.where(Meeting.id != exclude)
        polls = (await session.execute(query)).all()
        if not polls:
            return []
        in_period = (await session.execute(
            select(MeetingOption.meeting_id, MeetingOption.starts_at)
            .where(MeetingOption.meeting_id.in_([p[0] for p in polls]))
            .where(MeetingOption.starts_at >= lo).where(MeetingOption.starts_at < hi))).all()
        wanted = set(days)
        common: dict[int, set[date]] = defaultdict(set)
        for meeting_id, start in in_period:
            if self.local(start).date() in wanted:
                common[meeting_id].add(self.local(start).date())
        return [PollOverlap(id=i, title=t, first=self.local(f), last=self.local(la),
                            same_days=tuple(sorted(common.get(i, ())))) for i, t, f, la in polls]

    # -- choosing dates ------------------------------------------------------------------------
    async def busy_days(self, session: AsyncSession, start: date, end: date, *,
                        exclude: int | None = None) -> dict[date, list[AgendaEntry]]:
        """What already takes each day of [start, end]: the other sources' entries and our meetings
        (but meeting ``exclude``: the one being moved). Raw entries; the caller words them."""
        tz = self.clock.tz
        lo = datetime.combine(start, datetime.min.time(), tzinfo=tz)
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        entries: list[AgendaEntry] = []
        for source in self.other_sources:
            entries.extend(await source.calendar_items(session, lo, hi))
        entries.extend(await self.calendar_items(session, lo, hi, exclude=exclude))
        busy: dict[date, list[AgendaEntry]] = defaultdict(list)
        for entry in entries:
            if entry.cancelled:
                continue
            day = self.local(entry.start).date()
            last = self.local(entry.end - timedelta(seconds=1)).date() if entry.end > entry.start else day
            while day <= last:
                if start <= day <= end and all((e.kind, e.ident) != (entry.kind, entry.ident) for e in busy[day]):
                    busy[day].append(entry)
                day += timedelta(days=1)
        return dict(busy)

    async def suggest(self, session: AsyncSession, *, window: Window | None = None, n: int | None = None,
                      duration_minutes: int | None = None,
                      not_before: date | None = None) -> tuple[Window, list[Candidate]]:
        """Candidate dates, best first; without a window, the one that keeps the yearly spacing and
        starts on ``not_before`` at the earliest (a week after the poll closes, say)."""
        today = self.clock.today()
        gatherings = await self.gatherings(session)
        if window is None:
            window = default_window(today, gatherings, self.settings.per_year, not_before)
        busy = await self.busy_days(session, window.start, window.end)
        candidates = propose_dates(today, window, self.settings, self.clock.tz, busy=busy, gatherings=gatherings,
                                   n=n, duration_minutes=duration_minutes, calendar=self.calendar)
        return window, candidates

    async def assess_dates(self, session: AsyncSession, starts: Sequence[datetime],
                           duration_minutes: int | None = None, *, exclude: int | None = None) -> list[Candidate]:
        """Explicit dates with what they risk (public holiday, bridge, school holidays, busy day…).
        ``exclude``: a meeting that does not count (the one being moved does not take its own day)."""
        if not starts:
            return []
        days = [self.local(s).date() for s in starts]
        busy = await self.busy_days(session, min(days), max(days), exclude=exclude)
        gatherings = await self.gatherings(session, exclude=exclude)
        return [assess(self.local(s), self.settings, busy=busy, gatherings=gatherings,
                       duration_minutes=duration_minutes, calendar=self.calendar) for s in starts]

    # -- proposing -----------------------------------------------------------------------------
    async def propose(self, session: AsyncSession, new: NewMeeting) -> MeetingView:
        now = self.clock.now()
        title = " ".join(without_controls(new.title).split())
        location = " ".join(without_controls(new.location).split())
        if not title:
            raise Invalid("Le titre de la rencontre est vide.")
        if len(title) > TITLE_MAX:
            raise Invalid(f"Le titre est trop long ({len(title)} caractères, {TITLE_MAX} au plus).")
        if len(location) > LOCATION_MAX:
            raise Invalid(f"Le lieu est trop long ({len(location)} caractères, {LOCATION_MAX} au plus).")
        if not 15 <= new.duration_minutes <= 24 * 60:
            raise Invalid("La durée doit être comprise entre 15 minutes et 24 heures.")
        starts = sorted(new.starts)
        if not starts:
            raise Invalid("Aucune date à proposer.")
        if len(starts) > MAX_OPTIONS:
            raise Invalid(f"Trop de dates ({len(starts)}) : {MAX_OPTIONS} au plus.")
        if len(set(starts)) != len(starts):
            dup = next(s for s in starts if starts.count(s) > 1)
            raise Invalid(f"La date du {datetime_fr(self.local(dup))} est proposée deux fois.")
        past = [s for s in starts if s <= now]
        if past:
            raise Invalid(f"La date du {datetime_fr(self.local(past[0]))} est déjà passée.")
        if new.deadline <= now:
            raise Invalid(f"La date limite des réponses ({datetime_fr(self.local(new.deadline))}) est déjà passée.")
        if new.deadline >= starts[0]:
            raise Invalid(f"La date limite des réponses ({datetime_fr(self.local(new.deadline))}) doit précéder "
                          f"la première date proposée ({datetime_fr(self.local(starts[0]))}).")
        notes = dict(zip(new.starts, new.notes)) if new.notes else {}
        row = Meeting(title=title, status=POLL, location=location, duration_minutes=new.duration_minutes,
                      room_id=new.room_id, deadline=new.deadline, native_poll=new.native_poll, sequence=0,
                      created_by=new.created_by, created_at=now)
        session.add(row)
        await session.flush()
        for position, start in enumerate(starts, 1):
            session.add(MeetingOption(meeting_id=row.id, position=position, starts_at=start,
                                      note=notes.get(start, "")))
        await session.flush()
        return await self._view(session, row)

    # -- answers -------------------------------------------------------------------------------
    async def _open(self, session: AsyncSession, meeting_id: int) -> Meeting:
        row = await self._row(session, meeting_id)
        if row.status != POLL:
            raise AlreadyClosed(f"Le sondage n°{row.id} {md_quote(row.title)} est clos : il n'accepte plus de réponses.",
                                await self._view(session, row))
        return row

    async def _option_ids(self, session: AsyncSession, meeting_id: int) -> dict[int, int]:
        rows = (await session.execute(select(MeetingOption.position, MeetingOption.id)
                                      .where(MeetingOption.meeting_id == meeting_id))).all()
        return {position: option_id for position, option_id in rows}

    async def answer(self, session: AsyncSession, meeting_id: int, user_id: str, answers: dict[int, str], *,
                     source: str, event_id: str | None = None) -> dict[int, str]:
        """Record ``{date number: oui|sibesoin|non}`` for ``user_id``; returns their answers afterwards."""
        row = await self._open(session, meeting_id)
        if source not in SOURCES:
            raise ValueError(f"unknown vote source {source!r}")
        options = await self._option_ids(session, row.id)
        unknown = sorted(p for p in answers if p not in options)
        if unknown:
            raise Invalid(f"Le sondage n°{row.id} n'a pas de date n°{unknown[0]} (dates 1 à {len(options)}).")
        now = self.clock.now()
        for position, value in sorted(answers.items()):
            if value not in ANSWERS:
                raise ValueError(f"unknown answer {value!r}")
            session.add(MeetingVote(meeting_id=row.id, option_id=options[position], user_id=user_id, answer=value,
                                    source=source, event_id=event_id, created_at=now))
        await session.flush()
        return await self.answers_of(session, row.id, user_id)

    async def withdraw(self, session: AsyncSession, event_id: str) -> int:
        """The event that carried answers was redacted (a reaction removed): withdraw them while the
        poll is open. Returns how many answers were withdrawn."""
        open_ids = select(Meeting.id).where(Meeting.status == POLL)
        result = await session.execute(update(MeetingVote).where(MeetingVote.event_id == event_id)
                                       .where(MeetingVote.withdrawn_at.is_(None))
                                       .where(MeetingVote.meeting_id.in_(open_ids))
                                       .values(withdrawn_at=self.clock.now()).execution_options(
                                           synchronize_session=False))
        return result.rowcount or 0

    async def poll_response(self, session: AsyncSession, meeting_id: int, user_id: str, positions: Sequence[int],
                            event_id: str | None = None) -> bool:
        """A native poll response: replaces this user's previous one; an empty one un-votes.
        Ignored (False) once the poll is closed."""
        row = await self._row(session, meeting_id)
        if row.status != POLL:
            return False
        options = await self._option_ids(session, row.id)
        now = self.clock.now()
        await session.execute(update(MeetingVote).where(MeetingVote.meeting_id == row.id)
                              .where(MeetingVote.user_id == user_id).where(MeetingVote.source == SOURCE_POLL)
                              .where(MeetingVote.withdrawn_at.is_(None)).values(withdrawn_at=now)
                              .execution_options(synchronize_session=False))
        for position in sorted(set(p for p in positions if p in options)):
            session.add(MeetingVote(meeting_id=row.id, option_id=options[position], user_id=user_id, answer=YES,
                                    source=SOURCE_POLL, event_id=event_id, created_at=now))
        await session.flush()
        return True

    def _effective(self, meeting_id: int):
        """Each member's standing answer per date: explicit answers first, then the latest."""
        priority = case((MeetingVote.source == SOURCE_POLL, 1), else_=0)
        rank = func.row_number().over(partition_by=(MeetingVote.option_id, MeetingVote.user_id),
                                      order_by=(priority.asc(), MeetingVote.id.desc())).label("rank")
        return (select(MeetingVote.option_id, MeetingVote.user_id, MeetingVote.answer, rank)
                .where(MeetingVote.meeting_id == meeting_id).where(MeetingVote.withdrawn_at.is_(None))
                .where(MeetingVote.user_id.in_(self.voter_ids())).subquery())

    async def answers_of(self, session: AsyncSession, meeting_id: int, user_id: str) -> dict[int, str]:
        eff = self._effective(meeting_id)
        rows = (await session.execute(select(MeetingOption.position, eff.c.answer)
                                      .join(eff, eff.c.option_id == MeetingOption.id)
                                      .where(eff.c.rank == 1).where(eff.c.user_id == user_id)
                                      .order_by(MeetingOption.position))).all()
        return {position: answer for position, answer in rows}

    async def tally(self, session: AsyncSession, meeting_id: int) -> Tally:
        view = await self.get(session, meeting_id)
        eff = self._effective(view.id)
        counts = (await session.execute(select(eff.c.option_id, eff.c.answer, func.count())
                                        .where(eff.c.rank == 1).group_by(eff.c.option_id, eff.c.answer))).all()
        rows = (await session.execute(select(eff.c.option_id, eff.c.user_id, eff.c.answer)
                                      .where(eff.c.rank == 1))).all()
        answered_count = await session.scalar(select(func.count(func.distinct(eff.c.user_id)))
                                              .where(eff.c.rank == 1))
        by_option: dict[int, dict[str, int]] = defaultdict(dict)
        for option_id, answer, n in counts:
            by_option[option_id][answer] = n
        who: dict[tuple[int, str], str] = {(option_id, user): answer for option_id, user, answer in rows}
        members = self.voter_ids()
        tallies = []
        for opt in view.options:
            def users(value: str, option_id: int = opt.id) -> tuple[str, ...]:
                return tuple(u for u in members if who.get((option_id, u)) == value)
            c = by_option.get(opt.id, {})
            tallies.append(OptionTally(position=opt.position, starts_at=opt.starts_at, yes=users(YES),
                                       maybe=users(MAYBE), no=users(NO),
                                       missing=tuple(u for u in members if (opt.id, u) not in who),
                                       counts=(c.get(YES, 0), c.get(MAYBE, 0), c.get(NO, 0))))
        voters = {user for (_, user) in who}
        return Tally(meeting=view, options=tuple(tallies), not_answered=tuple(u for u in members if u not in voters),
                     answered=answered_count or 0)

    # -- closing, moving, cancelling -----------------------------------------------------------
    async def close(self, session: AsyncSession, meeting_id: int, by: str | None,
                    position: int | None = None) -> tuple[MeetingView, Tally]:
        """Fix the date: ``position`` if given, else the best one. ``by`` None: closed at the deadline.

        Only one caller can close a poll: the status changes through ``UPDATE … WHERE status = 'poll'``
        (the database serialises concurrent closes; the second one matches no row), and a poll that is
        no longer open, even if this session still sees it open, raises :class:`AlreadyClosed`.
        """
        row = await self._open(session, meeting_id)
        tally = await self.tally(session, row.id)
        if position is not None:
            chosen = next((o for o in tally.options if o.position == position), None)
            if chosen is None:
                raise Invalid(f"Le sondage n°{row.id} n'a pas de date n°{position} "
                              f"(dates 1 à {len(tally.options)}).")
        else:
            chosen = tally.best
        option = tally.meeting.option(chosen.position)
        now = self.clock.now()
        result = await session.execute(
            update(Meeting).where(Meeting.id == row.id).where(Meeting.status == POLL)
            .values(status=FIXED, starts_at=option.starts_at, chosen_option_id=option.id, closed_by=by,
                    closed_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        await session.refresh(row)
        if result.rowcount != 1:
            raise AlreadyClosed(f"Le sondage n°{row.id} {md_quote(row.title)} vient d'être clos.",
                                await self._view(session, row))
        return await self._view(session, row), tally

    async def extend(self, session: AsyncSession, meeting_id: int, deadline: datetime) -> MeetingView:
        """A new deadline for an open poll (possibly past its old one): later than now and than the old
        deadline when that one is still to come, and before the first proposed date."""
        row = await self._open(session, meeting_id)
        now = self.clock.now()
        first = await session.scalar(select(func.min(MeetingOption.starts_at))
                                     .where(MeetingOption.meeting_id == row.id))
        when = datetime_fr(self.local(deadline))
        if deadline <= now:
            raise Invalid(f"La nouvelle date limite ({when}) est déjà passée.")
        if row.deadline > now and deadline <= row.deadline:
            raise Invalid(f"La nouvelle date limite ({when}) doit être après l'actuelle "
                          f"({datetime_fr(self.local(row.deadline))}).")
        if first is not None and deadline >= first:
            raise Invalid(f"La nouvelle date limite ({when}) doit précéder la première date proposée "
                          f"({datetime_fr(self.local(first))}).")
        result = await session.execute(
            update(Meeting).where(Meeting.id == row.id).where(Meeting.status == POLL)
            .values(deadline=deadline, updated_at=now).execution_options(synchronize_session=False))
        await session.refresh(row)
        if result.rowcount != 1:
            raise AlreadyClosed(f"Le sondage n°{row.id} {md_quote(row.title)} vient d'être clos.",
                                await self._view(session, row))
        return await self._view(session, row)

    async def cancel(self, session: AsyncSession, meeting_id: int, by: str, reason: str = "") -> MeetingView:
        row = await self._row(session, meeting_id)
        if row.status == CANCELLED:
            raise WrongState(f"La rencontre n°{row.id} {md_quote(row.title)} est déjà annulée.")
        now = self.clock.now()
        if row.status == FIXED and row.starts_at + timedelta(minutes=row.duration_minutes) <= now:
            raise WrongState(f"La rencontre n°{row.id} {md_quote(row.title)} a déjà eu lieu "
                             f"({date_fr(self.local(row.starts_at))}).")
        reason = " ".join(without_controls(reason or "").split())
        if len(reason) > REASON_MAX:
            raise Invalid(f"La raison est trop longue ({len(reason)} caractères, {REASON_MAX} au plus).")
        if row.status == FIXED:
            row.sequence += 1  # an announcement (and its .ics) went out: the cancellation supersedes it
        row.status = CANCELLED
        row.cancelled_by = by
        row.cancelled_at = now
        row.cancel_reason = reason or None
        row.updated_at = now
        await session.flush()
        return await self._view(session, row)

    async def move(self, session: AsyncSession, meeting_id: int, by: str, new_start: datetime) -> Moved:
        row = await self._row(session, meeting_id)
        if row.status == POLL:
            raise WrongState(f"La rencontre n°{row.id} {md_quote(row.title)} n'a pas encore de date : son sondage est "
                             "ouvert.")
        if row.status == CANCELLED:
            raise WrongState(f"La rencontre n°{row.id} {md_quote(row.title)} est annulée.")
        now = self.clock.now()
        if row.starts_at + timedelta(minutes=row.duration_minutes) <= now:
            raise WrongState(f"La rencontre n°{row.id} {md_quote(row.title)} a déjà eu lieu "
                             f"({date_fr(self.local(row.starts_at))}).")
        if new_start <= now:
            raise Invalid(f"La nouvelle date ({datetime_fr(self.local(new_start))}) est déjà passée.")
        if new_start == row.starts_at:
            raise Invalid(f"La rencontre est déjà prévue le {datetime_fr(self.local(new_start))}.")
        before = self.local(row.starts_at)
        row.starts_at = new_start
        row.sequence += 1
        row.updated_at = now
        await session.flush()
        return Moved(before=before, meeting=await self._view(session, row))

    # -- what the chat layer sent and planned -------------------------------------------------
    async def poll_event_id(self, session: AsyncSession, meeting_id: int) -> str | None:
        """The event id of the poll's native Matrix poll, once sent."""
        return await session.scalar(select(OutboxMessage.event_id).where(OutboxMessage.tag == poll_tag(meeting_id))
                                    .where(OutboxMessage.event_id.is_not(None)).order_by(OutboxMessage.id.desc())
                                    .limit(1))

    async def _tag_of_event(self, session: AsyncSession, event_id: str | None, tags: list[str]) -> str | None:
        if not tags or not event_id:
            return None
        return await session.scalar(select(OutboxMessage.tag).where(OutboxMessage.tag.in_(tags))
                                    .where(OutboxMessage.event_id == event_id).limit(1))

    async def option_of_event(self, session: AsyncSession, event_id: str | None) -> tuple[int, int] | None:
        """(meeting id, date number) when ``event_id`` is the message of a date of an open poll."""
        options = await self.open_poll_options(session)
        tags = {option_tag(m, p): (m, p) for m, p in options}
        tag = await self._tag_of_event(session, event_id, list(tags))
        return tags.get(tag) if tag else None

    async def poll_of_event(self, session: AsyncSession, event_id: str | None) -> int | None:
        """The open poll whose native Matrix poll is ``event_id``."""
        polls = sorted({m for m, _ in await self.open_poll_options(session)})
        tags = {poll_tag(m): m for m in polls}
        tag = await self._tag_of_event(session, event_id, list(tags))
        return tags.get(tag) if tag else None

    async def later_reminder_due(self, session: AsyncSession, meeting_id: int, after: datetime) -> bool:
        """Whether another reminder of this meeting, planned after ``after``, is due now as well."""
        count = await session.scalar(select(func.count()).select_from(ScheduledJob)
                                     .where(ScheduledJob.status == "pending")
                                     .where(ScheduledJob.key.startswith(reminder_key_prefix(meeting_id)))
                                     .where(ScheduledJob.run_at > after)
                                     .where(ScheduledJob.run_at <= self.clock.now()))
        return bool(count)

    # -- calendar ------------------------------------------------------------------------------
    def entry(self, view: MeetingView) -> AgendaEntry:
        return AgendaEntry(kind="reunion", ident=view.id, title=view.title, start=view.starts_at, end=view.ends_at,
                           location=view.location, organiser=NETWORK_LABEL, audience="membres du réseau",
                           cancelled=view.is_cancelled, sequence=view.sequence, uid=view.uid)

    async def calendar_items(self, session: AsyncSession, start: datetime, end: datetime, *,
                             include_cancelled: bool = False, exclude: int | None = None) -> list[AgendaEntry]:
        """Meetings with a date overlapping [start, end); cancelled ones only when asked; not ``exclude``."""
        statuses = (FIXED, CANCELLED) if include_cancelled else (FIXED,)
        query = (select(Meeting).where(Meeting.status.in_(statuses))
                 .where(Meeting.starts_at.is_not(None)).where(Meeting.starts_at < end)
                 .where(meeting_end() > start)
                 .order_by(Meeting.starts_at, Meeting.id))
        if exclude is not None:
            query = query.where(Meeting.id != exclude)
        return [self.entry(await self._view(session, row)) for row in (await session.scalars(query)).all()]

    def calendar_item(self, view: MeetingView) -> CalendarItem:
        """The meeting's VEVENT: exactly the calendar feed's (same builder, :meth:`AgendaEntry.calendar_item`)."""
        return self.entry(view).calendar_item()

    def ics(self, view: MeetingView) -> bytes:
        """The .ics of a meeting with a date (METHOD:PUBLISH; STATUS:CANCELLED once cancelled)."""
        if view.starts_at is None:
            raise WrongState(f"La rencontre n°{view.id} n'a pas de date.")
        return build_calendar([self.calendar_item(view)], self.clock.tz, self.clock.now())

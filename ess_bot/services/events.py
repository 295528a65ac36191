"""The network's events (inaugurations, workshops, Mois de l'ESS…): announced, updated, cancelled.

Each event has a stable iCalendar UID (``event-<id>@ess-bot``) and a SEQUENCE that grows at every
change, so that calendar applications update or cancel the copy they imported. The service also plans
the reminders (J-N) and is a :class:`~ess_bot.services.agenda.CalendarSource`.

Failures raise :class:`EventError` subclasses whose ``message`` is French Markdown, every value in it
escaped (:func:`ess_bot.parsing.md_quote`), ready to be shown as is. Changes are returned as raw
values (:class:`~ess_bot.services.tools.Change`); the chat layer words them. The announcement's .ics is
built from the same :meth:`AgendaEntry.calendar_item` as the calendar feed, so both carry the same VEVENT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.calendar_fr import DayInfo, FrenchCalendar
from ess_bot.clock import Clock
from ess_bot.config import Config, Member, role_allows
from ess_bot.formatting import date_fr, md_escape, time_fr
from ess_bot.ics import CalendarItem, build_calendar, make_uid
from ess_bot.services.agenda import AgendaEntry
from ess_bot.parsing import md_quote
from ess_bot.services.tools import MAX_ID, Change, check_link, check_private, merge_tags, tag_key
from ess_bot.storage.models import ScheduledJob
from ess_bot.storage.tools_events import NetworkEvent
from ess_bot.text import fold, without_controls
from ess_bot.vocabulary import Choice, ChoiceList

AUDIENCES = ChoiceList("public", (
    Choice("porteurs", "porteurs de projet", ("porteur", "porteuses", "porteurs de projets", "createurs",
                                              "entrepreneurs")),
    Choice("partenaires", "partenaires du réseau", ("partenaire", "reseau")),
    Choice("conseillers", "conseillers et conseillères", ("conseiller", "conseilleres", "accompagnateurs")),
    Choice("financeurs", "financeurs", ("financeur",)),
    Choice("elus", "élus et collectivités", ("elu", "elus", "collectivites")),
    Choice("tout_public", "tout public", ("grand public", "tous", "public")),
), example="porteurs,partenaires")

NETWORK = "reseau"          # organiser key for events of the whole network
NETWORK_LABEL = "le réseau ESS"
DEFAULT_DURATION = timedelta(hours=2)
REMINDER_HOUR = time(9, 0)  # reminders are sent at 9:00 on day J-N
TITLE_MAX = 120
PLACE_MAX = 300
REASON_MAX = 300
REMINDER_KEY = "event:{id}:reminder:"  # prefix of the keys of an event's reminder jobs


class EventError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(EventError):
    pass


class Forbidden(EventError):
    pass


class Invalid(EventError):
    pass


@dataclass(frozen=True)
class NewEvent:
    title: str
    start: datetime                      # aware
    end: datetime | None = None          # aware; None: start + 2 h
    location: str | None = None
    link: str | None = None
    audience: tuple[str, ...] = ()       # AUDIENCES keys
    tags: tuple[str, ...] = ()           # without "#"
    partner: str | None = None           # organiser slug or NETWORK; None: the actor's partner
    rooms: tuple[str, ...] = ()          # where it is announced


@dataclass(frozen=True)
class EventChanges:
    """None leaves a field unchanged; an empty string clears location/link; () clears tags/audience.

    Tags: ``tags`` (not None) replaces them all, then ``add_tags`` are added and ``remove_tags`` removed."""

    title: str | None = None
    start: datetime | None = None        # the end moves with it unless ``end`` is given
    end: datetime | None = None
    location: str | None = None
    link: str | None = None
    audience: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    partner: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return (all(v is None for v in (self.title, self.start, self.end, self.location, self.link, self.audience,
                                        self.tags, self.partner)) and not self.add_tags and not self.remove_tags)


@dataclass(frozen=True)
class EventView:
    id: int
    title: str
    start: datetime          # in the clock's timezone
    end: datetime
    partner: str
    organiser: str           # partner name, or NETWORK_LABEL
    created_by: str
    location: str | None = None
    link: str | None = None
    audience: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    sequence: int = 0
    cancelled: bool = False
    cancel_reason: str | None = None

    @property
    def uid(self) -> str:
        return make_uid("event", self.id)

    @property
    def audience_labels(self) -> list[str]:
        return [AUDIENCES.label(a) for a in self.audience]


def reminder_times(start: datetime, days: tuple[int, ...], now: datetime) -> list[tuple[int, datetime]]:
    """(N, when) for each J-N reminder still ahead of ``now``: 9:00 on day J-N (in the start's timezone),
    or one hour before the start when that is earlier than 9:00 on the day itself."""
    out: list[tuple[int, datetime]] = []
    for n in sorted(set(days), reverse=True):
        at = datetime.combine(start.date() - timedelta(days=n), REMINDER_HOUR, tzinfo=start.tzinfo)
        if at >= start:
            at = start - timedelta(hours=1)
        if at > now:
            out.append((n, at))
    return out


class EventService:
    def __init__(self, config: Config, clock: Clock):
        self.config = config
        self.clock = clock
        self.calendar = FrenchCalendar()

    # -- writing ---------------------------------------------------------------------------------
    async def create(self, session: AsyncSession, actor: Member, new: NewEvent) -> EventView:
        partner = new.partner or actor.partner
        self._check_partner(partner)
        self._check_may_manage(actor, partner, None)
        title = self._title(new.title)
        start = new.start
        end = new.end or start + DEFAULT_DURATION
        self._check_times(start, end, self.clock.now())
        now = self.clock.now()
        row = NetworkEvent(title=title, start_at=start, end_at=end, location=self._place(new.location),
                           link=check_link(new.link, Invalid) if new.link else None,
                           audience=self._audience(new.audience),
                           tags=list(merge_tags((), add=new.tags, error=Invalid)), partner=partner,
                           rooms=list(dict.fromkeys(new.rooms)), sequence=0, cancelled=False,
                           created_by=actor.user_id, created_at=now)
        session.add(row)
        await session.flush()
        return self._view(row)

    async def update(self, session: AsyncSession, actor: Member, event_id: int,
                     changes: EventChanges) -> tuple[EventView, list[Change]]:
        row = await self._row(session, event_id)
        self._check_may_manage(actor, row.partner, row.created_by)
        self._check_open(row, "modifier")
        if changes.is_empty():
            raise Invalid("Rien à modifier.")
        before = self._view(row)
        done: list[Change] = []
        if changes.title is not None:
            title = self._title(changes.title)
            if title != row.title:
                done.append(Change("title", row.title, title))
                row.title = title
        start = changes.start or before.start
        end = changes.end or (start + (before.end - before.start) if changes.start else before.end)
        if (start, end) != (before.start, before.end):
            self._check_times(start, end, self.clock.now())
            tz = self.clock.tz
            done.append(Change("when", (before.start, before.end), (start.astimezone(tz), end.astimezone(tz))))
            row.start_at, row.end_at = start, end
        if changes.location is not None:
            place = self._place(changes.location)
            if place != row.location:
                done.append(Change("location", row.location, place))
                row.location = place
        if changes.link is not None:
            link = check_link(changes.link, Invalid) if changes.link else None
            if link != row.link:
                done.append(Change("link", row.link, link))
                row.link = link
        if changes.audience is not None:
            audience = self._audience(changes.audience)
            if audience != list(row.audience or []):
                done.append(Change("audience", before.audience, tuple(audience)))
                row.audience = audience
        if changes.tags is not None or changes.add_tags or changes.remove_tags:
            tags = merge_tags(before.tags, replace=changes.tags, add=changes.add_tags, remove=changes.remove_tags,
                              error=Invalid)
            if {tag_key(t) for t in tags} != {tag_key(t) for t in before.tags}:
                done.append(Change("tags", before.tags, tags))
                row.tags = list(tags)
        if changes.partner is not None and changes.partner != row.partner:
            self._check_partner(changes.partner)
            self._check_may_manage(actor, changes.partner, None)
            done.append(Change("organiser", row.partner, changes.partner))
            row.partner = changes.partner
        if not done:
            raise Invalid("Ces valeurs sont déjà celles de l'événement : rien n'a changé.")
        row.sequence = (row.sequence or 0) + 1
        row.updated_at, row.updated_by = self.clock.now(), actor.user_id
        await session.flush()
        return self._view(row), done

    async def cancel(self, session: AsyncSession, actor: Member, event_id: int, reason: str | None = None) -> EventView:
        row = await self._row(session, event_id)
        self._check_may_manage(actor, row.partner, row.created_by)
        self._check_open(row, "annuler")
        reason = re.sub(r"\s+", " ", without_controls(reason or "")).strip() or None
        if reason and len(reason) > REASON_MAX:
            raise Invalid(f"Raison trop longue ({len(reason)} caractères) : {REASON_MAX} au plus.")
        check_private(reason, "la raison", Invalid)
        row.cancelled, row.cancel_reason = True, reason
        row.sequence = (row.sequence or 0) + 1
        row.updated_at, row.updated_by = self.clock.now(), actor.user_id
        await session.flush()
        return self._view(row)

    # -- reading ---------------------------------------------------------------------------------
    async def get(self, session: AsyncSession, event_id: int) -> EventView:
        return self._view(await self._row(session, event_id))

    async def upcoming(self, session: AsyncSession, now: datetime, limit: int | None = None,
                       include_cancelled: bool = False) -> list[EventView]:
        """Events not finished at ``now``, soonest first."""
        stmt = select(NetworkEvent).where(NetworkEvent.end_at > now)
        if not include_cancelled:
            stmt = stmt.where(NetworkEvent.cancelled.is_(False))
        stmt = stmt.order_by(NetworkEvent.start_at, NetworkEvent.id)
        if limit:
            stmt = stmt.limit(limit)
        return [self._view(r) for r in (await session.scalars(stmt)).all()]

    async def calendar_items(self, session: AsyncSession, start: datetime, end: datetime) -> list[AgendaEntry]:
        """CalendarSource: the events overlapping [start, end), cancelled ones excluded."""
        rows = (await session.scalars(select(NetworkEvent).where(NetworkEvent.cancelled.is_(False))
                                      .where(NetworkEvent.start_at < end).where(NetworkEvent.end_at > start)
                                      .order_by(NetworkEvent.start_at, NetworkEvent.id))).all()
        return [self.agenda_entry(self._view(r)) for r in rows]

    # -- calendar --------------------------------------------------------------------------------
    def agenda_entry(self, view: EventView) -> AgendaEntry:
        return AgendaEntry(kind="evenement", ident=view.id, title=view.title, start=view.start, end=view.end,
                           location=view.location or "", url=view.link or "", organiser=view.organiser,
                           audience=", ".join(view.audience_labels), cancelled=view.cancelled,
                           sequence=view.sequence, uid=view.uid, categories=tuple(view.tags))

    def calendar_item(self, view: EventView) -> CalendarItem:
        """The event's VEVENT: exactly the calendar feed's (same builder, :meth:`AgendaEntry.calendar_item`)."""
        return self.agenda_entry(view).calendar_item()

    def ics(self, view: EventView) -> bytes:
        """The .ics file sent with an announcement, update or cancellation (METHOD:PUBLISH)."""
        return build_calendar([self.calendar_item(view)], self.clock.tz, self.clock.now())

    def reminders(self, view: EventView) -> list[tuple[int, datetime]]:
        return reminder_times(view.start, self.config.events.reminder_days, self.clock.now())

    async def reminder_superseded(self, session: AsyncSession, event_id: int, days: int, job_id: int,
                                  now: datetime) -> bool:
        """Whether a pending reminder of the same event closer to it (J-1 for a J-7) is due too: a
        missed J-7 is pointless when J-1 goes out at the same time."""
        jobs = (await session.scalars(select(ScheduledJob).where(ScheduledJob.status == "pending")
                                      .where(ScheduledJob.key.startswith(REMINDER_KEY.format(id=event_id)))
                                      .where(ScheduledJob.run_at <= now)
                                      .where(ScheduledJob.id != job_id))).all()
        return any(int((j.payload or {}).get("days", 0)) < days for j in jobs)

    # -- checks that warn without refusing -------------------------------------------------------
    def day_info(self, day: date) -> DayInfo:
        """What the French calendar says of ``day`` (weekend, public holiday…), for warnings."""
        return self.calendar.info(day)

    async def same_title_and_start(self, session: AsyncSession, view: EventView) -> list[EventView]:
        """Other events (not cancelled) with the same title (accents and case ignored) and start."""
        rows = (await session.scalars(select(NetworkEvent).where(NetworkEvent.start_at == view.start)
                                      .where(NetworkEvent.cancelled.is_(False)).where(NetworkEvent.id != view.id)
                                      .order_by(NetworkEvent.id))).all()
        key = " ".join(fold(view.title).split())
        return [self._view(r) for r in rows if " ".join(fold(r.title).split()) == key]

    def organiser_name(self, partner: str) -> str:
        if partner == NETWORK:
            return NETWORK_LABEL
        p = self.config.partner(partner)
        return p.name if p else partner

    # -- internals -------------------------------------------------------------------------------
    async def _row(self, session: AsyncSession, event_id: int) -> NetworkEvent:
        row = await session.get(NetworkEvent, event_id) if 1 <= event_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"Je ne trouve pas d'événement n°{event_id}.")
        return row

    def _view(self, r: NetworkEvent) -> EventView:
        tz = self.clock.tz
        return EventView(id=r.id, title=r.title, start=r.start_at.astimezone(tz), end=r.end_at.astimezone(tz),
                         partner=r.partner, organiser=self.organiser_name(r.partner), created_by=r.created_by,
                         location=r.location, link=r.link, audience=tuple(r.audience or ()), tags=tuple(r.tags or ()),
                         rooms=tuple(r.rooms or ()), sequence=r.sequence or 0, cancelled=bool(r.cancelled),
                         cancel_reason=r.cancel_reason)

    def _check_may_manage(self, actor: Member, partner: str, author: str | None) -> None:
        """Coordinators manage every event; with ``events.members_may_add``, a member manages the
        events of their own partner; the author of an event may always change it."""
        if role_allows(actor.role, "coordinator"):
            return
        if author is not None and author == actor.user_id and partner == actor.partner:
            return
        if self.config.events.members_may_add and partner == actor.partner:
            return
        if not self.config.events.members_may_add:
            raise Forbidden("Seule la coordination du réseau peut annoncer ou modifier des événements.")
        raise Forbidden(f"Vous pouvez annoncer et modifier les événements de votre structure "
                        f"({md_escape(self.organiser_name(actor.partner))}), pas ceux des autres (ici : "
                        f"{md_escape(self.organiser_name(partner))}). Demandez à un·e coordinateur·rice du réseau.")

    def _check_partner(self, partner: str) -> None:
        if partner != NETWORK and self.config.partner(partner) is None:
            raise Invalid(f"Organisateur inconnu : {md_quote(partner)}.")

    def _check_times(self, start: datetime, end: datetime, now: datetime) -> None:
        if start <= now:
            raise Invalid(f"La date de début ({date_fr(start.astimezone(self.clock.tz))} à "
                          f"{time_fr(start.astimezone(self.clock.tz))}) est déjà passée.")
        if end <= start:
            raise Invalid(f"La fin ({time_fr(end.astimezone(self.clock.tz))}) doit être après le début "
                          f"({time_fr(start.astimezone(self.clock.tz))}).")
        if end - start > timedelta(days=31):
            raise Invalid("Un événement ne peut pas durer plus d'un mois : vérifiez la date de fin.")

    def _check_open(self, row: NetworkEvent, verb: str) -> None:
        """``verb``: "modifier" or "annuler"."""
        pronoun = "l'" + verb if verb[0] in "aeiou" else "le " + verb
        if row.cancelled:
            if verb == "annuler":
                raise Invalid(f"L'événement n°{row.id} {md_quote(row.title)} est déjà annulé.")
            raise Invalid(f"L'événement n°{row.id} {md_quote(row.title)} est annulé : on ne peut plus {pronoun}.")
        if row.end_at <= self.clock.now():
            raise Invalid(f"L'événement n°{row.id} {md_quote(row.title)} est déjà passé : on ne peut plus {pronoun}.")

    @staticmethod
    def _title(title: str) -> str:
        title = re.sub(r"\s+", " ", without_controls(title or "")).strip()
        if not title:
            raise Invalid("Il manque le titre de l'événement.")
        if len(title) > TITLE_MAX:
            raise Invalid(f"Titre trop long ({len(title)} caractères) : {TITLE_MAX} au plus.")
        check_private(title, "le titre", Invalid)
        return title

    @staticmethod
    def _place(place: str | None) -> str | None:
        place = re.sub(r"\s+", " ", without_controls(place or "")).strip()
        if len(place) > PLACE_MAX:
            raise Invalid(f"Lieu trop long ({len(place)} caractères) : {PLACE_MAX} au plus.")
        check_private(place, "le lieu", Invalid)
        return place or None

    @staticmethod
    def _audience(keys: tuple[str, ...]) -> list[str]:
        for k in keys:
            if k not in AUDIENCES.keys():
                raise Invalid(f"Public inconnu : {md_quote(k)}.")
        return list(dict.fromkeys(keys))

"""Projects and their accompaniment: the domain rules, independent of any chat.

Typed inputs in, typed views out; every method takes the caller's AsyncSession (the command's
transaction) and the acting :class:`Actor`. Failures raise :class:`AccompanimentError` subclasses
whose ``message`` is a French sentence (without command syntax: the chat layer adds examples).

Visibility: coordinators and admins see every project; an advisor sees the projects held by their
partner and those referred to their partner once the referral was accepted. Records (accompaniments)
may be changed or cancelled only by their author or a coordinator/admin.

Changes: only the holding partner's members and coordinators change a project (its fields, holder
profile, outcome); a partner it was referred to logs records on it. A record counts for its author's
partner, so a coordinator logs records only on projects their own partner holds or accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from random import Random
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ess_bot.clock import Clock
from ess_bot.config import Config, role_allows
from ess_bot.formatting import date_fr, join_fr
from ess_bot.parsing import (DURATION_MAX, RETENTION_YEARS, ParseError, PersonalDataError, check_note,
                             check_personal_data, clean_text, new_project_code, parse_project_code,
                             retention_start)
from ess_bot.storage.accompaniments import (Accompaniment, AccompanimentTheme, Project, ProjectOutcome,
                                            Referral)
from ess_bot.text import fold
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_LIST, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LABEL_MAX,
                                LEGAL_FORMS, MINIMA, MODALITIES, NATURES, NOTE_MAX, OUTCOMES, PHASES, QPV,
                                THEMES, ChoiceList)

# A project is named by its code or by a few words of its label (at most LABEL_MAX characters): a
# longer reference cannot match, and each word costs a condition in the label search (SQLite refuses
# an expression deeper than 1,000).
REF_MAX_WORDS = 12
REF_MAX_CHARS = 80

# -- errors ------------------------------------------------------------------------------------


class AccompanimentError(Exception):
    """A domain rule refused the request. ``message`` is French and meant for the person: plain text
    (the chat layer escapes it before it goes into Markdown), except when ``markdown`` is true — a
    message carried over from the parser (:mod:`ess_bot.parsing`), whose messages are Markdown."""

    def __init__(self, message: str, *, markdown: bool = False):
        super().__init__(message)
        self.message = message
        self.markdown = markdown


class NotFound(AccompanimentError):
    pass


class Forbidden(AccompanimentError):
    pass


class Invalid(AccompanimentError):
    pass


class Conflict(AccompanimentError):
    pass


class PersonalDataRefused(Invalid):
    """Free text (label, note, reason) holding contact details or health data (RGPD). ``kind`` is
    ``email``, ``phone`` or ``health``."""

    def __init__(self, message: str, kind: str = "", *, markdown: bool = True):
        super().__init__(message, markdown=markdown)
        self.kind = kind


class Ambiguous(AccompanimentError):
    def __init__(self, message: str, candidates: list["ProjectRef"]):
        super().__init__(message)
        self.candidates = candidates


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts: a member of the network (user id, partner slug, role)."""

    user_id: str
    partner: str
    role: str = "advisor"

    @property
    def sees_all(self) -> bool:
        return role_allows(self.role, "coordinator")


@dataclass(frozen=True)
class NewProject:
    label: str
    department: str
    nature: str = "creation"
    legal_form: str = "nsp"
    collective: bool = False
    esus: str = "non"


@dataclass(frozen=True)
class ProjectChanges:
    """Fields to change; None leaves a field as it is."""

    label: str | None = None
    department: str | None = None
    nature: str | None = None
    legal_form: str | None = None
    collective: bool | None = None
    esus: str | None = None


@dataclass(frozen=True)
class Profile:
    """The holder's profile, bands only. None means "not recorded" (None in changes: unchanged)."""

    gender: str | None = None
    age_band: str | None = None
    employment_status: str | None = None
    minima: str | None = None
    qpv: str | None = None
    frr: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


PROFILE_LISTS: dict[str, ChoiceList] = {"gender": GENDERS, "age_band": AGE_BANDS,
                                        "employment_status": EMPLOYMENT_STATUSES, "minima": MINIMA,
                                        "qpv": QPV, "frr": FRR}


@dataclass(frozen=True)
class NewAccompaniment:
    project: str                    # code (or label: resolved like find_project)
    date: date
    phase: str
    duration_minutes: int
    modality: str = "individuel"
    themes: tuple[str, ...] = ()
    note: str | None = None
    source_event_id: str | None = None


@dataclass(frozen=True)
class AccompanimentChanges:
    """Fields to change; None leaves a field as it is. ``note=""`` or ``themes=()`` clears."""

    project: str | None = None
    date: date | None = None
    phase: str | None = None
    modality: str | None = None
    duration_minutes: int | None = None
    themes: tuple[str, ...] | None = None
    note: str | None = None


@dataclass(frozen=True)
class NewOutcome:
    """An outcome to record. None leaves a field as the previous outcome had it (the date: today when
    there was none; the legal form of a creation: the project's envisaged one when known)."""

    outcome: str                    # creation | abandon | reorientation | report
    date: date | None = None
    legal_form: str | None = None
    jobs_fte: Decimal | None = None


# -- outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectRef:
    code: str
    label: str
    partner: str


@dataclass(frozen=True)
class OutcomeView:
    outcome: str
    date: date
    legal_form: str | None
    jobs_fte: Decimal | None
    partner: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class ProjectView:
    id: int
    code: str
    label: str
    partner: str
    department: str
    nature: str
    legal_form: str
    collective: bool
    esus: str
    created_at: datetime
    created_by: str
    profile: Profile
    outcome: OutcomeView | None = None

    @property
    def ref(self) -> ProjectRef:
        return ProjectRef(self.code, self.label, self.partner)


@dataclass(frozen=True)
class ProjectSummary:
    code: str
    label: str
    partner: str
    department: str
    nature: str
    sessions: int
    minutes: int
    last_date: date | None
    outcome: str | None


@dataclass(frozen=True)
class AccompanimentView:
    id: int
    project_code: str
    project_label: str
    project_partner: str   # the partner holding the project (may differ from the record's partner)
    advisor: str
    partner: str
    date: date
    phase: str
    modality: str
    duration_minutes: int
    themes: tuple[str, ...]
    note: str | None
    cancelled: bool
    cancelled_at: datetime | None
    cancelled_by: str | None
    created_at: datetime
    source_event_id: str | None


@dataclass(frozen=True)
class ReferralView:
    id: int
    project_code: str
    project_label: str
    project_partner: str
    from_partner: str
    to_partner: str
    date: date
    note: str | None
    status: str
    created_by: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class PartnerTotal:
    partner: str
    sessions: int
    minutes: int


@dataclass(frozen=True)
class ProjectHistory:
    project: ProjectView
    accompaniments: list[AccompanimentView]   # oldest first; the latest ``limit`` only when limited
    referrals: list[ReferralView]
    totals: list[PartnerTotal]                # per partner (SQL)
    sessions: int = 0                         # every live record of the project (SQL)
    minutes: int = 0
    last_date: date | None = None

    @property
    def older(self) -> int:
        """Live records left out of ``accompaniments`` by the limit."""
        return self.sessions - len(self.accompaniments)


@dataclass(frozen=True)
class RecordList:
    """Some records with their count and total duration (computed in SQL)."""

    records: list[AccompanimentView]
    minutes: int


@dataclass(frozen=True)
class Change:
    """One changed field, for the echo: (field name, before, after) as stored keys/values."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class OutcomeResult:
    """What ``record_outcome`` did: the outcome now, the one it replaced, the project, the changed
    fields (``outcome``, ``date``, ``legal_form``, ``jobs_fte``), the fields kept from the previous
    outcome because they were not given, and whether the legal form came from the project."""

    outcome: OutcomeView
    previous: OutcomeView | None
    project: ProjectView
    changes: list[Change]
    kept: tuple[str, ...] = ()
    form_from_project: bool = False


def _quote(value: str) -> str:
    """A typed value named in a message (plain text, like every message of this module): « valeur »."""
    return f"« {value} »"


def _count(n: int) -> str:
    """``1234`` → ``1 234`` (a narrow no-break space between thousands)."""
    return f"{n:,}".replace(",", "\u202f")


# -- the service -------------------------------------------------------------------------------


class AccompanimentService:
    """Projects, accompaniments, referrals and outcomes. One instance per bot, stateless."""

    def __init__(self, config: Config, clock: Clock, rng: Random | None = None):
        self.config = config
        self.clock = clock
        self.rng = rng  # None: secrets (tests may pass a seeded Random)

    # -- helpers -----------------------------------------------------------------------------
    def partner_name(self, slug: str) -> str:
        p = self.config.partner(slug)
        return p.name if p else slug

    def _visible(self, actor: Actor) -> ColumnElement[bool]:
        """SQL: the projects ``actor`` may see."""
        if actor.sees_all:
            return true()
        return self._seen_by_partner(actor.partner)

    @staticmethod
    def _seen_by_partner(partner: str) -> ColumnElement[bool]:
        """SQL: the projects ``partner`` holds or accepted by referral (whatever its members' roles)."""
        accepted = exists().where(Referral.project_id == Project.id, Referral.to_partner == partner,
                                  Referral.status == "acceptee")
        return or_(Project.partner == partner, accepted)

    async def partner_sees(self, session: AsyncSession, partner: str, code: str) -> bool:
        """Whether ``partner`` holds the project ``code`` or accepted it by referral: where its details
        (label, profile, notes, history) may be shown — in that partner's room, say."""
        return await session.scalar(select(Project.id).where(Project.code == code,
                                                             self._seen_by_partner(partner))) is not None

    def _check_holder(self, actor: Actor, project: Project, what: str) -> None:
        """Only the holding partner's members and coordinators change a project."""
        if actor.sees_all or project.partner == actor.partner:
            return
        raise Forbidden(f"Le projet {project.code} est porté par {self.partner_name(project.partner)} : seuls ses "
                        f"membres et les coordinateur·rice·s du réseau peuvent modifier {what}. Votre structure peut y "
                        "enregistrer des suivis ; pour une correction, adressez-vous à la structure qui le porte.")

    @staticmethod
    def _check_key(clist: ChoiceList, value: str | None, *, optional: bool = False) -> None:
        if value is None and optional:
            return
        if value not in clist.keys():
            raise Invalid(f"Valeur inconnue pour {clist.name} : {_quote(str(value))}. "
                          f"Valeurs possibles : {', '.join(clist.labels())}.")

    def _check_label(self, label: str) -> str:
        label = clean_text(label)
        if not label:
            raise Invalid("Le nom du projet est vide.")
        if len(label) > LABEL_MAX or len(fold(label)) > 80:
            raise Invalid(f"Nom de projet trop long ({len(label)} caractères, {LABEL_MAX} au plus) : "
                          f"{_quote(label)}. Un nom court suffit, par exemple « Café culturel Pixel ».")
        if parse_project_code(label) is not None:
            raise Invalid(f"{_quote(label)} ressemble à un code de projet : choisissez un nom parlant.")
        try:
            check_personal_data(label, "le nom du projet")
        except PersonalDataError as exc:
            raise PersonalDataRefused(exc.message, exc.kind) from None
        return label

    def _check_note(self, note: str | None, what: str = "la note") -> str | None:
        if note is None:
            return None
        try:
            return check_note(note, what, NOTE_MAX) or None
        except PersonalDataError as exc:
            raise PersonalDataRefused(exc.message, exc.kind) from None
        except ParseError as exc:
            raise Invalid(exc.message, markdown=True) from None

    def _check_date(self, d: date) -> None:
        today = self.clock.today()
        if d > today:
            raise Invalid(f"La date du {date_fr(d)} est dans le futur : on n'enregistre que ce qui a déjà eu lieu.")
        oldest = retention_start(today)
        if d < oldest:
            raise Invalid(f"La date du {date_fr(d)} a plus de {RETENTION_YEARS} ans : les bilans portent sur la "
                          f"convention en cours et, pour le RGPD, les suivis ne sont gardés qu'environ "
                          f"{RETENTION_YEARS} ans (rien avant le {date_fr(oldest, weekday=False)}). Gardez-le dans les "
                          "dossiers de votre structure ; s'il doit compter dans un bilan, voyez-le avec la coordination.")

    @staticmethod
    def _check_duration(minutes: int) -> None:
        if not 1 <= minutes <= DURATION_MAX:
            raise Invalid(f"Durée impossible : {minutes} minutes (entre 1 minute et 12 heures).")

    def _check_partner(self, slug: str) -> None:
        if self.config.partner(slug) is None:
            raise Invalid(f"Partenaire inconnu : {_quote(slug)}.")

    # -- projects ----------------------------------------------------------------------------
    async def create_project(self, session: AsyncSession, actor: Actor, new: NewProject) -> ProjectView:
        label = self._check_label(new.label)
        self._check_key(DEPARTMENT_LIST, new.department)
        self._check_key(NATURES, new.nature)
        self._check_key(LEGAL_FORMS, new.legal_form)
        self._check_key(ESUS, new.esus)
        self._check_partner(actor.partner)
        key = fold(label)
        same = await session.scalar(select(Project.code).where(Project.partner == actor.partner,
                                                               Project.label_key == key).limit(1))
        if same is not None:
            # the label is not repeated: the message may be read in a room shared between structures
            raise Conflict(f"Votre structure suit déjà un projet de ce nom ({same}). Choisissez un autre nom, "
                           "ou utilisez ce code.")
        code = await self._unique_code(session)
        now = self.clock.now()
        row = Project(code=code, label=label, label_key=key, partner=actor.partner, department=new.department,
                      nature=new.nature, legal_form=new.legal_form, collective=bool(new.collective),
                      esus=new.esus, created_at=now, created_by=actor.user_id)
        session.add(row)
        await session.flush()
        return self._project_view(row, None)

    async def _unique_code(self, session: AsyncSession) -> str:
        for _ in range(50):
            code = new_project_code(self.rng)
            if await session.scalar(select(Project.id).where(Project.code == code)) is None:
                return code
        raise Conflict("Impossible de trouver un code de projet libre ; réessayez.")  # pragma: no cover

    @staticmethod
    def _check_ref(ref: str) -> str:
        """A project reference, cleaned, within REF_MAX_WORDS words and REF_MAX_CHARS characters."""
        ref = clean_text(ref)
        words = len(ref.split())
        if words > REF_MAX_WORDS or len(ref) > REF_MAX_CHARS:
            size = join_fr([f"{_count(words)} mots" if words > REF_MAX_WORDS else "",
                            f"{_count(len(ref))} caractères" if len(ref) > REF_MAX_CHARS else ""])
            raise Invalid(f"Référence de projet trop longue ({size} ; au plus {REF_MAX_WORDS} mots et "
                          f"{REF_MAX_CHARS} caractères) : désignez le projet par son code, par exemple P-7K3Q, "
                          "ou par quelques mots de son nom, par exemple « Pixel ».")
        return ref

    async def _project_row(self, session: AsyncSession, actor: Actor, ref: str) -> Project:
        """The visible project a code or a label names (NotFound / Ambiguous otherwise)."""
        ref = self._check_ref(ref)
        code = parse_project_code(ref)
        visible = self._visible(actor)
        if code is not None:
            row = await session.scalar(select(Project).where(Project.code == code, visible))
            if row is None:
                raise NotFound(f"Aucun projet {code} parmi ceux que vous pouvez consulter (le code est-il exact ? "
                               "Un projet d'une autre structure n'est visible qu'après une orientation acceptée).")
            return row
        key = fold(re.sub(r"\s+", " ", ref)).strip()
        if not key:
            raise NotFound("Projet non précisé.")
        rows = (await session.scalars(select(Project).where(visible, Project.label_key == key)
                                      .order_by(Project.id).limit(6))).all()
        if not rows:
            rows = (await session.scalars(select(Project).where(visible, Project.label_key.contains(key, autoescape=True))
                                          .order_by(Project.id).limit(6))).all()
        if not rows and " " in key:  # "café pixel" for "Café culturel Pixel": every word starts a word
            words = [or_(Project.label_key.startswith(w, autoescape=True),
                         Project.label_key.contains(" " + w, autoescape=True)) for w in key.split(" ")]
            rows = (await session.scalars(select(Project).where(visible, *words).order_by(Project.id).limit(6))).all()
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise NotFound(f"Aucun projet ne correspond à {_quote(ref)} parmi ceux que vous pouvez consulter.")
        refs = [ProjectRef(r.code, r.label, r.partner) for r in rows]
        names = ", ".join(f"{r.label} ({r.code})" for r in refs)
        raise Ambiguous(f"Plusieurs projets correspondent à {_quote(ref)} : {names}. Utilisez le code du projet.", refs)

    async def find_project(self, session: AsyncSession, actor: Actor, ref: str) -> ProjectView:
        """A visible project by code (``P-7K3Q``) or by an unambiguous part of its label (``Pixel``)."""
        row = await self._project_row(session, actor, ref)
        return self._project_view(row, await self._outcome_row(session, row.id))

    async def list_projects(self, session: AsyncSession, actor: Actor, limit: int = 20,
                            audience: str | None = None) -> list[ProjectSummary]:
        """Visible projects with their number of sessions, hours and last date, most recent first.
        ``audience``: only those this partner may also see (the list is shown in its room)."""
        live = and_(Accompaniment.project_id == Project.id, Accompaniment.cancelled.is_(False))
        sessions = func.count(Accompaniment.id)
        minutes = func.coalesce(func.sum(Accompaniment.duration_minutes), 0)
        last = func.max(Accompaniment.date)
        stmt = (select(Project.code, Project.label, Project.partner, Project.department, Project.nature,
                       sessions, minutes, last, ProjectOutcome.outcome)
                .select_from(Project).outerjoin(Accompaniment, live)
                .outerjoin(ProjectOutcome, ProjectOutcome.project_id == Project.id)
                .where(self._visible(actor), self._seen_by_partner(audience) if audience else true())
                .group_by(Project.id, Project.code, Project.label, Project.partner, Project.department,
                          Project.nature, ProjectOutcome.outcome)
                .order_by(case((last.is_(None), 1), else_=0), last.desc(), Project.id.desc())
                .limit(limit))
        rows = (await session.execute(stmt)).all()
        return [ProjectSummary(code=r[0], label=r[1], partner=r[2], department=r[3], nature=r[4],
                               sessions=int(r[5]), minutes=int(r[6]), last_date=r[7], outcome=r[8]) for r in rows]

    async def update_project(self, session: AsyncSession, actor: Actor, ref: str,
                             changes: ProjectChanges) -> tuple[ProjectView, list[Change]]:
        row = await self._project_row(session, actor, ref)
        self._check_holder(actor, row, "sa fiche")
        done: list[Change] = []
        if changes.label is not None:
            label = self._check_label(changes.label)
            key = fold(label)
            if key != row.label_key:
                same = await session.scalar(select(Project.code).where(Project.partner == row.partner,
                                                                       Project.label_key == key,
                                                                       Project.id != row.id).limit(1))
                if same is not None:
                    raise Conflict(f"Un autre projet de la structure porte déjà ce nom ({same}) : choisissez-en "
                                   "un autre.")
            if label != row.label:
                done.append(Change("label", row.label, label))
                row.label, row.label_key = label, key
        checks = (("department", DEPARTMENT_LIST), ("nature", NATURES), ("legal_form", LEGAL_FORMS), ("esus", ESUS))
        for name, clist in checks:
            value = getattr(changes, name)
            if value is None:
                continue
            self._check_key(clist, value)
            if value != getattr(row, name):
                done.append(Change(name, getattr(row, name), value))
                setattr(row, name, value)
        if changes.collective is not None and bool(changes.collective) != row.collective:
            done.append(Change("collective", row.collective, bool(changes.collective)))
            row.collective = bool(changes.collective)
        if done:
            row.updated_at, row.updated_by = self.clock.now(), actor.user_id
        return self._project_view(row, await self._outcome_row(session, row.id)), done

    async def set_profile(self, session: AsyncSession, actor: Actor, ref: str,
                          profile: Profile) -> tuple[ProjectView, list[Change]]:
        """Record the holder's profile bands given in ``profile`` (None fields are left unchanged)."""
        row = await self._project_row(session, actor, ref)
        self._check_holder(actor, row, "le profil du porteur")
        done: list[Change] = []
        for name, clist in PROFILE_LISTS.items():
            value = getattr(profile, name)
            if value is None:
                continue
            self._check_key(clist, value)
            if value != getattr(row, name):
                done.append(Change(name, getattr(row, name), value))
                setattr(row, name, value)
        if done:
            row.updated_at, row.updated_by = self.clock.now(), actor.user_id
        return self._project_view(row, await self._outcome_row(session, row.id)), done

    # -- accompaniments ----------------------------------------------------------------------
    async def log_accompaniment(self, session: AsyncSession, actor: Actor,
                                new: NewAccompaniment) -> AccompanimentView:
        project = await self._project_row(session, actor, new.project)
        await self._check_counts_for_partner(session, actor.partner, project)
        self._check_date(new.date)
        self._check_key(PHASES, new.phase)
        self._check_key(MODALITIES, new.modality)
        self._check_duration(new.duration_minutes)
        themes = self._check_themes(new.themes)
        note = self._check_note(new.note)
        self._check_partner(actor.partner)
        row = Accompaniment(project_id=project.id, advisor=actor.user_id, partner=actor.partner, date=new.date,
                            phase=new.phase, modality=new.modality, duration_minutes=new.duration_minutes,
                            note=note, source_event_id=new.source_event_id, cancelled=False,
                            created_at=self.clock.now())
        session.add(row)
        await session.flush()
        for theme in themes:
            session.add(AccompanimentTheme(accompaniment_id=row.id, theme=theme))
        return self._accompaniment_view(row, project, themes)

    async def _check_counts_for_partner(self, session: AsyncSession, partner: str, project: Project) -> None:
        """A record counts for its author's partner in the reports: refuse it on a project that partner
        neither holds nor accepted (a coordinator sees every project, but does not follow them all)."""
        if project.partner == partner or await self.partner_sees(session, partner, project.code):
            return
        raise Forbidden(f"Le projet {project.code} est porté par {self.partner_name(project.partner)} et n'a pas été "
                        f"orienté vers {self.partner_name(partner)} (ou l'orientation n'est pas acceptée) : ce suivi "
                        f"compterait pour {self.partner_name(partner)} dans les bilans. Demandez à un membre de la "
                        "structure qui le porte de l'enregistrer, ou faites d'abord orienter le projet vers la vôtre.")

    async def earlier_duplicate(self, session: AsyncSession, view: AccompanimentView) -> int | None:
        """The number of an earlier live record identical to ``view`` (same advisor, project, date,
        phase and duration), if any: probably the same session typed twice."""
        return await session.scalar(
            select(Accompaniment.id).join(Project, Project.id == Accompaniment.project_id)
            .where(Project.code == view.project_code, Accompaniment.advisor == view.advisor,
                   Accompaniment.date == view.date, Accompaniment.phase == view.phase,
                   Accompaniment.duration_minutes == view.duration_minutes, Accompaniment.cancelled.is_(False),
                   Accompaniment.id < view.id)
            .order_by(Accompaniment.id.desc()).limit(1))

    def _check_themes(self, themes: tuple[str, ...]) -> tuple[str, ...]:
        for theme in themes:
            self._check_key(THEMES, theme)
        return tuple(key for key in THEMES.keys() if key in themes)  # vocabulary order, no duplicates

    async def list_own(self, session: AsyncSession, actor: Actor, limit: int = 10,
                       audience: str | None = None) -> list[AccompanimentView]:
        """The actor's latest records (not cancelled), most recent date first."""
        return (await self.own_records(session, actor, limit, audience)).records

    async def own_records(self, session: AsyncSession, actor: Actor, limit: int = 10,
                          audience: str | None = None) -> RecordList:
        """The actor's latest records (not cancelled), most recent date first, and their total duration.
        ``audience``: only records on projects this partner may see (the list is shown in its room)."""
        where = and_(Accompaniment.advisor == actor.user_id, Accompaniment.cancelled.is_(False),
                     self._seen_by_partner(audience) if audience else true())
        latest = (select(Accompaniment.id).join(Project, Project.id == Accompaniment.project_id).where(where)
                  .order_by(Accompaniment.date.desc(), Accompaniment.id.desc()).limit(max(1, limit)))
        stmt = (select(Accompaniment, Project).join(Project, Project.id == Accompaniment.project_id)
                .where(Accompaniment.id.in_(latest.scalar_subquery()))
                .order_by(Accompaniment.date.desc(), Accompaniment.id.desc()))
        rows = (await session.execute(stmt)).all()
        picked = latest.subquery()
        minutes = await session.scalar(select(func.coalesce(func.sum(Accompaniment.duration_minutes), 0))
                                       .where(Accompaniment.id.in_(select(picked.c.id))))
        themes = await self._themes(session, [a.id for a, _ in rows])
        return RecordList(records=[self._accompaniment_view(a, p, themes.get(a.id, ())) for a, p in rows],
                          minutes=int(minutes or 0))

    async def get_accompaniment(self, session: AsyncSession, actor: Actor, record_id: int) -> AccompanimentView:
        row, project = await self._record(session, record_id)
        if not (row.advisor == actor.user_id or actor.sees_all or await self._is_visible(session, actor, project)):
            raise NotFound(f"Aucun suivi n°{record_id} parmi ceux que vous pouvez consulter.")
        return self._accompaniment_view(row, project, (await self._themes(session, [row.id])).get(row.id, ()))

    async def project_history(self, session: AsyncSession, actor: Actor, ref: str,
                              limit: int | None = None) -> ProjectHistory:
        """A visible project with its (live) records across all partners — the latest ``limit`` only when
        given, oldest first —, its referrals, and totals per partner and overall (in SQL)."""
        project = await self._project_row(session, actor, ref)
        live = and_(Accompaniment.project_id == project.id, Accompaniment.cancelled.is_(False))
        stmt = select(Accompaniment).where(live).order_by(Accompaniment.date.desc(), Accompaniment.id.desc())
        if limit is not None:
            stmt = stmt.limit(max(1, limit))
        rows = list(reversed((await session.scalars(stmt)).all()))
        themes = await self._themes(session, [a.id for a in rows])
        totals = (await session.execute(
            select(Accompaniment.partner, func.count(Accompaniment.id), func.sum(Accompaniment.duration_minutes))
            .where(live).group_by(Accompaniment.partner).order_by(Accompaniment.partner))).all()
        count, minutes, last = (await session.execute(
            select(func.count(Accompaniment.id), func.coalesce(func.sum(Accompaniment.duration_minutes), 0),
                   func.max(Accompaniment.date)).where(live))).one()
        referrals = (await session.scalars(select(Referral).where(Referral.project_id == project.id)
                                           .order_by(Referral.id))).all()
        return ProjectHistory(
            project=self._project_view(project, await self._outcome_row(session, project.id)),
            accompaniments=[self._accompaniment_view(a, project, themes.get(a.id, ())) for a in rows],
            referrals=[self._referral_view(r, project) for r in referrals],
            totals=[PartnerTotal(partner=p, sessions=int(n), minutes=int(m or 0)) for p, n, m in totals],
            sessions=int(count), minutes=int(minutes or 0), last_date=last)

    async def update_accompaniment(self, session: AsyncSession, actor: Actor, record_id: int,
                                   changes: AccompanimentChanges) -> tuple[AccompanimentView, list[Change]]:
        row, project = await self._record_for_change(session, actor, record_id, "modifier")
        done: list[Change] = []
        if changes.project is not None:
            target = await self._project_row(session, actor, changes.project)
            if target.id != project.id:
                await self._check_counts_for_partner(session, row.partner, target)
                done.append(Change("project", project.code, target.code))
                row.project_id, project = target.id, target
        if changes.date is not None:
            self._check_date(changes.date)
        if changes.phase is not None:
            self._check_key(PHASES, changes.phase)
        if changes.modality is not None:
            self._check_key(MODALITIES, changes.modality)
        if changes.duration_minutes is not None:
            self._check_duration(changes.duration_minutes)
        for name, attr in (("date", "date"), ("phase", "phase"), ("modality", "modality"),
                           ("duration_minutes", "duration_minutes")):
            value = getattr(changes, name)
            if value is not None and value != getattr(row, attr):
                done.append(Change(name, getattr(row, attr), value))
                setattr(row, attr, value)
        if changes.note is not None:
            note = self._check_note(changes.note) if changes.note else None
            if note != row.note:
                done.append(Change("note", row.note, note))
                row.note = note
        current = (await self._themes(session, [row.id])).get(row.id, ())
        themes = current
        if changes.themes is not None:
            themes = self._check_themes(changes.themes)
            if set(themes) != set(current):
                done.append(Change("themes", current, themes))
                for old in (await session.scalars(select(AccompanimentTheme)
                                                  .where(AccompanimentTheme.accompaniment_id == row.id))).all():
                    await session.delete(old)
                await session.flush()
                for theme in themes:
                    session.add(AccompanimentTheme(accompaniment_id=row.id, theme=theme))
        if done:
            row.updated_at, row.updated_by = self.clock.now(), actor.user_id
        return self._accompaniment_view(row, project, themes), done

    async def cancel_accompaniment(self, session: AsyncSession, actor: Actor, record_id: int) -> AccompanimentView:
        row, project = await self._record_for_change(session, actor, record_id, "annuler")
        self._cancel(row, actor.user_id)
        return self._accompaniment_view(row, project, (await self._themes(session, [row.id])).get(row.id, ()))

    async def cancel_by_event(self, session: AsyncSession, event_id: str, by: str) -> AccompanimentView | None:
        """Cancel the live record created by the chat event ``event_id`` (its message was deleted)."""
        row = await session.scalar(select(Accompaniment).where(Accompaniment.source_event_id == event_id,
                                                               Accompaniment.cancelled.is_(False))
                                   .order_by(Accompaniment.id).limit(1))
        if row is None:
            return None
        project = await session.get(Project, row.project_id)
        self._cancel(row, by)
        return self._accompaniment_view(row, project, (await self._themes(session, [row.id])).get(row.id, ()))

    def _cancel(self, row: Accompaniment, by: str) -> None:
        row.cancelled, row.cancelled_at, row.cancelled_by = True, self.clock.now(), by

    async def _record(self, session: AsyncSession, record_id: int) -> tuple[Accompaniment, Project]:
        row = await session.get(Accompaniment, record_id) if 0 < record_id < 2**31 else None
        if row is None:
            raise NotFound(f"Aucun suivi n°{record_id}.")
        return row, await session.get(Project, row.project_id)

    async def _record_for_change(self, session: AsyncSession, actor: Actor, record_id: int,
                                 verb: str) -> tuple[Accompaniment, Project]:
        row, project = await self._record(session, record_id)
        if row.advisor != actor.user_id and not actor.sees_all:
            pronoun = "l'" if verb[:1] in "aeéiou" else "le "
            raise Forbidden(f"Le suivi n°{record_id} a été enregistré par quelqu'un d'autre : seul·e son auteur·rice "
                            f"ou un·e coordinateur·rice peut {pronoun}{verb}.")
        if row.cancelled:
            raise Conflict(f"Le suivi n°{record_id} est déjà annulé.")
        return row, project

    async def _is_visible(self, session: AsyncSession, actor: Actor, project: Project) -> bool:
        return await session.scalar(select(Project.id).where(Project.id == project.id, self._visible(actor))) is not None

    async def _themes(self, session: AsyncSession, ids: list[int]) -> dict[int, tuple[str, ...]]:
        if not ids:
            return {}
        order = {key: i for i, key in enumerate(THEMES.keys())}
        rows = (await session.execute(select(AccompanimentTheme.accompaniment_id, AccompanimentTheme.theme)
                                      .where(AccompanimentTheme.accompaniment_id.in_(ids)))).all()
        out: dict[int, list[str]] = {}
        for aid, theme in rows:
            out.setdefault(aid, []).append(theme)
        return {aid: tuple(sorted(ts, key=lambda t: order.get(t, 99))) for aid, ts in out.items()}

    # -- referrals ---------------------------------------------------------------------------
    async def refer(self, session: AsyncSession, actor: Actor, ref: str, to_partner: str,
                    note: str | None = None) -> ReferralView:
        """Propose a project to another partner (who accepts or refuses). Only the holding partner's
        members and the coordination may: a partner the project was referred to sees it, but passing it
        on to a third partner — who would then see its whole history — is the holder's decision."""
        project = await self._project_row(session, actor, ref)
        if not (actor.sees_all or project.partner == actor.partner):
            holder = self.partner_name(project.partner)
            raise Forbidden(f"Le projet {project.code} est porté par {holder} : seule cette structure (ou la "
                            "coordination du réseau) peut l'orienter vers une autre structure, qui verrait alors "
                            f"tout son historique. Si une orientation vous semble utile, proposez-la à {holder}.")
        self._check_partner(to_partner)
        if to_partner == project.partner:
            raise Invalid(f"Le projet {project.code} est déjà porté par {self.partner_name(to_partner)}.")
        if to_partner == actor.partner:
            raise Invalid("On ne peut pas orienter un projet vers sa propre structure.")
        note = self._check_note(note, "le motif")
        existing = await session.scalar(select(Referral).where(Referral.project_id == project.id,
                                                               Referral.to_partner == to_partner,
                                                               Referral.status.in_(("proposee", "acceptee"))))
        if existing is not None:
            name = self.partner_name(to_partner)
            if existing.status == "proposee":
                raise Conflict(f"Le projet {project.code} a déjà été proposé à {name} (le "
                               f"{date_fr(existing.date, weekday=False)}) : sa réponse est en attente.")
            raise Conflict(f"Le projet {project.code} a déjà été orienté vers {name}, qui l'a accepté (proposé le "
                           f"{date_fr(existing.date, weekday=False)}).")
        row = Referral(project_id=project.id, from_partner=actor.partner, to_partner=to_partner,
                       date=self.clock.today(), note=note, status="proposee", created_by=actor.user_id,
                       created_at=self.clock.now())
        session.add(row)
        await session.flush()
        return self._referral_view(row, project)

    async def decide_referral(self, session: AsyncSession, actor: Actor, ref: str, accept: bool,
                              reason: str | None = None) -> ReferralView:
        """The receiving partner accepts (the project becomes visible to it) or refuses a referral."""
        row, project = await self._pending_referral(session, actor, ref)
        reason = self._check_note(reason, "la raison")
        row.status = "acceptee" if accept else "refusee"
        row.decided_by, row.decided_at = actor.user_id, self.clock.now()
        row.reason = None if accept else reason
        return self._referral_view(row, project)

    async def _pending_referral(self, session: AsyncSession, actor: Actor, ref: str) -> tuple[Referral, Project]:
        ref = self._check_ref(ref)
        pending = and_(Referral.project_id == Project.id, Referral.to_partner == actor.partner,
                       Referral.status == "proposee")
        code = parse_project_code(ref)
        if code is not None:
            cond = Project.code == code
        else:
            key = fold(re.sub(r"\s+", " ", ref)).strip()
            cond = Project.label_key.contains(key, autoescape=True) if key else Project.id.is_(None)
        rows = (await session.execute(select(Referral, Project).join(Project, pending).where(cond)
                                      .order_by(Referral.id).limit(6))).all()
        if not rows:
            raise NotFound(f"Aucune orientation en attente vers {self.partner_name(actor.partner)} pour "
                           f"{_quote(ref)}.")
        if len(rows) > 1:
            refs = [ProjectRef(p.code, p.label, p.partner) for _, p in rows]
            names = ", ".join(f"{r.label} ({r.code})" for r in refs)
            raise Ambiguous(f"Plusieurs orientations en attente correspondent à {_quote(ref)} : {names}. "
                            "Utilisez le code du projet.", refs)
        return rows[0][0], rows[0][1]

    async def pending_referrals(self, session: AsyncSession, actor: Actor) -> list[ReferralView]:
        """Referrals waiting for the actor's partner to decide."""
        rows = (await session.execute(select(Referral, Project).join(Project, Project.id == Referral.project_id)
                                      .where(Referral.to_partner == actor.partner, Referral.status == "proposee")
                                      .order_by(Referral.id))).all()
        return [self._referral_view(r, p) for r, p in rows]

    # -- outcomes ----------------------------------------------------------------------------
    async def record_outcome(self, session: AsyncSession, actor: Actor, ref: str, new: NewOutcome) -> OutcomeResult:
        """Record how a visible project ended up (holding partner or coordinators only). Recording again
        replaces the outcome, keeping the previous values of the fields not given — the legal form and
        the jobs only while the outcome is a creation."""
        project = await self._project_row(session, actor, ref)
        self._check_holder(actor, project, "son issue")
        self._check_key(OUTCOMES, new.outcome)
        self._check_key(LEGAL_FORMS, new.legal_form, optional=True)
        if new.date is not None:
            self._check_date(new.date)
        if new.jobs_fte is not None and not (Decimal(0) <= new.jobs_fte < Decimal(1000)):
            raise Invalid(f"Nombre d'emplois impossible : {new.jobs_fte}.")
        if new.outcome != "creation" and new.jobs_fte:
            raise Invalid("Des emplois créés ne s'enregistrent qu'avec l'issue « création ».")
        if new.outcome != "creation" and new.legal_form is not None:
            raise Invalid(f"Une forme juridique ({LEGAL_FORMS.label(new.legal_form)}) ne s'enregistre qu'avec l'issue "
                          "« création » : pour changer la forme envisagée du projet, modifiez sa fiche.")
        row = await self._outcome_row(session, project.id)
        previous = self._outcome_view(row) if row is not None else None
        kept: list[str] = []
        form_from_project = False
        when, legal_form, jobs = new.date, new.legal_form, new.jobs_fte
        if when is None:  # the same outcome again keeps its date; a new outcome happens today
            if previous is not None and previous.outcome == new.outcome:
                when = previous.date
                kept.append("date")
            else:
                when = self.clock.today()
        if new.outcome != "creation":  # the legal form and the jobs describe a creation only
            legal_form = jobs = None
        elif legal_form is None:
            if previous is not None and previous.legal_form is not None:
                legal_form = previous.legal_form
                kept.append("legal_form")
            elif project.legal_form != "nsp":
                legal_form, form_from_project = project.legal_form, True
        if new.outcome == "creation" and jobs is None and previous is not None and previous.jobs_fte is not None:
            jobs = previous.jobs_fte
            kept.append("jobs_fte")
        if row is None:
            row = ProjectOutcome(project_id=project.id)
            session.add(row)
        before = {"outcome": row.outcome, "date": row.date, "legal_form": row.legal_form,
                  "jobs_fte": previous.jobs_fte if previous is not None else None}
        row.outcome, row.date, row.legal_form = new.outcome, when, legal_form
        row.jobs_fte = jobs
        row.partner, row.recorded_by, row.recorded_at = actor.partner, actor.user_id, self.clock.now()
        await session.flush()
        after = {"outcome": new.outcome, "date": when, "legal_form": legal_form, "jobs_fte": jobs}
        changes = [Change(name, before[name], after[name]) for name in ("outcome", "date", "legal_form", "jobs_fte")
                   if previous is not None and before[name] != after[name]]
        return OutcomeResult(outcome=self._outcome_view(row), previous=previous,
                             project=self._project_view(project, row), changes=changes, kept=tuple(kept),
                             form_from_project=form_from_project)

    async def _outcome_row(self, session: AsyncSession, project_id: int) -> ProjectOutcome | None:
        return await session.scalar(select(ProjectOutcome).where(ProjectOutcome.project_id == project_id))

    # -- views -------------------------------------------------------------------------------
    @staticmethod
    def _outcome_view(row: ProjectOutcome) -> OutcomeView:
        fte = Decimal(row.jobs_fte).quantize(Decimal("0.01")) if row.jobs_fte is not None else None
        return OutcomeView(outcome=row.outcome, date=row.date, legal_form=row.legal_form, jobs_fte=fte,
                           partner=row.partner, recorded_by=row.recorded_by, recorded_at=row.recorded_at)

    def _project_view(self, row: Project, outcome: ProjectOutcome | None) -> ProjectView:
        profile = Profile(**{name: getattr(row, name) for name in PROFILE_LISTS})
        return ProjectView(id=row.id, code=row.code, label=row.label, partner=row.partner,
                           department=row.department, nature=row.nature, legal_form=row.legal_form,
                           collective=bool(row.collective), esus=row.esus, created_at=row.created_at,
                           created_by=row.created_by, profile=profile,
                           outcome=self._outcome_view(outcome) if outcome is not None else None)

    @staticmethod
    def _accompaniment_view(row: Accompaniment, project: Project, themes: tuple[str, ...]) -> AccompanimentView:
        return AccompanimentView(id=row.id, project_code=project.code, project_label=project.label,
                                 project_partner=project.partner, advisor=row.advisor, partner=row.partner, date=row.date, phase=row.phase,
                                 modality=row.modality, duration_minutes=row.duration_minutes, themes=tuple(themes),
                                 note=row.note, cancelled=bool(row.cancelled), cancelled_at=row.cancelled_at,
                                 cancelled_by=row.cancelled_by, created_at=row.created_at,
                                 source_event_id=row.source_event_id)

    @staticmethod
    def _referral_view(row: Referral, project: Project) -> ReferralView:
        return ReferralView(id=row.id, project_code=project.code, project_label=project.label,
                            project_partner=project.partner, from_partner=row.from_partner,
                            to_partner=row.to_partner, date=row.date, note=row.note, status=row.status,
                            created_by=row.created_by, decided_by=row.decided_by, decided_at=row.decided_at,
                            reason=row.reason)

"""Activity reports for funders: every figure is aggregated by the database (GROUP BY), never by a
Python loop over records, and only counts leave this module — no project label, no holder detail.

What counts:

- accompaniments: live records (cancelled ones never count) dated within the period, by the
  partner that logged them (``Accompaniment.partner``);
- projects accompanied: distinct projects of those records; *new* projects: those whose first live
  record (within the same scope: the whole network, or the partner) falls within the period;
- holder profile: over the projects accompanied in the period (shares of women, job seekers…);
- outcomes: outcomes dated within the period, recorded by the partner in scope;
- referrals: referrals proposed within the period, from or to the partner in scope.

Works the same on SQLite and PostgreSQL: months are bucketed by the database with ``month_key``
(``substr`` of the ISO date text on SQLite, ``to_char`` on PostgreSQL). Two statements read the
accompaniments (the activity cube, the projects); four small ones read outcomes and referrals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (Integer, String, case, distinct, exists, false, func, literal_column, null, or_, select,
                        union_all)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ess_bot.clock import Clock
from ess_bot.config import Config, role_allows
from ess_bot.services.periods import Period
from ess_bot.storage.accompaniments import Accompaniment, Project, ProjectOutcome, Referral
from ess_bot.vocabulary import (AGE_BANDS, EMPLOYMENT_STATUSES, FRR, GENDERS, MINIMA, MODALITIES, OUTCOMES,
                                PHASES, QPV, ChoiceList)

JOB_SEEKERS = ("de_indemnise", "de_non_indemnise", "de_longue_duree")
MINIMA_RECIPIENTS = ("rsa", "ass")
PROFILE_DIMENSIONS: tuple[tuple[str, ChoiceList], ...] = (
    ("gender", GENDERS), ("age_band", AGE_BANDS), ("employment_status", EMPLOYMENT_STATUSES),
    ("minima", MINIMA), ("qpv", QPV), ("frr", FRR))
_CENT = Decimal("0.01")


class ReportForbidden(Exception):
    """The actor may not see the figures asked for. ``message`` is French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """Accompaniment figures of one group. ``projects`` (distinct projects) is None where it is not
    computed (by modality, by month)."""

    accompaniments: int
    projects: int | None
    minutes: int

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Totals:
    accompaniments: int
    projects: int
    minutes: int
    new_projects: int

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def activity(self) -> Activity:
        return Activity(self.accompaniments, self.projects, self.minutes)


@dataclass(frozen=True)
class ProfileShares:
    """Holders of the projects accompanied in the period (counts; ``share`` gives percentages)."""

    projects: int                 # the denominator
    women: int
    job_seekers: int              # all job seekers (indemnisés or not, long-term included)
    long_term_job_seekers: int
    minima: int                   # RSA or ASS
    qpv: int
    frr: int
    under_26: int
    age_26_49: int
    over_50: int
    unknown_profile: int          # no profile recorded at all

    def share(self, count: int) -> Decimal:
        if not self.projects:
            return Decimal(0)
        return (Decimal(100) * count / self.projects).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class OutcomeTotals:
    creations: int
    jobs_fte: Decimal
    abandons: int
    reorientations: int
    postponed: int


@dataclass(frozen=True)
class OutcomeCount:
    projects: int
    jobs_fte: Decimal


@dataclass(frozen=True)
class ReferralCount:
    proposed: int
    accepted: int
    refused: int
    pending: int


@dataclass(frozen=True)
class ReferralTotals(ReferralCount):
    sent: int = 0        # from the partner in scope (partner reports only)
    received: int = 0    # to the partner in scope (partner reports only)


@dataclass(frozen=True)
class Report:
    """Everything a report shows. Groups are stored keys (partner slugs, closed-list keys, "YYYY-MM");
    ``names`` gives the partners' names. Lists are in a stable display order."""

    period: Period
    partner: str | None                       # None: the whole network
    generated_at: datetime
    names: dict[str, str]                     # partner slug → name
    totals: Totals
    by_partner: list[tuple[str, Activity]]
    by_phase: list[tuple[str, Activity]]
    by_modality: list[tuple[str, Activity]]
    by_department: list[tuple[str, Activity]]
    by_month: list[tuple[str, Activity]]      # every month of the period, "2026-07"
    minutes_by_partner_month: list[tuple[tuple[str, str], int]]   # ((slug, "2026-07"), minutes), non-zero only
    profile: ProfileShares
    profile_counts: dict[str, list[tuple[str | None, int]]]        # dimension → (key or None, projects)
    outcomes: OutcomeTotals
    by_outcome: list[tuple[str, OutcomeCount]]
    creations_by_legal_form: list[tuple[str | None, OutcomeCount]]
    referrals: ReferralTotals
    referrals_by_route: list[tuple[tuple[str, str], ReferralCount]]

    @property
    def scope_name(self) -> str:
        return "tout le réseau" if self.partner is None else self.names.get(self.partner, self.partner)

    def partner_name(self, slug: str) -> str:
        return self.names.get(slug, slug)

    @property
    def chart(self) -> "HoursChart":
        return HoursChart.from_report(self)


@dataclass(frozen=True)
class HoursChart:
    """What the chart draws: minutes by partner (series, in display order) for every month."""

    period: Period
    scope_name: str
    months: list[str]                                   # "2026-07"
    series: list[tuple[str, list[int]]]                 # (partner name, minutes per month)

    @classmethod
    def from_report(cls, report: "Report") -> "HoursChart":
        cells = dict(report.minutes_by_partner_month)
        months = [m for m, _ in report.by_month]
        series = [(report.partner_name(slug), [cells.get((slug, m), 0) for m in months])
                  for slug, a in report.by_partner if a.minutes]
        return cls(report.period, report.scope_name, months, series)


@dataclass
class ActivityCube:
    """(accompaniments, minutes) by group, as the database returned them."""

    partner: dict[str, tuple[int, int]] = field(default_factory=dict)
    phase: dict[str, tuple[int, int]] = field(default_factory=dict)
    modality: dict[str, tuple[int, int]] = field(default_factory=dict)
    month: dict[str, tuple[int, int]] = field(default_factory=dict)
    partner_month: dict[tuple[str, str], int] = field(default_factory=dict)
    total: tuple[int, int] = (0, 0)


@dataclass
class ProjectFigures:
    activity: dict[str, dict[str | None, Activity]] = field(default_factory=dict)  # total/partner/department
    phase: dict[str, int] = field(default_factory=dict)                            # phase → projects
    profile: dict[str, dict[str | None, int]] = field(default_factory=dict)        # dimension → value → projects
    counts: dict[str, int] = field(default_factory=dict)                           # new, job_seekers…


# -- SQL helpers -------------------------------------------------------------------------------


class month_key(FunctionElement):  # noqa: N801 - reads like a SQL function
    """``YYYY-MM`` of a date column, computed by the database (to group by month on both backends)."""

    type = String()
    inherit_cache = True
    name = "month_key"


@compiles(month_key, "sqlite")
def _month_key_sqlite(element, compiler, **kw):  # dates are stored as 'YYYY-MM-DD' text
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


@compiles(month_key, "postgresql")
def _month_key_postgresql(element, compiler, **kw):
    return f"to_char(CAST({compiler.process(element.clauses, **kw)} AS TIMESTAMP), 'YYYY-MM')"


@compiles(month_key)
def _month_key_default(element, compiler, **kw):
    arg = compiler.process(element.clauses, **kw)
    return (f"(CAST(EXTRACT(YEAR FROM {arg}) AS VARCHAR(4)) || '-' || "
            f"LPAD(CAST(EXTRACT(MONTH FROM {arg}) AS VARCHAR(2)), 2, '0'))")


def _kind(name: str) -> ColumnElement:
    """A constant label column (inlined, not a bound parameter: PostgreSQL groups without it)."""
    return literal_column(f"'{name}'", String)


def _none() -> ColumnElement:
    return null()


_ONE, _ZERO = literal_column("1", Integer), literal_column("0", Integer)


# -- the service -------------------------------------------------------------------------------


def _int(value: Any) -> int:
    return int(value or 0)


def _fte(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(_CENT)


class ReportService:
    """Builds :class:`Report` objects. One instance per bot, stateless."""

    def __init__(self, config: Config, clock: Clock):
        self.config = config
        self.clock = clock

    # -- who sees what -------------------------------------------------------------------------
    def scope(self, role: str, own_partner: str, requested: str | None) -> str | None:
        """The partner whose figures an actor gets: advisors their own partner only; coordinators and
        admins every partner (None) or the one they ask for."""
        if requested is not None and self.config.partner(requested) is None:
            raise ReportForbidden(f"Partenaire inconnu : « {requested} ».")
        if role_allows(role, "coordinator"):
            return requested
        if requested is not None and requested != own_partner:
            own = self.config.partner(own_partner)
            asked = self.config.partner(requested)
            raise ReportForbidden(
                f"Les chiffres de {asked.name} sont réservés à cette structure et à la coordination du réseau : "
                f"vous pouvez consulter ceux de {own.name if own else own_partner}.")
        return own_partner

    # -- the report ----------------------------------------------------------------------------
    async def build(self, session: AsyncSession, period: Period, partner: str | None, *,
                    side: AsyncSession | None = None,
                    on_cube: "Callable[[ActivityCube], None] | None" = None) -> Report:
        """Every figure of the report: three statements over the accompaniments (the activity cube, the
        distinct projects per phase, the other project figures) and four small ones over outcomes and
        referrals.

        ``side``: a second session (another connection): the cube and the phases are computed there
        while the projects are computed on ``session`` — the database works on both at once.
        ``on_cube`` is called with the cube as soon as it is known (the chart can be drawn meanwhile,
        see :meth:`chart`).
        """
        async def cube_first() -> tuple[ActivityCube, dict[str, int]]:
            cube = await self.activity(side or session, period, partner)
            if on_cube is not None:
                on_cube(cube)
            return cube, await self.phase_projects(side or session, period, partner)

        if side is None:
            cube, phases = await cube_first()
            projects = await self._projects(session, period, partner)
        else:
            (cube, phases), projects = await asyncio.gather(cube_first(), self._projects(session, period, partner))
        projects.phase = phases
        outcomes, by_outcome, by_form = await self._outcomes(session, period, partner)
        referrals, routes = await self._referrals(session, period, partner)
        return self.assemble(period, partner, cube, projects, outcomes, by_outcome, by_form, referrals, routes)

    def _live(self, period: Period, partner: str | None) -> list[ColumnElement[bool]]:
        acc = Accompaniment
        live = [acc.cancelled == false(), acc.date >= period.start, acc.date <= period.end]
        if partner is not None:
            live.append(acc.partner == partner)
        return live

    async def activity(self, session: AsyncSession, period: Period, partner: str | None) -> "ActivityCube":
        """Accompaniments and minutes by partner, phase, modality, month and partner × month, and
        in total: one GROUP BY over the records (the cube), regrouped by the database in the same
        statement (UNION ALL of GROUP BYs over the cube)."""
        acc = Accompaniment
        month = month_key(acc.date)
        live = self._live(period, partner)
        if session.bind.dialect.name == "sqlite":
            # the months as a range too: SQLite then reads ix_accompaniments_month_cube from the first
            # month on, groups in its order (month first), and sorts nothing
            live += [month >= f"{period.start:%Y-%m}", month <= f"{period.end:%Y-%m}"]
        cube = (select(acc.partner.label("partner"), acc.phase.label("phase"), acc.modality.label("modality"),
                       month.label("month"), func.count().label("n"),
                       func.sum(acc.duration_minutes).label("m"))
                .where(*live)
                .group_by(month, acc.partner, acc.phase, acc.modality).cte("cube"))
        c = cube.c
        n, m = func.sum(c.n), func.sum(c.m)

        def branch(kind: str, key=None, key2=None):
            cols = [_kind(kind), key if key is not None else _none(), key2 if key2 is not None else _none(), n, m]
            stmt = select(*cols).select_from(cube)
            groups = [k for k in (key, key2) if k is not None]
            return stmt.group_by(*groups) if groups else stmt

        stmt = union_all(branch("partner", c.partner), branch("phase", c.phase), branch("modality", c.modality),
                         branch("month", c.month), branch("partner_month", c.partner, c.month), branch("total"))
        out = ActivityCube()
        for kind, key, key2, count, minutes in (await session.execute(stmt)).all():
            value = (_int(count), _int(minutes))
            if kind == "total":
                out.total = value
            elif kind == "partner_month":
                out.partner_month[(key, key2)] = value[1]
            else:
                getattr(out, kind)[key] = value
        return out

    async def phase_projects(self, session: AsyncSession, period: Period, partner: str | None) -> dict[str, int]:
        """Distinct projects accompanied in each phase: read phase by phase from
        ix_accompaniments_phase_projects (one flag per phase carried through :meth:`_projects` cost three
        times as much)."""
        acc = Accompaniment
        stmt = (select(acc.phase, func.count(distinct(acc.project_id))).where(*self._live(period, partner))
                .group_by(acc.phase))
        return {phase: _int(count) for phase, count in (await session.execute(stmt)).all()}

    async def _projects(self, session: AsyncSession, period: Period, partner: str | None) -> "ProjectFigures":
        """Distinct projects (in total, by partner and département), new projects and the holders'
        profile, in one statement built in three steps so that no step counts DISTINCT:

        - ``pp``: one row per (project, partner) with its records and minutes;
        - ``per_project``: one row per project (so ``count(*)`` counts projects);
        - ``profiles``: projects counted per (département, profile bands) — every profile breakdown
          and the département breakdown are GROUP BYs over these few rows.
        """
        acc, P = Accompaniment, Project
        pp = (select(acc.project_id.label("pid"), acc.partner.label("partner"), func.count().label("n"),
                     func.sum(acc.duration_minutes).label("m"))
              .where(*self._live(period, partner))
              .group_by(acc.project_id, acc.partner).cte("pp"))
        per_project = (select(pp.c.pid, func.sum(pp.c.n).label("n"), func.sum(pp.c.m).label("m"))
                       .group_by(pp.c.pid).cte("per_project"))
        band_columns = [getattr(P, name) for name, _ in PROFILE_DIMENSIONS]
        profiles = (select(P.department, *band_columns, func.count().label("k"),
                           func.sum(per_project.c.n).label("n"), func.sum(per_project.c.m).label("m"))
                    .select_from(per_project).join(P, P.id == per_project.c.pid)
                    .group_by(P.department, *band_columns).cte("profiles"))
        pr = profiles.c
        earlier = [acc.project_id == per_project.c.pid, acc.cancelled == false(), acc.date < period.start]
        if partner is not None:
            earlier.append(acc.partner == partner)
        nothing = [_none(), _none()]
        branches = [
            select(_kind("total"), _none(), func.count(), func.sum(per_project.c.n), func.sum(per_project.c.m)),
            select(_kind("partner"), pp.c.partner, func.count(), func.sum(pp.c.n), func.sum(pp.c.m))
            .group_by(pp.c.partner),
            select(_kind("department"), pr.department, func.sum(pr.k), func.sum(pr.n), func.sum(pr.m))
            .group_by(pr.department),
            select(_kind("new"), _none(), func.count(), *nothing).select_from(per_project)
            .where(~exists(select(acc.project_id).where(*earlier))),  # one column: read from the index alone
            select(_kind("job_seekers"), _none(), func.sum(pr.k), *nothing).where(pr.employment_status.in_(JOB_SEEKERS)),
            select(_kind("minima_recipients"), _none(), func.sum(pr.k), *nothing).where(pr.minima.in_(MINIMA_RECIPIENTS)),
            select(_kind("unknown_profile"), _none(), func.sum(pr.k), *nothing)
            .where(*(pr[name].is_(None) for name, _ in PROFILE_DIMENSIONS)),
            *(select(_kind("profile:" + name), pr[name], func.sum(pr.k), *nothing).group_by(pr[name])
              for name, _ in PROFILE_DIMENSIONS),
        ]
        out = ProjectFigures()
        for kind, key, count, n, m in (await session.execute(union_all(*branches))).all():
            if kind in ("total", "partner", "department"):
                out.activity.setdefault(kind, {})[key] = Activity(_int(n), _int(count), _int(m))
            elif kind.startswith("profile:"):
                out.profile.setdefault(kind[8:], {})[key] = _int(count)
            else:
                out.counts[kind] = _int(count)
        return out

    def chart(self, period: Period, partner: str | None, cube: "ActivityCube") -> HoursChart:
        """The chart's data from the activity cube alone (drawn while the rest of the report is built)."""
        slugs = self._slugs(partner, cube.partner)
        months = self._months(period, cube.month)
        series = [(self._name(s), [cube.partner_month.get((s, m), 0) for m in months])
                  for s in slugs if cube.partner.get(s, (0, 0))[1]]
        return HoursChart(period, self._name(partner) if partner else "tout le réseau", months, series)

    def _name(self, slug: str) -> str:
        p = self.config.partner(slug)
        return p.name if p else slug

    def _slugs(self, partner: str | None, found) -> list[str]:
        """Partners in configuration order (the one asked for only), then any partner no longer configured."""
        slugs = [p.slug for p in self.config.partners] if partner is None else [partner]
        return slugs + sorted(s for s in found if s not in slugs)

    @staticmethod
    def _months(period: Period, found) -> list[str]:
        months = [f"{y}-{mo:02d}" for y, mo in period.months()]
        return months + sorted(k for k in found if k not in months)

    def assemble(self, period: Period, partner: str | None, cube: "ActivityCube", projects: "ProjectFigures",
                 outcomes, by_outcome, by_form, referrals, routes) -> Report:
        """Put the database's figures in display order (no arithmetic on them here)."""
        zero = Activity(0, 0, 0)
        distinct_of = projects.activity

        def merged(counts: dict, seen: dict[str, int]) -> dict[str, Activity]:
            """Counts and minutes from the cube, distinct projects from the project figures."""
            return {k: Activity(n, seen.get(k, 0), m) for k, (n, m) in counts.items()}

        by_partner = merged(cube.partner, {k: a.projects for k, a in distinct_of.get("partner", {}).items()})
        by_phase = merged(cube.phase, projects.phase)
        by_modality = {k: Activity(n, None, m) for k, (n, m) in cube.modality.items()}
        by_month = {k: Activity(n, None, m) for k, (n, m) in cube.month.items()}
        slugs = self._slugs(partner, by_partner)
        order = {s: i for i, s in enumerate(slugs)}
        months = self._months(period, by_month)
        total = distinct_of.get("total", {}).get(None, zero)
        n, m = cube.total
        p = projects.profile
        gender, status, ages = p.get("gender", {}), p.get("employment_status", {}), p.get("age_band", {})
        profile = ProfileShares(
            projects=total.projects, women=gender.get("femme", 0), job_seekers=projects.counts.get("job_seekers", 0),
            long_term_job_seekers=status.get("de_longue_duree", 0),
            minima=projects.counts.get("minima_recipients", 0), qpv=p.get("qpv", {}).get("oui", 0),
            frr=p.get("frr", {}).get("oui", 0), under_26=ages.get("lt26", 0), age_26_49=ages.get("26_49", 0),
            over_50=ages.get("50plus", 0), unknown_profile=projects.counts.get("unknown_profile", 0))
        profile_counts: dict[str, list[tuple[str | None, int]]] = {}
        for name, clist in PROFILE_DIMENSIONS:
            found = p.get(name, {})
            keys = [*clist.keys(), *sorted(k for k in found if k is not None and k not in clist.keys()), None]
            profile_counts[name] = [(k, found.get(k, 0)) for k in keys]
        return Report(
            period=period, partner=partner, generated_at=self.clock.now(),
            names={q.slug: q.name for q in self.config.partners},
            totals=Totals(n, total.projects, m, projects.counts.get("new", 0)),
            by_partner=[(s, by_partner.get(s, zero)) for s in slugs],
            by_phase=_in_order(PHASES, by_phase, zero),
            by_modality=_in_order(MODALITIES, by_modality, Activity(0, None, 0)),
            by_department=sorted(distinct_of.get("department", {}).items()),
            by_month=[(k, by_month.get(k, Activity(0, None, 0))) for k in months],
            minutes_by_partner_month=sorted(cube.partner_month.items(),
                                            key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])),
            profile=profile, profile_counts=profile_counts,
            outcomes=outcomes, by_outcome=by_outcome, creations_by_legal_form=by_form,
            referrals=referrals, referrals_by_route=routes)

    async def _outcomes(self, session: AsyncSession, period: Period, partner: str | None):
        O = ProjectOutcome
        where = [O.date >= period.start, O.date <= period.end]
        if partner is not None:
            where.append(O.partner == partner)
        fte = func.coalesce(func.sum(O.jobs_fte), 0)
        rows = (await session.execute(select(O.outcome, func.count(), fte).where(*where)
                                      .group_by(O.outcome).order_by(O.outcome))).all()
        found = {k: OutcomeCount(_int(c), _fte(f)) for k, c, f in rows}
        zero = OutcomeCount(0, Decimal("0.00"))
        by_outcome = [(k, found.get(k, zero)) for k in OUTCOMES.keys()] + \
            [(k, v) for k, v in found.items() if k not in OUTCOMES.keys()]
        rows = (await session.execute(select(O.legal_form, func.count(), fte).where(*where, O.outcome == "creation")
                                      .group_by(O.legal_form).order_by(O.legal_form))).all()
        by_form = [(k, OutcomeCount(_int(c), _fte(f))) for k, c, f in rows]
        creation = found.get("creation", zero)
        totals = OutcomeTotals(creations=creation.projects, jobs_fte=creation.jobs_fte,
                               abandons=found.get("abandon", zero).projects,
                               reorientations=found.get("reorientation", zero).projects,
                               postponed=found.get("report", zero).projects)
        return totals, by_outcome, by_form

    async def _referrals(self, session: AsyncSession, period: Period, partner: str | None):
        R = Referral
        where = [R.date >= period.start, R.date <= period.end]
        if partner is not None:
            where.append(or_(R.from_partner == partner, R.to_partner == partner))

        def n(cond: ColumnElement[bool]) -> ColumnElement:
            return func.coalesce(func.sum(case((cond, _ONE), else_=_ZERO)), _ZERO)

        counts = [func.count().label("proposed"), n(R.status == "acceptee").label("accepted"),
                  n(R.status == "refusee").label("refused"), n(R.status == "proposee").label("pending")]
        sides = ([n(R.from_partner == partner), n(R.to_partner == partner)] if partner else [_ZERO, _ZERO])
        sides = [sides[0].label("sent"), sides[1].label("received")]
        row = (await session.execute(select(*counts, *sides).where(*where))).one()
        totals = ReferralTotals(*(_int(v) for v in row))
        rows = (await session.execute(select(R.from_partner, R.to_partner, *counts).where(*where)
                                      .group_by(R.from_partner, R.to_partner)
                                      .order_by(R.from_partner, R.to_partner))).all()
        routes = [((f, t), ReferralCount(_int(a), _int(b), _int(c), _int(d))) for f, t, a, b, c, d in rows]
        return totals, routes


def _in_order(clist: ChoiceList, found: dict[str, Activity], zero: Activity) -> list[tuple[str, Activity]]:
    """Every value of a closed list in its order (zeros included), then any unknown stored key."""
    keys = clist.keys()
    return [(k, found.get(k, zero)) for k in keys] + [(k, v) for k, v in found.items() if k not in keys]

"""Activity reports for funders: the figures of :mod:`ess_bot.reports.catalogue`, every one aggregated
by the database (GROUP BY), never by a Python loop over records; only counts leave this module — no
project label, no holder detail. What each figure means is said in the catalogue.

The catalogue's tables are planned once (:mod:`ess_bot.services.report_plan`) into a few statements that do not depend on
which indicators exist:

- the **activity cube** (records by month, partner, phase, modality — every records dimension the
  tables use, month first: its SQLite index ``ix_accompaniments_month_cube``), regrouped by the
  database in the same statement (UNION ALL of GROUP BYs over the cube) for each set of dimensions a
  table asks for;
- one **GROUP BY over the records** per other records dimension (the distinct projects per phase, read
  from ``ix_accompaniments_phase_projects``; a dimension of a joined table);
- the **projects statement**, in three steps so that no step counts DISTINCT: ``pp`` one row per
  (project, partner) with its records and minutes; ``per_project`` one row per project;
  ``profiles`` projects counted per combination of the project columns the tables use — every
  breakdown and filter over project columns is a GROUP BY over those few rows;
- one statement per table over a **dated source** (outcomes, referrals).

Works the same on SQLite and PostgreSQL (months are bucketed by the database with ``month_key``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from sqlalchemy import (Integer, String, and_, case, cast, distinct, exists, false, func, literal_column, null, select,
                        union_all)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ess_bot.clock import Clock
from ess_bot.config import Config, role_allows
from ess_bot.reports.catalogue import CATALOGUE
from ess_bot.reports.declare import (PROJECTS, Among, Catalogue, Count, Dimension, FirstRecordInPeriod, Group, Listing,
                                     Measure, Pivot, Share, Sum, Table, Unit, Unknown, Where)
from ess_bot.reports.sql import month_key  # noqa: F401 - the month expression, named here by the migrations
from ess_bot.services.periods import Period
from ess_bot.services.report_plan import Request, plan
from ess_bot.storage.accompaniments import Accompaniment, Project
from ess_bot.vocabulary import ChoiceList

_CENT = Decimal("0.01")


class ReportForbidden(Exception):
    """The actor may not see the figures asked for. ``message`` is French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- results -----------------------------------------------------------------------------------


class Row(NamedTuple):
    """One group of a table: its stored key (None in total, a tuple for two dimensions, a group's key)
    and its figures by measure name."""

    key: Any
    values: dict[str, Any]


@dataclass(frozen=True)
class Report:
    """Every figure of the report: ``figures[table name]`` are the table's rows in display order; keys
    are stored keys (partner slugs, closed-list keys, "YYYY-MM"), ``names`` gives the partners' names."""

    period: Period
    partner: str | None                       # None: the whole network
    generated_at: datetime
    names: dict[str, str]                     # partner slug → name
    figures: dict[str, tuple[Row, ...]]
    catalogue: Catalogue = field(default=CATALOGUE, repr=False, compare=False)

    def rows(self, table: str) -> tuple[Row, ...]:
        return self.figures[table]

    def value(self, table: str, measure: str, key: Any = None):
        for row in self.figures[table]:
            if row.key == key:
                return row.values[measure]
        raise KeyError((table, key))

    @property
    def has_records(self) -> bool:
        return bool(self.value(self.catalogue.total, "records"))

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
    def from_report(cls, report: Report) -> "HoursChart":
        table = report.catalogue.table(report.catalogue.chart)
        pivot: Pivot = table.sheet
        measure = table.columns[0].name
        cells = {r.key: r.values[measure] for r in report.rows(table.name)}
        swap = table.dimensions[0] is report.catalogue.table(pivot.rows).dimensions[0]
        months = [r.key for r in report.rows(pivot.rows)]
        series = [(report.partner_name(c.key), [cells.get((m, c.key) if swap else (c.key, m), 0) for m in months])
                  for c in report.rows(pivot.columns) if c.values[measure]]
        return cls(report.period, report.scope_name, months, series)


# -- SQL helpers -------------------------------------------------------------------------------


def _kind(name: str) -> ColumnElement:
    """A constant label column (inlined, not a bound parameter: PostgreSQL groups without it)."""
    return literal_column("'" + name.replace("'", "''") + "'", String)


_ONE, _ZERO = literal_column("1", Integer), literal_column("0", Integer)


def _no_value() -> ColumnElement:
    """A figure a branch does not compute: a typed NULL (PostgreSQL types a UNION column by its first
    branches, and two bare NULLs make it text)."""
    return cast(null(), Integer)


def _count_if(conditions: list) -> ColumnElement:
    if not conditions:
        return func.count()
    return func.coalesce(func.sum(case((and_(*conditions), _ONE), else_=_ZERO)), _ZERO)


def _label(request: Request) -> str:
    return ",".join(d.name for d in request.dims) or "total"


def _value(unit: Unit, value: Any):
    if unit is Unit.FTE:
        return Decimal(str(value or 0)).quantize(_CENT)
    return int(value or 0)


def _zero(unit: Unit):
    return Decimal("0.00") if unit is Unit.FTE else 0


# -- the service -------------------------------------------------------------------------------

Results = dict[Request, dict[Any, dict[str, Any]]]   # request → group key → measure name → value


class ReportService:
    """Builds :class:`Report` objects. One instance per bot, stateless."""

    def __init__(self, config: Config, clock: Clock, catalogue: Catalogue = CATALOGUE):
        self.config = config
        self.clock = clock
        self.catalogue = catalogue
        self.plan = plan(catalogue)

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
                    side: AsyncSession | None = None, on_cube: Callable[[Results], None] | None = None) -> Report:
        """Every figure of the report.

        ``side``: a second session (another connection): the cube and the GROUP BYs over the records
        are computed there while the projects and the dated sources are computed on ``session`` — the
        database works on both at once. ``on_cube`` is called with the cube as soon as it is known (the
        chart can be drawn meanwhile, see :meth:`chart`).
        """
        async def records_first() -> Results:
            cube = await self.activity(side or session, period, partner)
            if on_cube is not None:
                on_cube(dict(cube))
            for request in self.plan.grouped:
                cube[request] = await self.grouped(side or session, period, partner, request)
            return cube

        async def the_rest() -> Results:
            out = await self.projects(session, period, partner)
            for t in self.plan.dated:
                out.update(await self.dated(session, period, partner, t))
            return out

        if side is None:
            results = await records_first()
            results.update(await the_rest())
        else:
            first, rest = await asyncio.gather(records_first(), the_rest())
            results = {**first, **rest}
        return self.assemble(period, partner, results)

    def _live(self, period: Period, partner: str | None) -> list[ColumnElement[bool]]:
        acc = Accompaniment
        live = [acc.cancelled == false(), acc.date >= period.start, acc.date <= period.end]
        if partner is not None:
            live.append(acc.partner == partner)
        return live

    async def activity(self, session: AsyncSession, period: Period, partner: str | None) -> Results:
        """The records measures by every set of records dimensions the tables ask for: one GROUP BY
        over the records (the cube), regrouped by the database in the same statement (UNION ALL of
        GROUP BYs over the cube)."""
        p = self.plan
        if not p.cube:
            return {}
        live = self._live(period, partner)
        if session.bind.dialect.name == "sqlite" and p.cube_dims and p.cube_dims[0].name == "month":
            # the months as a range too: SQLite then reads ix_accompaniments_month_cube from the first
            # month on, groups in its order (month first), and sorts nothing
            month = p.cube_dims[0].column
            live += [month >= f"{period.start:%Y-%m}", month <= f"{period.end:%Y-%m}"]
        measures = sorted({m for ms in p.cube.values() for m in ms}, key=lambda m: m.name)
        aggregates = [(func.count() if isinstance(m.aggregate, Count) else func.sum(m.aggregate.column)).label(m.name)
                      for m in measures]
        cube = (select(*(d.column.label(d.name) for d in p.cube_dims), *aggregates).where(*live)
                .group_by(*(d.column for d in p.cube_dims)).cte("cube"))
        width = max(len(r.dims) for r in p.cube)
        branches = []
        for request in p.cube:
            keys = [cube.c[d.name] for d in request.dims]
            stmt = select(_kind(_label(request)), *keys, *[null()] * (width - len(keys)),
                          *(func.sum(cube.c[m.name]) for m in measures)).select_from(cube)
            branches.append(stmt.group_by(*keys) if keys else stmt)
        by_label = {_label(r): r for r in p.cube}
        out: Results = {r: {} for r in p.cube}
        for kind, *row in (await session.execute(union_all(*branches))).all():
            request = by_label[kind]
            key = tuple(row[:len(request.dims)]) if len(request.dims) > 1 else (row[0] if request.dims else None)
            out[request][key] = {m.name: _value(m.unit, v) for m, v in zip(measures, row[width:])}
        return out

    async def grouped(self, session: AsyncSession, period: Period, partner: str | None,
                      request: Request) -> dict[Any, dict[str, Any]]:
        """Measures by a records dimension outside the cube, in one GROUP BY over the records: the
        distinct projects of each phase are read from ix_accompaniments_phase_projects (one flag per
        phase carried through the projects statement cost three times as much)."""
        acc, (dim,) = Accompaniment, request.dims
        measures = sorted(self.plan.grouped[request], key=lambda m: m.name)
        columns = [func.count(distinct(acc.project_id)) if m.source is PROJECTS else
                   func.count() if isinstance(m.aggregate, Count) else func.sum(m.aggregate.column)
                   for m in measures]
        stmt = select(dim.column, *columns).where(*self._live(period, partner))
        if dim.join is not None:   # a dimension of a joined table (themes…)
            stmt = stmt.join_from(acc, dim.join)
        rows = (await session.execute(stmt.group_by(dim.column))).all()
        return {key: {m.name: _value(m.unit, v) for m, v in zip(measures, values)} for key, *values in rows}

    async def projects(self, session: AsyncSession, period: Period, partner: str | None) -> Results:
        """The projects figures in one statement built in three steps so that no step counts DISTINCT:

        - ``pp``: one row per (project, partner) with its records measures;
        - ``per_project``: one row per project (so ``count(*)`` counts projects) — the figures in
          total, and the new projects (no earlier live record: read from the index alone);
        - ``profiles``: projects counted per combination of the project columns the tables use —
          every breakdown and filter over project columns is a GROUP BY over these few rows.
        """
        p, acc, P = self.plan, Accompaniment, Project
        if not p.projects:
            return {}
        carried = p.carried
        sums = sorted({m for ms in p.projects.values() for m in ms
                       if m.source is PROJECTS and isinstance(m.aggregate, Sum)}, key=lambda m: m.name)
        pp = (select(acc.project_id.label("pid"), acc.partner.label("partner"), *(
            (func.count() if isinstance(m.aggregate, Count) else func.sum(m.aggregate.column)).label("m_" + m.name)
            for m in carried))
              .where(*self._live(period, partner)).group_by(acc.project_id, acc.partner).cte("pp"))
        per_project = (select(pp.c.pid, *(func.sum(pp.c["m_" + m.name]).label("m_" + m.name) for m in carried))
                       .group_by(pp.c.pid).cte("per_project"))
        profiles = (select(*(d.column.label(d.name) for d in p.project_dims), func.count().label("k"),
                           *(func.sum(per_project.c["m_" + m.name]).label("m_" + m.name) for m in carried),
                           *(func.sum(m.aggregate.column).label("s_" + m.name) for m in sums))
                    .select_from(per_project).join(P, P.id == per_project.c.pid)
                    .group_by(*(d.column for d in p.project_dims)).cte("profiles"))
        requests = [r for r in p.projects if r not in p.derived]
        width = max(len(r.dims) for r in requests)
        branches = [self._projects_branch(str(i), r, width, carried, sums, pp, per_project, profiles, period, partner)
                    for i, r in enumerate(requests)]
        out: Results = {r: {} for r in requests}
        for kind, *row in (await session.execute(union_all(*branches))).all():
            request = requests[int(kind)]
            n = len(request.dims)
            key = tuple(row[:n]) if n > 1 else (row[0] if n else None)
            count, *rest = row[width:]
            found = dict(zip([m.name for m in carried] + [m.name for m in sums], rest))
            out[request][key] = {m.name: _value(m.unit, count if m.source is PROJECTS and isinstance(m.aggregate, Count)
                                                else found[m.name]) for m in p.projects[request]}
        return out

    def _projects_branch(self, kind: str, request: Request, width: int, carried: list[Measure], sums: list[Measure],
                         pp, per_project, profiles, period: Period, partner: str | None):
        """One SELECT of the projects statement: (kind, keys…, projects, carried measures…, sums…),
        NULL where the request does not need the figure."""
        acc, P, wanted = Accompaniment, Project, self.plan.projects[request]
        dims, f = request.dims, request.where
        if dims and all(d.source is PROJECTS for d in dims) or isinstance(f, (Among, Unknown)):
            base, pr = profiles, profiles.c
            keys = [pr[d.name] for d in dims]
            count = func.sum(pr.k)
            values = [func.sum(pr["m_" + m.name]) if m in wanted else _no_value() for m in carried]
            values += [func.sum(pr["s_" + m.name]) if m in wanted else _no_value() for m in sums]
        else:
            base = pp if dims else per_project
            keys = [pp.c.partner] if dims else []
            count = func.count()
            values = [func.sum(base.c["m_" + m.name]) if m in wanted else _no_value() for m in carried]
            values += [func.sum(m.aggregate.column) if m in wanted else _no_value() for m in sums]
        stmt = select(_kind(kind), *keys, *[null()] * (width - len(keys)), count, *values).select_from(base)
        if base is not profiles and any(m in wanted for m in sums):
            stmt = stmt.join(P, P.id == base.c.pid)
        if isinstance(f, Among):
            column = base.c[f.dimension.name]
            stmt = stmt.where(column == f.values[0] if len(f.values) == 1 else column.in_(f.values))
        elif isinstance(f, Unknown):
            stmt = stmt.where(*(base.c[d.name].is_(None) for d in f.dimensions))
        elif isinstance(f, FirstRecordInPeriod):
            earlier = [acc.project_id == per_project.c.pid, acc.cancelled == false(), acc.date < period.start]
            if partner is not None:
                earlier.append(acc.partner == partner)
            stmt = stmt.where(~exists(select(acc.project_id).where(*earlier)))  # one column: read from the index alone
        return stmt.group_by(*keys) if keys else stmt

    async def dated(self, session: AsyncSession, period: Period, partner: str | None, t: Table) -> Results:
        """One table over a dated source: its rows dated within the period, of the partner in scope;
        by its dimensions (in the database's order), or its declared groups in one row."""
        source = t.columns[0].measure.source
        where = [source.date >= period.start, source.date <= period.end]
        if partner is not None:
            where.append(source.partner(partner))
        where += _conditions(t.where, partner)
        measures = [c.measure for c in t.columns if isinstance(c.measure, Measure)]
        request = Request("dated", t.dimensions, t)
        if t.groups:
            slots = [(g.key, c.measure) for g in t.groups if partner is not None or not g.needs_partner
                     for c in t.columns if isinstance(c.measure, Measure) and c.shown_for(g.key)]
            groups = {g.key: g for g in t.groups}
            row = (await session.execute(select(*(_aggregate(m, _conditions(groups[k].where, partner), partner)
                                                   for k, m in slots))
                                         .where(*where))).one()
            out: dict[Any, dict[str, Any]] = {}
            for (k, m), v in zip(slots, row):
                out.setdefault(k, {})[m.name] = _value(m.unit, v)
            return {request: out}
        columns = [d.column for d in t.dimensions]
        stmt = select(*columns, *(_aggregate(m, [], partner) for m in measures)).where(*where)
        if columns:
            stmt = stmt.group_by(*columns).order_by(*columns)
        out = {}
        for row in (await session.execute(stmt)).all():
            n = len(columns)
            key = tuple(row[:n]) if n > 1 else (row[0] if n else None)
            out[key] = {m.name: _value(m.unit, v) for m, v in zip(measures, row[n:])}
        return {request: out}

    def chart(self, period: Period, partner: str | None, cube: Results) -> HoursChart:
        """The chart's data from the activity cube alone (drawn while the rest of the report is built)."""
        return self.assemble(period, partner, cube).chart

    # -- the figures in display order ------------------------------------------------------------
    def assemble(self, period: Period, partner: str | None, results: Results) -> Report:
        """Put the database's figures in display order; the only arithmetic is the shares."""
        figures = {t.name: self._rows(t, period, partner, results) for t in self.catalogue.tables}
        for t in self.catalogue.tables:
            for c in t.columns:
                if isinstance(c.measure, Share):
                    table, key, name = c.measure.over
                    whole = next(r.values[name] for r in figures[table] if r.key == key)
                    for row in figures[t.name]:
                        if c.shown_for(row.key):
                            row.values[c.name] = _share(row.values[c.measure.of.name], whole)
        return Report(period=period, partner=partner, generated_at=self.clock.now(),
                      names={q.slug: q.name for q in self.config.partners}, figures=figures, catalogue=self.catalogue)

    def _rows(self, t: Table, period: Period, partner: str | None, results: Results) -> tuple[Row, ...]:
        measures = [c.measure for c in t.columns if isinstance(c.measure, Measure)]
        if t.groups:
            return tuple(Row(g.key, {c.name: self._group_value(t, g, c.measure, results) for c in t.columns
                                     if isinstance(c.measure, Measure) and c.shown_for(g.key)})
                         for g in t.groups if partner is not None or not g.needs_partner)
        found: dict[Any, dict[str, Any]] = {}
        for m in measures:
            for key, values in results.get(self.plan.supply[(t.name, None, m.name)], {}).items():
                found.setdefault(key, {})[m.name] = values[m.name]
        dims = t.dimensions
        if len(dims) == 1:
            keys = self._listing(dims[0], list(found), period, partner)
        elif dims:
            ranks = [self._ranks(d, [k[i] for k in found], period, partner) for i, d in enumerate(dims)]
            keys = sorted(found, key=lambda k: tuple(r(k[i]) for i, r in enumerate(ranks)))
        else:
            keys = [None]
        return tuple(Row(k, {m.name: found.get(k, {}).get(m.name, _zero(m.unit)) for m in measures}) for k in keys)

    def _group_value(self, t: Table, g: Group, m: Measure, results: Results):
        request = self.plan.supply.get((t.name, g.key, m.name))
        if request is None:                                   # a dated source: one row, by group
            value = results.get(self.plan.supply[(t.name, None, m.name)], {}).get(g.key, {}).get(m.name)
        elif request in self.plan.derived:                    # the group is one key of a breakdown
            source, key = self.plan.derived[request]
            value = results.get(source, {}).get(key, {}).get(m.name)
        else:
            value = results.get(request, {}).get(None, {}).get(m.name)
        return _zero(m.unit) if value is None else value

    def _listing(self, d: Dimension, found: list, period: Period, partner: str | None) -> list:
        """The groups of a dimension, in display order (see :class:`~ess_bot.reports.declare.Listing`)."""
        if d.listing is Listing.PARTNERS:
            base = [p.slug for p in self.config.partners] if partner is None else [partner]
            return base + sorted(k for k in found if k not in base)
        if d.listing is Listing.MONTHS:
            base = [f"{y}-{mo:02d}" for y, mo in period.months()]
            return base + sorted(k for k in found if k not in base)
        if d.listing in (Listing.LIST, Listing.LIST_THEN_UNKNOWN):
            keys = d.labels.keys() if isinstance(d.labels, ChoiceList) else ()
            if d.listing is Listing.LIST:
                return [*keys, *(k for k in found if k not in keys)]
            return [*keys, *sorted(k for k in found if k is not None and k not in keys), None]
        if d.listing is Listing.SORTED:
            return sorted(found)
        return found

    def _ranks(self, d: Dimension, found: list, period: Period, partner: str | None) -> Callable[[Any], int]:
        """How a dimension orders the combinations of a two-dimension table (as found if FOUND)."""
        if d.listing is Listing.FOUND:
            return lambda key: 0
        order = {k: i for i, k in enumerate(self._listing(d, list(dict.fromkeys(found)), period, partner))}
        return lambda key: order.get(key, len(order))


def _conditions(f, partner: str | None) -> list:
    """A filter of a dated source as SQL conditions."""
    if f is None:
        return []
    if isinstance(f, Among):
        column = f.dimension.column
        return [column == f.values[0] if len(f.values) == 1 else column.in_(f.values)]
    if isinstance(f, Where):
        return [f.condition(partner) if f.needs_partner else f.condition]
    raise ValueError(f"{type(f).__name__} filters projects, not a dated source")


def _aggregate(m: Measure, conditions: list, partner: str | None) -> ColumnElement:
    """A measure of a dated source: a count, or a sum (0 when no row), of the rows meeting ``conditions``
    and the measure's own filter."""
    conditions = conditions + _conditions(m.where, partner)
    if isinstance(m.aggregate, Count):
        return _count_if(conditions)
    column = m.aggregate.column
    if conditions:
        column = case((and_(*conditions), column), else_=null())
    return func.coalesce(func.sum(column), 0)


def _share(count: int, whole: int) -> Decimal:
    if not whole:
        return Decimal(0)
    return (Decimal(100) * count / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

"""Which statement of the report service computes which figure of the catalogue: :func:`plan` maps
every (table, group, measure) to a :class:`Request` — a set of groups of one statement — once, when
the service is built. A combination no statement computes is refused there, with the table named.

- records measures by records dimensions: the activity cube (the dimensions grouped month first, in
  the order of the SQLite index ``ix_accompaniments_month_cube``); by a dimension of a joined table:
  a GROUP BY of its own;
- projects by a records dimension other than the partner (the phase): a GROUP BY of its own (count
  of distinct projects);
- projects in total, by partner, by project columns, or filtered (declared groups, new projects), and
  records measures by project columns: the projects statement;
- a table over a dated source: one statement of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ess_bot.reports.declare import (PROJECTS, RECORDS, Among, Catalogue, Count, Dimension, FirstRecordInPeriod,
                                     Measure, Share, Table, Unknown)

CUBE_ORDER = ("month", "partner", "phase", "modality")   # ix_accompaniments_month_cube's columns (SQLite)


class Request(NamedTuple):
    """One set of groups a statement computes: ``kind`` is the statement (cube, grouped, projects,
    dated), ``dims`` its GROUP BY, ``where`` a filter (projects) or the table (dated)."""

    kind: str
    dims: tuple[Dimension, ...] = ()
    where: Any = None


@dataclass
class Plan:
    cube_dims: list[Dimension] = field(default_factory=list)
    cube: dict[Request, set[Measure]] = field(default_factory=dict)
    grouped: dict[Request, set[Measure]] = field(default_factory=dict)
    carried: list[Measure] = field(default_factory=list)         # RECORDS measures carried by the projects
    project_dims: list[Dimension] = field(default_factory=list)  # GROUP BY of the profiles step
    projects: dict[Request, set[Measure]] = field(default_factory=dict)
    dated: list[Table] = field(default_factory=list)
    supply: dict[tuple[str, Any, str], Request] = field(default_factory=dict)  # (table, group, measure) → request
    derived: dict[Request, tuple[Request, str]] = field(default_factory=dict)  # a filter read from a breakdown


def plan(catalogue: Catalogue) -> Plan:
    """Every (table, group, measure) to the request that computes it."""
    p = Plan()
    for t in catalogue.tables:
        for c in t.columns:
            if isinstance(c.measure, Share):
                continue
            m = c.measure
            if m.source.dated:
                if t not in p.dated:
                    p.dated.append(t)
                p.supply[(t.name, None, m.name)] = Request("dated", t.dimensions, t)
            elif t.groups:
                for g in t.groups:
                    p.supply[(t.name, g.key, m.name)] = _add(p, p.projects, _projects_request(t, m, g.where), m)
            else:
                p.supply[(t.name, None, m.name)] = _activity_request(p, t, m)
    for f in (r.where for r in p.projects):   # the columns filters read, after those tables group by
        dims = f.dimensions if isinstance(f, Unknown) else (f.dimension,) if isinstance(f, Among) else ()
        p.project_dims += [d for d in dims if d not in p.project_dims]
    p.cube_dims.sort(key=lambda d: (CUBE_ORDER.index(d.name) if d.name in CUBE_ORDER else len(CUBE_ORDER)))
    for request in p.projects:
        f = request.where
        breakdown = Request("projects", (f.dimension,)) if isinstance(f, Among) and len(f.values) == 1 else None
        if breakdown in p.projects and p.projects[request] <= p.projects[breakdown]:
            p.derived[request] = (breakdown, f.values[0])
    return p


def _add(p: Plan, requests: dict, request: Request, measure: Measure) -> Request:
    requests.setdefault(request, set()).add(measure)
    p.project_dims += [d for d in request.dims if d.source is PROJECTS and d not in p.project_dims]
    return request


def _projects_request(t: Table, m: Measure, where) -> Request:
    if m.source is not PROJECTS or t.dimensions or t.where is not None:
        raise ValueError(f"report table {t.name!r}: declared groups count projects only, in total")
    if m.where is not None:
        raise ValueError(f"report table {t.name!r}: a filtered measure cannot be counted by group")
    return Request("projects", (), where)


def _activity_request(p: Plan, t: Table, m: Measure) -> Request:
    """Records measures by records dimensions: the cube (or a GROUP BY of their own for a joined
    dimension); projects by a records dimension other than the partner: a GROUP BY of their own;
    anything else: the projects statement."""
    dims = t.dimensions
    if t.where is not None:
        raise ValueError(f"report table {t.name!r}: ``where`` is for dated sources")
    on_records = all(d.source is RECORDS for d in dims)
    if m.source is RECORDS and on_records:
        if m.where is not None:
            raise ValueError(f"report table {t.name!r}: records measures are not filtered")
        if any(d.join is not None for d in dims):
            if len(dims) > 1:
                raise ValueError(f"report table {t.name!r}: a joined dimension groups alone")
            return _add(p, p.grouped, Request("grouped", dims), m)
        p.cube_dims += [d for d in dims if d not in p.cube_dims]
        return _add(p, p.cube, Request("cube", dims), m)
    if m.source is PROJECTS and len(dims) == 1 and dims[0].source is RECORDS and dims[0].name != "partner":
        if m.where is not None or not isinstance(m.aggregate, Count):
            raise ValueError(f"report table {t.name!r}: projects by {dims[0].name} are counted, unfiltered")
        return _add(p, p.grouped, Request("grouped", dims), m)
    if not (all(d.source is PROJECTS for d in dims) or (len(dims) == 1 and dims[0].name == "partner")):
        raise ValueError(f"report table {t.name!r}: the projects are grouped by project columns or by partner")
    if m.where is not None and (dims or not isinstance(m.where, FirstRecordInPeriod)):
        raise ValueError(f"report table {t.name!r}: a filtered measure is counted in total only")
    if m.source is RECORDS and m not in p.carried:
        p.carried.append(m)
    return _add(p, p.projects, Request("projects", dims, m.where), m)

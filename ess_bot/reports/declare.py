"""The words a report is declared with (the report itself is :mod:`ess_bot.reports.catalogue`).

A **measure** is one number computed by the database over a **source** (the live records of the
period, the projects they concern, or a dated table such as the outcomes); a **dimension** is what it
is grouped by (a column and its closed list); a **table** is what people see: measures by a dimension
(or by declared groups, or in total), with where it appears — the CSV section, the XLSX sheet, the
summary line, the « Synthèse » rows. The report service turns the tables into SQL
(:mod:`ess_bot.services.reports`), :mod:`ess_bot.report_files` turns the figures into the summary and
the files; neither knows any indicator by name.

Every class is immutable and compared by identity (they hold SQL expressions, whose ``==`` builds SQL).
Nothing here knows about chat: the summary wording is plain French with ``{placeholders}`` (see
:class:`Line`), emphasis is the ``strong`` format word, and the renderer escapes what needs escaping.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ess_bot.vocabulary import ChoiceList


# -- where numbers come from -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Source:
    """Rows that figures are computed over. :data:`RECORDS` (the live records of the period, of the
    partner in scope) and :data:`PROJECTS` (the projects of those records, once each) are built by
    the report service; a *dated* source is any table with a date: its rows dated within the period,
    of the partner in scope (``partner(slug)`` gives the SQL condition)."""

    name: str
    date: Any = None
    partner: Callable[[str], Any] | None = None

    @property
    def dated(self) -> bool:
        return self.date is not None


RECORDS = Source("records")
PROJECTS = Source("projects")


class Unit(Enum):
    COUNT = "count"        # an integer
    MINUTES = "minutes"    # an integer of minutes, shown in hours
    FTE = "fte"            # full-time equivalents, two decimals
    PERCENT = "percent"    # a share, one decimal


@dataclass(frozen=True, eq=False)
class Count:
    """How many rows (of the source, of the group)."""


@dataclass(frozen=True, eq=False)
class Sum:
    """The sum of a column of the source's rows (0 when there are none)."""

    column: Any


# -- filters: which rows count ---------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Among:
    """Rows whose dimension has one of ``values``."""

    dimension: "Dimension"
    values: tuple[str, ...]

    def __init__(self, dimension: "Dimension", *values: str):
        object.__setattr__(self, "dimension", dimension)
        object.__setattr__(self, "values", values)


@dataclass(frozen=True, eq=False)
class Unknown:
    """Rows where every one of ``dimensions`` is not recorded (NULL)."""

    dimensions: tuple["Dimension", ...]

    def __init__(self, *dimensions: "Dimension"):
        object.__setattr__(self, "dimensions", dimensions)


@dataclass(frozen=True, eq=False)
class Where:
    """Rows of a dated source meeting an SQL condition; ``condition`` may be a function of the
    partner in scope (then the filter only exists in a partner's report)."""

    condition: Any

    @property
    def needs_partner(self) -> bool:
        return callable(self.condition)


@dataclass(frozen=True, eq=False)
class FirstRecordInPeriod:
    """(PROJECTS) projects whose first live record — in the scope: the network or the partner —
    falls within the period."""


FIRST_RECORD_IN_PERIOD = FirstRecordInPeriod()
Filter = Among | Unknown | Where | FirstRecordInPeriod


# -- measures and dimensions -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Measure:
    """One number: ``name`` is its key in the figures (unique within a table), ``csv`` its indicator
    in the CSV, ``header`` its column in the XLSX."""

    name: str
    source: Source
    aggregate: Count | Sum
    csv: str
    header: str = ""
    unit: Unit = Unit.COUNT
    where: Filter | None = None


@dataclass(frozen=True, eq=False)
class Share:
    """``of`` (a measure of the same table) as a percentage of one figure of the report, ``over`` =
    (table, group key, measure); 0 when that figure is 0."""

    name: str
    of: Measure
    over: tuple[str, Any, str]
    csv: str
    header: str = ""
    unit: Unit = Unit.PERCENT


class Label(Enum):
    """Group labels that are not a closed list (the renderer words them)."""

    PARTNER = "partner"        # the partner's name from the configuration
    DEPARTMENT = "department"  # "25 (Doubs)"
    MONTH = "month"            # "juil. 2026" (the CSV keeps "2026-07")


class Listing(Enum):
    """Which groups a table shows, in which order."""

    LIST = "list"                  # every key of the closed list, then any other stored key as found
    LIST_THEN_UNKNOWN = "unknown"  # every key of the closed list, other stored keys sorted, then "not recorded"
    PARTNERS = "partners"          # the configured partners (the one in scope), then others sorted
    MONTHS = "months"              # every month of the period, then others sorted
    SORTED = "sorted"              # the stored keys found, sorted
    FOUND = "found"                # the stored keys found, in the database's order


@dataclass(frozen=True, eq=False)
class Dimension:
    """What figures are grouped by: an SQL expression over a source's rows (for PROJECTS, a column of
    ``Project``), worded by a closed list or a :class:`Label`; ``missing`` words a NULL. ``join``
    (RECORDS): the table of ``column`` when it is not ``accompaniments`` (it has a foreign key to them,
    as ``AccompanimentTheme``)."""

    name: str
    source: Source
    column: Any
    labels: ChoiceList | Label
    listing: Listing = Listing.LIST
    missing: str = "non renseigné"
    join: Any = None


@dataclass(frozen=True, eq=False)
class Group:
    """A declared group (a row of a table ``by`` groups): the rows of the filter (all rows if None)."""

    key: str
    label: str
    where: Filter | None = None
    partner_only: bool = False     # only in a partner's report

    @property
    def needs_partner(self) -> bool:
        return self.partner_only or (isinstance(self.where, Where) and self.where.needs_partner)


# -- what people see ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Column:
    """A measure in a table; ``csv`` / ``header`` reword it (False: not in that file); ``only`` /
    ``skip``: the group keys it is shown for (an empty cell elsewhere in the XLSX, no CSV row)."""

    measure: Measure | Share
    csv: str | bool = True
    header: str | bool = True
    only: tuple = ()
    skip: tuple = ()

    @property
    def name(self) -> str:
        return self.measure.name

    def shown_for(self, key) -> bool:
        return (not self.only or key in self.only) and key not in self.skip

    def csv_name(self) -> str | None:
        return None if self.csv is False else self.measure.csv if self.csv is True else self.csv

    def header_name(self) -> str | None:
        return None if self.header is False else self.measure.header if self.header is True else self.header


@dataclass(frozen=True, eq=False)
class Csv:
    """The table's rows in the CSV: ``section`` is the « rubrique »; ``group`` words the single row of a
    table in total; two dimensions are joined by ``joiner``."""

    section: str
    group: str = "tout"
    joiner: str = " · "


@dataclass(frozen=True, eq=False)
class Sheet:
    """An XLSX sheet of its own: one column per dimension (``headers``), one per column, and a « Total »
    row taken from (table, group key) — a table name alone means its row in total."""

    name: str
    headers: str | tuple[str, ...]
    total: str | tuple[str, Any] | None = None
    widths: tuple[float, ...] | None = None   # default: 34 for the first column, 14 for the others
    network_only: bool = False


@dataclass(frozen=True, eq=False)
class Stack:
    """Rows in a sheet shared by several tables (in table order), each row starting with ``criterion``."""

    name: str
    criterion: str
    headers: tuple[str, str] = ("Critère", "Valeur")
    widths: tuple[float, ...] | None = None


@dataclass(frozen=True, eq=False)
class Pivot:
    """A two-dimension table as a grid: one row per group of table ``rows`` and one column per group of
    table ``columns`` (both by one of this table's dimensions), their totals at the ends."""

    name: str
    rows: str
    columns: str
    total: str
    corner: str
    widths: tuple[float, float] = (16, 18)


@dataclass(frozen=True, eq=False)
class If:
    """``text`` when the figure ``field`` is not zero, else ``otherwise`` (nothing if None)."""

    field: str
    text: str
    otherwise: str | None = None
    partner_only: bool = False


@dataclass(frozen=True, eq=False)
class Items:
    """Each group of the table worded by ``template`` (``{label}`` and the measures), joined by ``sep``;
    groups where ``skip_zero`` is 0 are left out; ``empty`` when none is left."""

    template: str
    skip_zero: str | None = None
    sep: str = " · "
    empty: str = "—"


@dataclass(frozen=True, eq=False)
class Line:
    """A line of the chat summary: ``title : parts``, the parts joined by ``join`` (``"and"``: French
    enumeration, "a, b et c"), then ``suffix``.

    Templates are plain French with ``{field}`` or ``{field:format}``: the field is a measure of the
    table (of its row in total) or ``group.measure``; the format is words separated by ``:`` — a noun
    ``suivi`` or ``projet accompagné|projets accompagnés`` (the number and the noun, singular up to 1),
    ``strong`` (emphasis); without a noun a count is a number, minutes are hours, a share is "40 %".
    A line whose table counts records or projects is replaced by one "no record" line when the period
    has none. ``after``: the line goes after that table's line (default: in table order)."""

    title: str | None
    parts: tuple[str | If | Items, ...]
    join: str = " · "
    suffix: If | None = None
    network_only: bool = False
    after: str | None = None

    def __init__(self, title: str | None, *parts: str | If | Items, join: str = " · ", suffix: If | None = None,
                 network_only: bool = False, after: str | None = None):
        for name, value in (("title", title), ("parts", parts), ("join", join), ("suffix", suffix),
                            ("network_only", network_only), ("after", after)):
            object.__setattr__(self, name, value)

    def templates(self) -> list[str]:
        out = [self.title] if self.title else []
        for part in (*self.parts, *([self.suffix] if self.suffix else [])):
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, If):
                out += [f"{{{part.field}}}", part.text] + ([part.otherwise] if part.otherwise else [])
            else:
                out.append(part.template)
        return out


@dataclass(frozen=True, eq=False)
class Table:
    """Measures (``columns``) by ``by``: nothing (one row in total), a dimension, two dimensions (their
    combinations found), or declared :class:`Group` s. ``where`` keeps only some rows of a dated source.
    ``synthesis``: rows of the XLSX « Synthèse », (label, measure) or (label, group key, measure)."""

    name: str
    columns: tuple[Column, ...]
    by: Dimension | tuple[Dimension, Dimension] | tuple[Group, ...] | None = None
    where: Filter | None = None
    csv: Csv | None = None
    sheet: Sheet | Stack | Pivot | None = None
    summary: Line | None = None
    synthesis: tuple[tuple, ...] = ()

    def __init__(self, name: str, columns, by=None, *, where=None, csv=None, sheet=None, summary=None,
                 synthesis=()):
        values = dict(name=name, columns=tuple(c if isinstance(c, Column) else Column(c) for c in columns), by=by,
                      where=where, csv=csv, sheet=sheet, summary=summary, synthesis=tuple(synthesis))
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        if isinstance(self.by, Dimension):
            return (self.by,)
        if isinstance(self.by, tuple) and self.by and isinstance(self.by[0], Dimension):
            return self.by
        return ()

    @property
    def groups(self) -> tuple[Group, ...]:
        return self.by if isinstance(self.by, tuple) and self.by and isinstance(self.by[0], Group) else ()

    @property
    def sources(self) -> set[Source]:
        return {c.measure.source for c in self.columns if isinstance(c.measure, Measure)}

    @property
    def counts_activity(self) -> bool:
        """True when the table counts records or projects (a period without records shows none)."""
        return bool(self.sources & {RECORDS, PROJECTS})


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Every table of a report, in CSV and XLSX order. ``total``: the table in total whose ``records``
    says whether the period has any record; ``chart``: the table (by partner and month, a
    :class:`Pivot`) the PNG draws."""

    tables: tuple[Table, ...]
    total: str = "total"
    chart: str | None = None
    by_name: dict[str, Table] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for t in self.tables:
            if t.name in self.by_name:
                raise ValueError(f"report table {t.name!r} declared twice")
            self.by_name[t.name] = t
        for t in self.tables:
            _check(self, t)

    def table(self, name: str) -> Table:
        return self.by_name[name]


def _check(catalogue: Catalogue, t: Table) -> None:
    """A declaration error is found when the catalogue is built (at import), not in a report."""
    names = [c.name for c in t.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"report table {t.name!r}: two columns named alike")
    for c in t.columns:
        if isinstance(c.measure, Share) and c.measure.over[0] not in catalogue.by_name:
            raise ValueError(f"report table {t.name!r}: share over unknown table {c.measure.over[0]!r}")
    refs = [t.sheet.total] if isinstance(t.sheet, Sheet) and t.sheet.total else []
    if isinstance(t.sheet, Pivot):
        refs += [t.sheet.rows, t.sheet.columns, t.sheet.total]
    for ref in refs:
        if (ref if isinstance(ref, str) else ref[0]) not in catalogue.by_name:
            raise ValueError(f"report table {t.name!r}: unknown table {ref!r}")
    if t.summary is None:
        return
    fields = set(names) | {f"{g.key}.{n}" for g in t.groups for n in names}
    for d in t.dimensions:
        keys = d.labels.keys() if isinstance(d.labels, ChoiceList) else ()
        fields |= {f"{k}.{n}" for k in keys for n in names}
    for template in t.summary.templates():
        for _, name, _, _ in string.Formatter().parse(template):
            if name is not None and name not in fields and name != "label":
                raise ValueError(f"report table {t.name!r}: the summary names {name!r}, not one of its figures")

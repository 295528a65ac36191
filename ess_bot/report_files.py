"""What a :class:`~ess_bot.services.reports.Report` looks like to people: a short French summary
(Markdown), a tidy CSV, an XLSX workbook and a PNG chart. Pure functions of the report: no database,
no clock, no chat. Only counts are written — never a project label or a holder detail.

Nothing here names an indicator: the tables of the report's catalogue (:mod:`ess_bot.reports.catalogue`)
say which figures go in the CSV, which sheet, which summary line and which « Synthèse » row, and with
which words; this module only knows how a count, hours, a share or a partner's name are written.

matplotlib and openpyxl are imported inside the functions that need them, so that starting the bot
does not pay for them.
"""

from __future__ import annotations

import csv
import io
import string
import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ess_bot.formatting import MONTHS_FR, date_fr, join_fr, md_escape, minutes_fr, time_fr
from ess_bot.reports.declare import (Column, Dimension, If, Items, Label, Line, Measure, Pivot, Share, Sheet, Stack,
                                     Table, Unit)
from ess_bot.services.reports import HoursChart, Report, Row
from ess_bot.vocabulary import DEPARTMENT_NAMES, ChoiceList

CSV_MIMETYPE = "text/csv"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_MIMETYPE = "image/png"
NO_RECORD = "Aucun suivi enregistré sur cette période."


@dataclass(frozen=True)
class ReportFile:
    name: str
    data: bytes
    mimetype: str
    image: bool = False


# -- wording -----------------------------------------------------------------------------------

def number_fr(value: Decimal | float | int, digits: int = 1) -> str:
    """``1234.5`` → ``1 234,5``; whole numbers without decimals."""
    value = Decimal(str(value))
    if value == value.to_integral_value():
        text = f"{int(value):,}"
    else:
        text = f"{value:,.{digits}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def hours(minutes: int) -> Decimal:
    """Minutes as decimal hours, to the hundredth (1 h 45 → 1.75), for the files."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def hours_fr(minutes: int) -> str:
    """``8273850`` minutes → ``137 897,5 h``; under 100 hours as ``11 h 30``."""
    if minutes < 6000:
        return minutes_fr(minutes)
    return f"{number_fr(hours(minutes).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP))} h"


MONTH_ABBREVIATIONS = {"janvier": "janv.", "février": "févr.", "juillet": "juil.", "septembre": "sept.",
                       "octobre": "oct.", "novembre": "nov.", "décembre": "déc."}


def month_label(key: str) -> str:
    """``2026-07`` → ``juil. 2026``."""
    year, month = key.split("-")
    name = MONTHS_FR[int(month) - 1]
    return f"{MONTH_ABBREVIATIONS.get(name, name)} {year}"


def department_label(dep: str) -> str:
    name = DEPARTMENT_NAMES.get(dep)
    return f"{dep} ({name})" if name else dep


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{number_fr(n)} {one if n <= 1 else (many or one + 's')}"


def file_stem(report: Report) -> str:
    scope = report.partner or "reseau"
    return f"rapport-{scope}-{report.period.slug}"


def generated_text(report: Report) -> str:
    return f"{date_fr(report.generated_at, weekday=False)} à {time_fr(report.generated_at)}"


def file_value(measure: Measure | Share, value):
    """A figure as the files write it: minutes as decimal hours, the rest as computed."""
    return hours(value) if measure.unit is Unit.MINUTES else value


def group_label(report: Report, d: Dimension, key, *, csv: bool = False) -> str:
    """A group's words (not escaped): the closed list's label, the partner's name, the département
    with its name, the month ("juil. 2026"; the CSV keeps "2026-07")."""
    if isinstance(d.labels, ChoiceList):
        return d.labels.label(key, d.missing)
    if d.labels is Label.PARTNER:
        return report.partner_name(key)
    if d.labels is Label.DEPARTMENT:
        return department_label(key)
    return key if csv else month_label(key)


def row_labels(report: Report, t: Table, key, *, csv: bool = False) -> list[str]:
    """The words of one row of a table: one per dimension, the group's label, or the CSV's "tout"."""
    if t.groups:
        return [next(g.label for g in t.groups if g.key == key)]
    dims = t.dimensions
    if not dims:
        return [t.csv.group if t.csv else "Total"]
    keys = key if len(dims) > 1 else (key,)
    return [group_label(report, d, k, csv=csv) for d, k in zip(dims, keys)]


# -- summary -----------------------------------------------------------------------------------

def summary_markdown(report: Report) -> str:
    """The short French summary posted with the files (and printed by ``ess-bot rapport``): the
    catalogue's summary lines, in table order (a line may ask to come ``after`` another)."""
    period = report.period
    lines = [f"📊 **Bilan d'accompagnement — {md_escape(period.label)}** ({md_escape(period.dates_text())}) · "
             f"{md_escape(report.scope_name)}"]
    for t, line in _summary_lines(report):
        if not report.has_records and t.counts_activity:
            if NO_RECORD not in lines:
                lines.append(NO_RECORD)
            continue
        lines.append(_line(report, t, line))
    lines.append("Détail dans les fichiers joints : tableau CSV, classeur Excel et graphique des heures par structure "
                 "et par mois. Seuls des effectifs y figurent, aucun nom de projet ni donnée de porteur·euse.")
    return "\n".join(lines)


def _summary_lines(report: Report) -> list[tuple[Table, Line]]:
    found = [(t, t.summary) for t in report.catalogue.tables
             if t.summary is not None and not (t.summary.network_only and report.partner is not None)]
    ordered = [item for item in found if item[1].after is None]
    for item in found:
        if item[1].after is not None:
            at = next((i + 1 for i, (t, _) in enumerate(ordered) if t.name == item[1].after), len(ordered))
            ordered.insert(at, item)
    return ordered


def _line(report: Report, t: Table, line: Line) -> str:
    fields = _Fields(report, t)
    parts = [text for text in (fields.part(p) for p in line.parts) if text]
    body = join_fr(parts) if line.join == "and" else line.join.join(parts)
    suffix = fields.part(line.suffix) if line.suffix else ""
    title = f"{fields.fill(line.title)} : " if line.title else ""
    return f"- {title}{body}{suffix}"


class _Fields:
    """The figures of one table as a summary template names them: ``measure`` (its row in total),
    ``group.measure``, and ``{label}`` in an :class:`Items` template."""

    def __init__(self, report: Report, t: Table):
        self.report, self.table = report, t
        self.columns = {c.name: c for c in t.columns}

    def get(self, name: str, row: Row | None = None):
        key, _, measure = name.rpartition(".")
        if row is None:
            row = next(r for r in self.report.rows(self.table.name) if r.key == (key or None))
        return row.values[measure], self.columns[measure].measure.unit

    def fill(self, template: str, row: Row | None = None, label: str = "") -> str:
        out = []
        for literal, name, spec, _ in string.Formatter().parse(template):
            out.append(literal)
            if name == "label":
                out.append(label)
            elif name is not None:
                out.append(_word(*self.get(name, row), spec))
        return "".join(out)

    def part(self, part: str | If | Items) -> str:
        if isinstance(part, str):
            return self.fill(part)
        if isinstance(part, If):
            if part.partner_only and self.report.partner is None:
                return ""
            text = part.text if self.get(part.field)[0] else part.otherwise
            return self.fill(text) if text else ""
        rows = [r for r in self.report.rows(self.table.name) if not part.skip_zero or r.values[part.skip_zero]]
        items = [self.fill(part.template, r, self._label(r)) for r in rows]
        return part.sep.join(items) if items else part.empty

    def _label(self, row: Row) -> str:
        """A row's words in Markdown: partners' names (from the configuration) escaped."""
        words = row_labels(self.report, self.table, row.key)
        dims = self.table.dimensions
        return " · ".join(md_escape(w) if dims and d.labels is Label.PARTNER else w
                          for w, d in zip(words, dims or [None] * len(words)))


def _word(value, unit: Unit, spec: str) -> str:
    """A figure in the summary: ``spec`` is words separated by ``:`` — a noun (``suivi``,
    ``projet accompagné|projets accompagnés``) and/or ``strong``."""
    words = spec.split(":") if spec else []
    nouns = [w for w in words if w != "strong"]
    if nouns:
        one, _, many = nouns[0].partition("|")
        text = plural(value, one, many or None)
    elif unit is Unit.MINUTES:
        text = hours_fr(value)
    elif unit is Unit.FTE:
        text = number_fr(value, 2)
    elif unit is Unit.PERCENT:
        text = f"{number_fr(value)} %"
    else:
        text = number_fr(value)
    return f"**{text}**" if "strong" in words else text


# -- tidy rows (CSV) ---------------------------------------------------------------------------

def tidy_rows(report: Report) -> list[tuple[str, str, str, str | int | Decimal]]:
    """(rubrique, groupe, indicateur, valeur): one row per group and indicator, tables in catalogue order."""
    rows: list[tuple[str, str, str, str | int | Decimal]] = []
    for t in report.catalogue.tables:
        if t.csv is None:
            continue
        for row in report.rows(t.name):
            group = t.csv.joiner.join(row_labels(report, t, row.key, csv=True))
            rows += [(t.csv.section, group, c.csv_name(), file_value(c.measure, row.values[c.name]))
                     for c in t.columns if c.csv_name() is not None and c.shown_for(row.key)]
    return rows


# -- formulas: no text cell may start what a spreadsheet reads as a formula ---------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutral(value):
    """A text that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return — a partner named ``=HYPERLINK(…)`` in the configuration, say) gets an
    apostrophe in front, as OWASP advises for CSV injection; numbers, dates and other texts are left
    as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_value(value) -> str:
    if isinstance(value, Decimal):
        return format(value, "f").replace(".", ",")
    if isinstance(value, str):
        return neutral(value)
    return str(value)


def csv_bytes(report: Report) -> bytes:
    """Tidy CSV for French spreadsheets: ``;`` separated, decimal comma, UTF-8 with BOM. Columns:
    période;périmètre;rubrique;groupe;indicateur;valeur."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["période", "périmètre", "rubrique", "groupe", "indicateur", "valeur"])
    period, scope = neutral(report.period.label), neutral(report.scope_name)
    writer.writerows([period, scope, neutral(section), neutral(group), neutral(name), _csv_value(value)]
                     for section, group, name, value in tidy_rows(report))
    return out.getvalue().encode("utf-8-sig")


# -- workbook (XLSX) ---------------------------------------------------------------------------

def xlsx_bytes(report: Report) -> bytes:
    """« Synthèse » first, with the period and the generation date; then the catalogue's sheets, with
    French headers, in table order."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    _synthesis_sheet(wb, report)
    stacked: set[str] = set()
    for t in report.catalogue.tables:
        s = t.sheet
        if isinstance(s, Sheet) and not (s.network_only and report.partner is not None):
            _flat_sheet(wb, report, t, s)
        elif isinstance(s, Pivot):
            _pivot_sheet(wb, report, t, s)
        elif isinstance(s, Stack) and s.name not in stacked:
            stacked.add(s.name)
            _stack_sheet(wb, report, [u for u in report.catalogue.tables
                                      if isinstance(u.sheet, Stack) and u.sheet.name == s.name])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _sheet(wb, name: str, headers: list[str], rows: list[list], total: list | None = None, widths=None):
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    ws = wb.create_sheet(name)
    for i, width in enumerate(widths or [34] + [14] * (len(headers) - 1)):
        ws.column_dimensions[get_column_letter(i + 1)].width = width
    ws.append([_cell(ws, h, bold) for h in headers])
    for row in rows:
        ws.append([_num(v) for v in row])
    if total is not None:
        ws.append([_cell(ws, _num(v), bold) for v in total])
    return ws


def _synthesis_sheet(wb, report: Report) -> None:
    from openpyxl.styles import Font

    bold = Font(bold=True)
    ws = wb.create_sheet("Synthèse")
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 48, 30
    ws.append([_cell(ws, f"Bilan d'accompagnement — {report.period.label}", Font(bold=True, size=14))])
    ws.append(["Période", neutral(report.period.dates_text())])
    for label, day in (("Du", report.period.start), ("Au", report.period.end)):
        cell = _cell(ws, day, None)
        cell.number_format = "DD/MM/YYYY"
        ws.append([label, cell])
    ws.append(["Périmètre", neutral(report.scope_name)])
    ws.append(["Généré le", generated_text(report)])
    ws.append([])
    ws.append([_cell(ws, "Indicateur", bold), _cell(ws, "Valeur", bold)])
    for label, value in synthesis_rows(report):
        ws.append([neutral(label), _num(value)])
    ws.append([])
    ws.append(["Les parts sont calculées sur les projets accompagnés pendant la période. Les suivis annulés ne "
               "comptent pas. Aucun nom de projet ni donnée de porteur·euse ne figure dans ce classeur."])


def _shown(t: Table) -> list[Column]:
    return [c for c in t.columns if c.header_name() is not None]


def _values(row: Row, columns: list[Column]) -> list:
    return [file_value(c.measure, row.values[c.name]) if c.shown_for(row.key) else None for c in columns]


def _flat_sheet(wb, report: Report, t: Table, s: Sheet) -> None:
    """A label column per dimension, a column per measure, the « Total » row below."""
    columns = _shown(t)
    labels = [s.headers] if isinstance(s.headers, str) else list(s.headers)
    rows = [[*row_labels(report, t, row.key), *_values(row, columns)] for row in report.rows(t.name)]
    total = None
    if s.total is not None:
        name, key = (s.total, None) if isinstance(s.total, str) else s.total
        total = ["Total", *[""] * (len(labels) - 1),
                 *(file_value(c.measure, report.value(name, c.name, key)) for c in columns)]
    _sheet(wb, s.name, labels + [c.header_name() for c in columns], rows, total, s.widths)


def _stack_sheet(wb, report: Report, tables: list[Table]) -> None:
    """Several tables in one sheet, each row starting with its table's criterion."""
    first: Stack = tables[0].sheet
    rows = [[t.sheet.criterion, *row_labels(report, t, row.key), *_values(row, _shown(t))]
            for t in tables for row in report.rows(t.name)]
    _sheet(wb, first.name, [*first.headers, *(c.header_name() for c in _shown(tables[0]))], rows, widths=first.widths)


def _pivot_sheet(wb, report: Report, t: Table, p: Pivot) -> None:
    """One row per group of ``p.rows``, one column per group of ``p.columns``, totals at the ends."""
    column = t.columns[0]
    rows_table, columns_table = report.catalogue.table(p.rows), report.catalogue.table(p.columns)
    cells = {row.key: row.values[column.name] for row in report.rows(t.name)}
    swap = t.dimensions[0] is rows_table.dimensions[0]

    def cell(r: Row, c: Row):
        return file_value(column.measure, cells.get((r.key, c.key) if swap else (c.key, r.key), 0))

    across = report.rows(p.columns)
    rows = [[*row_labels(report, rows_table, r.key), *(cell(r, c) for c in across),
             file_value(column.measure, r.values[column.name])] for r in report.rows(p.rows)]
    total = ["Total", *(file_value(column.measure, c.values[column.name]) for c in across),
             file_value(column.measure, report.value(p.total, column.name))]
    headers = [p.corner, *(row_labels(report, columns_table, c.key)[0] for c in across), "Total"]
    _sheet(wb, p.name, headers, rows, total, widths=[p.widths[0]] + [p.widths[1]] * (len(across) + 1))


def synthesis_rows(report: Report) -> list[tuple[str, int | Decimal]]:
    """The « Synthèse » rows the tables declare, in table order."""
    rows = []
    for t in report.catalogue.tables:
        columns = {c.name: c for c in t.columns}
        for entry in t.synthesis:
            label, key, name = entry if len(entry) == 3 else (entry[0], None, entry[1])
            rows.append((label, file_value(columns[name].measure, report.value(t.name, name, key))))
    return rows


def _num(value):
    """Decimals as floats (Excel numbers), texts neutralised (:func:`neutral`), the rest as is."""
    return float(value) if isinstance(value, Decimal) else neutral(value)


def _cell(ws, value, font):
    from openpyxl.cell import WriteOnlyCell
    cell = WriteOnlyCell(ws, value=neutral(value))
    if font is not None:
        cell.font = font
    return cell


# -- chart (PNG) -------------------------------------------------------------------------------

_PNG_LOCK = threading.Lock()  # matplotlib's font cache and text layout are not thread-safe
COLORS = ("#1b6ca8", "#e07a1f", "#3a9a5b", "#c23b3b", "#7d5ba6", "#8c6d31", "#d45d9c", "#5f6b73", "#1aa3a3",
          "#b5b52a")


def png_bytes(data: Report | HoursChart) -> bytes:
    """Hours by partner and month, stacked bars, French labels (matplotlib, Agg backend).

    Drawn with one PolyCollection per partner and fixed margins: ``ax.bar`` (one patch per bar) and
    ``tight_layout`` (a second layout pass) made the chart several times slower to render. Thread-safe
    (own Figure and canvas, no pyplot state; a lock around matplotlib's shared font caches).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    chart = data.chart if isinstance(data, Report) else data
    months = chart.months
    with _PNG_LOCK:
        fig = Figure(figsize=(9, 4.8), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.09, 0.2, 0.66, 0.68))
        bottom = [0.0] * len(months)
        handles = []
        for i, (name, minutes) in enumerate(chart.series):
            values = [v / 60 for v in minutes]
            verts = [((x - 0.38, b), (x - 0.38, b + v), (x + 0.38, b + v), (x + 0.38, b))
                     for x, (b, v) in enumerate(zip(bottom, values)) if v]
            color = COLORS[i % len(COLORS)]
            ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none", antialiaseds=False))
            handles.append(Patch(facecolor=color, label=_chart_text(name)))
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xlim(-0.6, max(len(months), 1) - 0.4)
        ax.set_ylim(0, max(bottom + [1.0]) * 1.08)
        if not chart.series:
            ax.text(0.5, 0.5, "Aucune heure d'accompagnement sur la période", ha="center", va="center",
                    transform=ax.transAxes, color="#555555")
        step = max(1, -(-len(months) // 18))
        x = list(range(len(months)))
        rotate = len(months) > 6
        ax.set_xticks(x[::step], [month_label(m) for m in months][::step], rotation=45 if rotate else 0,
                      ha="right" if rotate else "center", fontsize=8)
        ax.set_ylabel("heures")
        ax.yaxis.set_major_formatter(lambda v, _pos: number_fr(round(v)))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title(f"Heures d'accompagnement par structure et par mois — {chart.period.label}\n"
                     f"{_chart_text(chart.scope_name)}", fontsize=10)
        if handles:
            ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 3})
        return out.getvalue()


def _chart_text(text: str) -> str:
    """A configuration name drawn as is: matplotlib would read ``$…$`` as mathematics (and fail on a
    malformed formula)."""
    return text.replace("$", r"\$")


def render_files(report: Report) -> list[ReportFile]:
    """The three files, named after the scope and the period."""
    stem = file_stem(report)
    return [ReportFile(f"{stem}.csv", csv_bytes(report), CSV_MIMETYPE),
            ReportFile(f"{stem}.xlsx", xlsx_bytes(report), XLSX_MIMETYPE),
            ReportFile(f"{stem}.png", png_bytes(report), PNG_MIMETYPE, image=True)]

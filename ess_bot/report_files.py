"""What a :class:`~ess_bot.services.reports.Report` looks like to people: a short French summary
(Markdown), a tidy CSV, an XLSX workbook and a PNG chart. Pure functions of the report: no database,
no clock, no chat. Only counts are written — never a project label or a holder detail.

matplotlib and openpyxl are imported inside the functions that need them, so that starting the bot
does not pay for them.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ess_bot.formatting import MONTHS_FR, date_fr, join_fr, md_escape, minutes_fr, time_fr
from ess_bot.services.reports import Activity, HoursChart, Report
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_NAMES, EMPLOYMENT_STATUSES, FRR, GENDERS, LEGAL_FORMS, MINIMA,
                                MODALITIES, OUTCOMES, PHASES, QPV, ChoiceList)

CSV_MIMETYPE = "text/csv"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_MIMETYPE = "image/png"

PROFILE_TITLES: dict[str, tuple[str, ChoiceList]] = {
    "gender": ("Genre", GENDERS), "age_band": ("Tranche d'âge", AGE_BANDS),
    "employment_status": ("Statut", EMPLOYMENT_STATUSES), "minima": ("Minima sociaux", MINIMA),
    "qpv": ("QPV", QPV), "frr": ("FRR", FRR)}
NOT_RECORDED = "non renseigné"


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


def percent(report: Report, count: int) -> str:
    return f"{number_fr(report.profile.share(count))} %"


def file_stem(report: Report) -> str:
    scope = report.partner or "reseau"
    return f"rapport-{scope}-{report.period.slug}"


def generated_text(report: Report) -> str:
    return f"{date_fr(report.generated_at, weekday=False)} à {time_fr(report.generated_at)}"


# -- summary -----------------------------------------------------------------------------------

def summary_markdown(report: Report) -> str:
    """The short French summary posted with the files (and printed by ``ess-bot rapport``)."""
    t, p, o, r = report.totals, report.profile, report.outcomes, report.referrals
    period = report.period
    head = (f"📊 **Bilan d'accompagnement — {md_escape(period.label)}** ({md_escape(period.dates_text())}) · "
            f"{md_escape(report.scope_name)}")
    if not t.accompaniments:
        lines = [head, "Aucun suivi enregistré sur cette période."]
    else:
        lines = [head,
                 f"- **{plural(t.accompaniments, 'suivi')}**, {plural(t.projects, 'projet accompagné', 'projets accompagnés')} "
                 f"(dont {plural(t.new_projects, 'nouveau', 'nouveaux')}), **{hours_fr(t.minutes)}** d'accompagnement"]
        lines.append("- Par phase : " + _activity_list(
            [(PHASES.label(k), a) for k, a in report.by_phase if a.accompaniments]))
        if report.partner is None:
            lines.append("- Par structure : " + _activity_list(
                [(md_escape(report.partner_name(k)), a) for k, a in report.by_partner if a.accompaniments]))
        lines.append("- Par département : " + " · ".join(
            f"{department_label(k)} {plural(a.projects, 'projet')}" for k, a in report.by_department))
        ages = ", ".join(f"{label} {percent(report, n)}" for label, n in (
            ("moins de 26 ans", p.under_26), ("26–49 ans", p.age_26_49), ("50 ans et plus", p.over_50)))
        lines.append(f"- Porteur·euse·s de projet ({plural(p.projects, 'projet')}) : femmes {percent(report, p.women)} · "
                     f"demandeur·euse·s d'emploi {percent(report, p.job_seekers)} (dont longue durée "
                     f"{percent(report, p.long_term_job_seekers)}) · minima sociaux {percent(report, p.minima)} · "
                     f"QPV {percent(report, p.qpv)} · FRR {percent(report, p.frr)} · âge : {ages}"
                     + (f" — profil non renseigné pour {plural(p.unknown_profile, 'projet')}" if p.unknown_profile else ""))
    outcome_parts = [plural(o.creations, "création") + (f" ({number_fr(o.jobs_fte, 2)} emplois en ETP)" if o.creations else ""),
                     plural(o.abandons, "abandon")]
    if o.reorientations:
        outcome_parts.append(plural(o.reorientations, "réorientation"))
    if o.postponed:
        outcome_parts.append(plural(o.postponed, "report"))
    lines.append("- Issues : " + join_fr(outcome_parts))
    ref = [plural(r.proposed, "proposée", "proposées"), plural(r.accepted, "acceptée", "acceptées")]
    if r.refused:
        ref.append(plural(r.refused, "refusée", "refusées"))
    if r.pending:
        ref.append(f"{number_fr(r.pending)} en attente")
    text = "- Orientations : " + join_fr(ref)
    if report.partner is not None and r.proposed:
        text += f" (envoyées : {number_fr(r.sent)}, reçues : {number_fr(r.received)})"
    lines.append(text)
    lines.append("Détail dans les fichiers joints : tableau CSV, classeur Excel et graphique des heures par structure "
                 "et par mois. Seuls des effectifs y figurent, aucun nom de projet ni donnée de porteur·euse.")
    return "\n".join(lines)


def _activity_list(items: list[tuple[str, Activity]]) -> str:
    """``label n (hours)`` joined by `` · ``; the labels are Markdown (escaped by the caller)."""
    if not items:
        return "—"
    return " · ".join(f"{label} {number_fr(a.accompaniments)} ({hours_fr(a.minutes)})" for label, a in items)


# -- tidy rows (CSV) ---------------------------------------------------------------------------

def tidy_rows(report: Report) -> list[tuple[str, str, str, str | int | Decimal]]:
    """(rubrique, groupe, indicateur, valeur): one row per group and indicator."""
    rows: list[tuple[str, str, str, str | int | Decimal]] = []
    t, p, o, r = report.totals, report.profile, report.outcomes, report.referrals

    def activity(section: str, group: str, a: Activity) -> None:
        rows.append((section, group, "suivis", a.accompaniments))
        if a.projects is not None:
            rows.append((section, group, "projets", a.projects))
        rows.append((section, group, "heures", hours(a.minutes)))

    activity("Total", "tout", t.activity)
    rows.append(("Total", "tout", "nouveaux projets", t.new_projects))
    for k, a in report.by_partner:
        activity("Structure", report.partner_name(k), a)
    for k, a in report.by_phase:
        activity("Phase", PHASES.label(k), a)
    for k, a in report.by_modality:
        activity("Modalité", MODALITIES.label(k), a)
    for k, a in report.by_department:
        activity("Département", department_label(k), a)
    for k, a in report.by_month:
        activity("Mois", k, a)
    for (slug, month), minutes in report.minutes_by_partner_month:
        rows.append(("Structure et mois", f"{report.partner_name(slug)} · {month}", "heures", hours(minutes)))
    rows.append(("Profil", "projets accompagnés", "projets", p.projects))
    for label, n in _profile_headlines(report):
        rows.append(("Profil", label, "projets", n))
        rows.append(("Profil", label, "part (%)", p.share(n)))
    for dim, counts in report.profile_counts.items():
        title, clist = PROFILE_TITLES[dim]
        for key, n in counts:
            rows.append((f"Profil : {title.lower()}", clist.label(key, NOT_RECORDED), "projets", n))
    for k, c in report.by_outcome:
        rows.append(("Issue", OUTCOMES.label(k), "projets", c.projects))
        if k == "creation":
            rows.append(("Issue", OUTCOMES.label(k), "emplois (ETP)", c.jobs_fte))
    for k, c in report.creations_by_legal_form:
        rows.append(("Création par forme juridique", LEGAL_FORMS.label(k, "non renseignée"), "créations", c.projects))
        rows.append(("Création par forme juridique", LEGAL_FORMS.label(k, "non renseignée"), "emplois (ETP)",
                     c.jobs_fte))
    for name, value in (("proposées", r.proposed), ("acceptées", r.accepted), ("refusées", r.refused),
                        ("en attente", r.pending)):
        rows.append(("Orientations", "toutes", name, value))
    if report.partner is not None:
        rows += [("Orientations", "envoyées", "proposées", r.sent), ("Orientations", "reçues", "proposées", r.received)]
    for (src, dst), c in report.referrals_by_route:
        group = f"{report.partner_name(src)} → {report.partner_name(dst)}"
        for name, value in (("proposées", c.proposed), ("acceptées", c.accepted), ("refusées", c.refused),
                            ("en attente", c.pending)):
            rows.append(("Orientation par parcours", group, name, value))
    return rows


def _profile_headlines(report: Report) -> list[tuple[str, int]]:
    p = report.profile
    return [("femmes", p.women), ("demandeur·euse·s d'emploi", p.job_seekers),
            ("demandeur·euse·s d'emploi de longue durée", p.long_term_job_seekers),
            ("bénéficiaires de minima sociaux", p.minima), ("résident·e·s QPV", p.qpv), ("résident·e·s FRR", p.frr),
            ("moins de 26 ans", p.under_26), ("26–49 ans", p.age_26_49), ("50 ans et plus", p.over_50),
            ("profil non renseigné", p.unknown_profile)]


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
    """One sheet per breakdown with French headers; « Synthèse » first, with the period and the
    generation date."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold, title_font = Font(bold=True), Font(bold=True, size=14)
    t, p, o, r = report.totals, report.profile, report.outcomes, report.referrals

    def sheet(name: str, headers: list[str], rows: list[list], total: list | None = None, widths=None):
        ws = wb.create_sheet(name)
        for i, width in enumerate(widths or [34] + [14] * (len(headers) - 1)):
            ws.column_dimensions[get_column_letter(i + 1)].width = width
        ws.append([_cell(ws, h, bold) for h in headers])
        for row in rows:
            ws.append([_num(v) for v in row])
        if total is not None:
            ws.append([_cell(ws, _num(v), bold) for v in total])
        return ws

    def activity_sheet(name: str, header: str, items: list[tuple[str, Activity]]):
        """Suivis, projets (where counted) and hours by group, with the report's totals below."""
        if items and all(a.projects is None for _, a in items):
            sheet(name, [header, "Suivis", "Heures"], [[label, a.accompaniments, hours(a.minutes)] for label, a in items],
                  ["Total", t.accompaniments, hours(t.minutes)])
        else:
            sheet(name, [header, "Suivis", "Projets", "Heures"],
                  [[label, a.accompaniments, a.projects, hours(a.minutes)] for label, a in items],
                  ["Total", t.accompaniments, t.projects, hours(t.minutes)])

    ws = wb.create_sheet("Synthèse")
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 48, 30
    ws.append([_cell(ws, f"Bilan d'accompagnement — {report.period.label}", title_font)])
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

    if report.partner is None:
        activity_sheet("Structures", "Structure", [(report.partner_name(k), a) for k, a in report.by_partner])
    activity_sheet("Phases", "Phase", [(PHASES.label(k), a) for k, a in report.by_phase])
    activity_sheet("Modalités", "Modalité", [(MODALITIES.label(k), a) for k, a in report.by_modality])
    activity_sheet("Départements", "Département", [(department_label(k), a) for k, a in report.by_department])
    activity_sheet("Mois", "Mois", [(month_label(k), a) for k, a in report.by_month])

    slugs = [k for k, _ in report.by_partner]
    cells = {key: minutes for key, minutes in report.minutes_by_partner_month}
    month_totals = dict(report.by_month)
    rows = [[month_label(m)] + [hours(cells.get((s, m), 0)) for s in slugs]
            + [hours(month_totals[m].minutes) if m in month_totals else 0] for m, _ in report.by_month]
    sheet("Heures par mois", ["Mois"] + [report.partner_name(s) for s in slugs] + ["Total"], rows,
          ["Total"] + [hours(a.minutes) for _, a in report.by_partner] + [hours(t.minutes)],
          widths=[16] + [18] * (len(slugs) + 1))

    rows = []
    for dim, counts in report.profile_counts.items():
        title, clist = PROFILE_TITLES[dim]
        rows += [[title, clist.label(key, NOT_RECORDED), n, p.share(n)] for key, n in counts]
    sheet("Profils", ["Critère", "Valeur", "Projets", "Part (%)"], rows, widths=[18, 36, 12, 12])

    sheet("Issues", ["Issue", "Projets", "Emplois (ETP)"],
          [[OUTCOMES.label(k), c.projects, c.jobs_fte if k == "creation" else None] for k, c in report.by_outcome])
    sheet("Créations", ["Forme juridique", "Créations", "Emplois (ETP)"],
          [[LEGAL_FORMS.label(k, "non renseignée"), c.projects, c.jobs_fte] for k, c in report.creations_by_legal_form],
          ["Total", o.creations, o.jobs_fte])
    sheet("Orientations", ["De", "Vers", "Proposées", "Acceptées", "Refusées", "En attente"],
          [[report.partner_name(s), report.partner_name(d), c.proposed, c.accepted, c.refused, c.pending]
           for (s, d), c in report.referrals_by_route],
          ["Total", "", r.proposed, r.accepted, r.refused, r.pending], widths=[24, 24, 12, 12, 12, 12])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


SYNTHESIS_SHARES = {"26–49 ans": "Part des 26–49 ans (%)", "50 ans et plus": "Part des 50 ans et plus (%)",
                    "moins de 26 ans": "Part des moins de 26 ans (%)",
                    "profil non renseigné": "Part des profils non renseignés (%)"}


def synthesis_rows(report: Report) -> list[tuple[str, int | Decimal]]:
    t, p, o, r = report.totals, report.profile, report.outcomes, report.referrals
    rows: list[tuple[str, int | Decimal]] = [
        ("Suivis", t.accompaniments), ("Projets accompagnés", t.projects), ("Nouveaux projets", t.new_projects),
        ("Heures d'accompagnement", hours(t.minutes))]
    rows += [(SYNTHESIS_SHARES.get(label, f"Part de {label} (%)"), p.share(n)) for label, n in _profile_headlines(report)]
    rows += [("Créations", o.creations), ("Emplois créés (ETP)", o.jobs_fte), ("Abandons", o.abandons),
             ("Réorientations", o.reorientations), ("Reports", o.postponed),
             ("Orientations proposées", r.proposed), ("Orientations acceptées", r.accepted),
             ("Orientations refusées", r.refused), ("Orientations en attente", r.pending)]
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

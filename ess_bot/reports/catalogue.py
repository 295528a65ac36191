"""Every figure of the activity report, declared once (the words are in :mod:`ess_bot.reports.declare`).

A table here is computed by the database (:mod:`ess_bot.services.reports` builds the statements from
it), and shown in the CSV (``csv``), the XLSX (``sheet``, ``synthesis``) and the chat summary
(``summary``) by :mod:`ess_bot.report_files` — in the order of ``TABLES``. A new indicator is one
entry in ``TABLES`` (where it goes in the list is where it shows):

- projects by a closed-list column of the projects, say the ESUS agreement — a line of the summary,
  rows of the CSV, rows of the « Profils » sheet::

      Table("esus", (PROJECTS_ACCOMPANIED, Column(SHARE, csv=False)),
            by=Dimension("esus", PROJECTS, Project.esus, ESUS), csv=Csv("ESUS"),
            sheet=Stack("Profils", "ESUS"), summary=Line("ESUS", Items("{label} {projects}"))),

- records and hours by a joined table (the themes), with a sheet of its own::

      Table("theme", (RECORD_COUNT, MINUTES),
            by=Dimension("theme", RECORDS, AccompanimentTheme.theme, THEMES, join=AccompanimentTheme),
            csv=Csv("Thème"), sheet=Sheet("Thèmes", "Thème"),
            summary=Line("Par thème", Items(ACTIVITY_ITEM, skip_zero="records"))),

- a new measure: ``Measure(name, source, Count() | Sum(column), csv=…, header=…, unit=…, where=…)``
  in the ``columns`` of the tables that show it; a new figure of the « Synthèse »: a row of a table's
  ``synthesis``.

A combination the service cannot compute (projects by two records dimensions, say) is refused when
the service is built, naming the table. A new *source* (a new table with a date, such as the survival
answers) is a :class:`~ess_bot.reports.declare.Source` here; only a new kind of statement needs
:mod:`ess_bot.services.reports`.

What counts:

- records: live records (cancelled ones never count) dated within the period, by the partner that
  logged them (``Accompaniment.partner``);
- projects accompanied: distinct projects of those records; *new* projects: those whose first live
  record (within the same scope: the whole network, or the partner) falls within the period;
- holder profile: over the projects accompanied in the period (shares of women, job seekers…);
- outcomes: outcomes dated within the period, recorded by the partner in scope;
- referrals: referrals proposed within the period, from or to the partner in scope.

Only counts leave the database: no project label, no holder detail.
"""

from __future__ import annotations

from sqlalchemy import or_

from ess_bot.reports.declare import (FIRST_RECORD_IN_PERIOD, PROJECTS, RECORDS, Among, Catalogue, Column, Count, Csv,
                                     Dimension, Group, If, Items, Label, Line, Listing, Measure, Pivot, Share, Sheet,
                                     Source, Stack, Sum, Table, Unit, Unknown, Where)
from ess_bot.reports.sql import month_key
from ess_bot.storage.accompaniments import Accompaniment, Project, ProjectOutcome, Referral
from ess_bot.vocabulary import (AGE_BANDS, EMPLOYMENT_STATUSES, FRR, GENDERS, LEGAL_FORMS, MINIMA, MODALITIES,
                                OUTCOMES as OUTCOME_LIST, PHASES, QPV)

JOB_SEEKERS = ("de_indemnise", "de_non_indemnise", "de_longue_duree")
MINIMA_RECIPIENTS = ("rsa", "ass")

# -- dated sources -----------------------------------------------------------------------------

OUTCOMES = Source("outcomes", ProjectOutcome.date, lambda partner: ProjectOutcome.partner == partner)
REFERRALS = Source("referrals", Referral.date,
                   lambda partner: or_(Referral.from_partner == partner, Referral.to_partner == partner))

# -- dimensions --------------------------------------------------------------------------------

MONTH = Dimension("month", RECORDS, month_key(Accompaniment.date), Label.MONTH, Listing.MONTHS)
PARTNER = Dimension("partner", RECORDS, Accompaniment.partner, Label.PARTNER, Listing.PARTNERS)
PHASE = Dimension("phase", RECORDS, Accompaniment.phase, PHASES)
MODALITY = Dimension("modality", RECORDS, Accompaniment.modality, MODALITIES)
DEPARTMENT = Dimension("department", PROJECTS, Project.department, Label.DEPARTMENT, Listing.SORTED)
PROFILE = {name: Dimension(name, PROJECTS, getattr(Project, name), clist, Listing.LIST_THEN_UNKNOWN)
           for name, clist in (("gender", GENDERS), ("age_band", AGE_BANDS), ("employment_status", EMPLOYMENT_STATUSES),
                               ("minima", MINIMA), ("qpv", QPV), ("frr", FRR))}
PROFILE_TITLES = {"gender": "Genre", "age_band": "Tranche d'âge", "employment_status": "Statut",
                  "minima": "Minima sociaux", "qpv": "QPV", "frr": "FRR"}
OUTCOME = Dimension("outcome", OUTCOMES, ProjectOutcome.outcome, OUTCOME_LIST)
LEGAL_FORM = Dimension("legal_form", OUTCOMES, ProjectOutcome.legal_form, LEGAL_FORMS, Listing.FOUND,
                       missing="non renseignée")
REFERRING = Dimension("from_partner", REFERRALS, Referral.from_partner, Label.PARTNER, Listing.FOUND)
REFERRED_TO = Dimension("to_partner", REFERRALS, Referral.to_partner, Label.PARTNER, Listing.FOUND)

# -- measures ----------------------------------------------------------------------------------

RECORD_COUNT = Measure("records", RECORDS, Count(), "suivis", "Suivis")
MINUTES = Measure("minutes", RECORDS, Sum(Accompaniment.duration_minutes), "heures", "Heures", Unit.MINUTES)
PROJECTS_ACCOMPANIED = Measure("projects", PROJECTS, Count(), "projets", "Projets")
NEW_PROJECTS = Measure("new_projects", PROJECTS, Count(), "nouveaux projets", where=FIRST_RECORD_IN_PERIOD)
SHARE = Share("share", PROJECTS_ACCOMPANIED, ("total", None, "projects"), "part (%)", "Part (%)")
ACTIVITY = (RECORD_COUNT, PROJECTS_ACCOMPANIED, MINUTES)

OUTCOME_COUNT = Measure("projects", OUTCOMES, Count(), "projets", "Projets")
JOBS = Measure("jobs", OUTCOMES, Sum(ProjectOutcome.jobs_fte), "emplois (ETP)", "Emplois (ETP)", Unit.FTE)

PROPOSED = Measure("proposed", REFERRALS, Count(), "proposées", "Proposées")
ACCEPTED = Measure("accepted", REFERRALS, Count(), "acceptées", "Acceptées",
                   where=Where(Referral.status == "acceptee"))
REFUSED = Measure("refused", REFERRALS, Count(), "refusées", "Refusées", where=Where(Referral.status == "refusee"))
PENDING = Measure("pending", REFERRALS, Count(), "en attente", "En attente",
                  where=Where(Referral.status == "proposee"))

# -- groups ------------------------------------------------------------------------------------

_P = PROFILE
HOLDERS = (
    Group("accompanied", "projets accompagnés"),
    Group("women", "femmes", Among(_P["gender"], "femme")),
    Group("job_seekers", "demandeur·euse·s d'emploi", Among(_P["employment_status"], *JOB_SEEKERS)),
    Group("long_term_job_seekers", "demandeur·euse·s d'emploi de longue durée",
          Among(_P["employment_status"], "de_longue_duree")),
    Group("minima", "bénéficiaires de minima sociaux", Among(_P["minima"], *MINIMA_RECIPIENTS)),
    Group("qpv", "résident·e·s QPV", Among(_P["qpv"], "oui")),
    Group("frr", "résident·e·s FRR", Among(_P["frr"], "oui")),
    Group("under_26", "moins de 26 ans", Among(_P["age_band"], "lt26")),
    Group("age_26_49", "26–49 ans", Among(_P["age_band"], "26_49")),
    Group("over_50", "50 ans et plus", Among(_P["age_band"], "50plus")),
    Group("unknown_profile", "profil non renseigné", Unknown(*PROFILE.values())),
)
HOLDER_SHARES = (  # the « Synthèse » rows of the holders
    ("Part de femmes (%)", "women"), ("Part de demandeur·euse·s d'emploi (%)", "job_seekers"),
    ("Part de demandeur·euse·s d'emploi de longue durée (%)", "long_term_job_seekers"),
    ("Part de bénéficiaires de minima sociaux (%)", "minima"), ("Part de résident·e·s QPV (%)", "qpv"),
    ("Part de résident·e·s FRR (%)", "frr"), ("Part des moins de 26 ans (%)", "under_26"),
    ("Part des 26–49 ans (%)", "age_26_49"), ("Part des 50 ans et plus (%)", "over_50"),
    ("Part des profils non renseignés (%)", "unknown_profile"))
REFERRAL_GROUPS = (
    Group("all", "toutes"),
    Group("sent", "envoyées", Where(lambda partner: Referral.from_partner == partner), partner_only=True),
    Group("received", "reçues", Where(lambda partner: Referral.to_partner == partner), partner_only=True),
)
ALL_ONLY = ("all",)

# -- the summary's wording ---------------------------------------------------------------------

ACTIVITY_ITEM = "{label} {records} ({minutes})"
HEADLINE = ("{records:suivi:strong}, {projects:projet accompagné|projets accompagnés} "
            "(dont {new_projects:nouveau|nouveaux}), {minutes:strong} d'accompagnement")
HOLDERS_LINE = ("femmes {women.share} · demandeur·euse·s d'emploi {job_seekers.share} "
                "(dont longue durée {long_term_job_seekers.share}) · minima sociaux {minima.share} · "
                "QPV {qpv.share} · FRR {frr.share} · âge : moins de 26 ans {under_26.share}, "
                "26–49 ans {age_26_49.share}, 50 ans et plus {over_50.share}")
UNKNOWN_PROFILES = If("unknown_profile.projects", " — profil non renseigné pour {unknown_profile.projects:projet}")
OUTCOMES_LINE = Line(
    "Issues",
    If("creation.projects", "{creation.projects:création} ({creation.jobs} emplois en ETP)",
       otherwise="{creation.projects:création}"),
    "{abandon.projects:abandon}",
    If("reorientation.projects", "{reorientation.projects:réorientation}"),
    If("report.projects", "{report.projects:report}"), join="and")
REFERRALS_LINE = Line(
    "Orientations", "{all.proposed:proposée|proposées}", "{all.accepted:acceptée|acceptées}",
    If("all.refused", "{all.refused:refusée|refusées}"), If("all.pending", "{all.pending} en attente"), join="and",
    suffix=If("all.proposed", " (envoyées : {sent.proposed}, reçues : {received.proposed})", partner_only=True))

# -- the tables, in CSV and XLSX order ---------------------------------------------------------

TABLES = (
    Table("total", (*ACTIVITY, NEW_PROJECTS), csv=Csv("Total"), summary=Line(None, HEADLINE),
          synthesis=(("Suivis", "records"), ("Projets accompagnés", "projects"), ("Nouveaux projets", "new_projects"),
                     ("Heures d'accompagnement", "minutes"))),
    Table("partner", ACTIVITY, by=PARTNER, csv=Csv("Structure"),
          sheet=Sheet("Structures", "Structure", total="total", network_only=True),
          summary=Line("Par structure", Items(ACTIVITY_ITEM, skip_zero="records"), network_only=True, after="phase")),
    Table("phase", ACTIVITY, by=PHASE, csv=Csv("Phase"), sheet=Sheet("Phases", "Phase", total="total"),
          summary=Line("Par phase", Items(ACTIVITY_ITEM, skip_zero="records"))),
    Table("modality", (RECORD_COUNT, MINUTES), by=MODALITY, csv=Csv("Modalité"),
          sheet=Sheet("Modalités", "Modalité", total="total")),
    Table("department", ACTIVITY, by=DEPARTMENT, csv=Csv("Département"),
          sheet=Sheet("Départements", "Département", total="total"),
          summary=Line("Par département", Items("{label} {projects:projet}"))),
    Table("month", (RECORD_COUNT, MINUTES), by=MONTH, csv=Csv("Mois"), sheet=Sheet("Mois", "Mois", total="total")),
    Table("partner_month", (MINUTES,), by=(PARTNER, MONTH), csv=Csv("Structure et mois"),
          sheet=Pivot("Heures par mois", rows="month", columns="partner", total="total", corner="Mois")),
    Table("holders", (PROJECTS_ACCOMPANIED, Column(SHARE, skip=("accompanied",))), by=HOLDERS, csv=Csv("Profil"),
          summary=Line("Porteur·euse·s de projet ({accompanied.projects:projet})", HOLDERS_LINE, UNKNOWN_PROFILES,
                       join=""),
          synthesis=tuple((label, key, "share") for label, key in HOLDER_SHARES)),
    *(Table(f"profile:{name}", (PROJECTS_ACCOMPANIED, Column(SHARE, csv=False)), by=dim,
            csv=Csv(f"Profil : {PROFILE_TITLES[name].lower()}"),
            sheet=Stack("Profils", PROFILE_TITLES[name], widths=(18, 36, 12, 12)))
      for name, dim in PROFILE.items()),
    Table("outcome", (OUTCOME_COUNT, Column(JOBS, only=("creation",))), by=OUTCOME, csv=Csv("Issue"),
          sheet=Sheet("Issues", "Issue"), summary=OUTCOMES_LINE,
          synthesis=(("Créations", "creation", "projects"), ("Emplois créés (ETP)", "creation", "jobs"),
                     ("Abandons", "abandon", "projects"), ("Réorientations", "reorientation", "projects"),
                     ("Reports", "report", "projects"))),
    Table("legal_form", (Column(OUTCOME_COUNT, csv="créations", header="Créations"), JOBS), by=LEGAL_FORM,
          where=Among(OUTCOME, "creation"), csv=Csv("Création par forme juridique"),
          sheet=Sheet("Créations", "Forme juridique", total=("outcome", "creation"))),
    Table("referrals", (PROPOSED, *(Column(m, only=ALL_ONLY) for m in (ACCEPTED, REFUSED, PENDING))),
          by=REFERRAL_GROUPS, csv=Csv("Orientations"), summary=REFERRALS_LINE,
          synthesis=(("Orientations proposées", "all", "proposed"), ("Orientations acceptées", "all", "accepted"),
                     ("Orientations refusées", "all", "refused"), ("Orientations en attente", "all", "pending"))),
    Table("route", (PROPOSED, ACCEPTED, REFUSED, PENDING), by=(REFERRING, REFERRED_TO),
          csv=Csv("Orientation par parcours", joiner=" → "),
          sheet=Sheet("Orientations", ("De", "Vers"), total=("referrals", "all"), widths=(24, 24, 12, 12, 12, 12))),
)

CATALOGUE = Catalogue(TABLES, total="total", chart="partner_month")

"""Import of existing accompaniment spreadsheets (CSV or XLSX) for one partner.

``ess-bot import suivis.xlsx --partner bge-fc`` reads the file, recognises French headers (Projet,
Code projet, Date, Phase, Modalité, Durée, Thèmes, Note, Département, Forme juridique…; others with
``--mapping``), checks every row and prints a per-row report (line, column, value, reason, in French).
Nothing is written unless ``--apply`` is given, and then everything or nothing: one transaction.

Records go through :class:`~ess_bot.services.accompaniments.AccompanimentService`, the same rules as
``!suivi``: no e-mail or phone number in notes (RGPD), no future dates, durations of 1 minute to 12
hours. Unknown projects (by label) are created for the partner; known ones are named by label or code.
Columns holding personal data (name, e-mail, phone, address, birth date) are never read.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.parsing import (DURATION_MAX, DateParser, ParseError, PersonalDataError, check_note, choice_key,
                             clean_text, match_choice, match_list, parse_duration, parse_project_code, parse_yes_no,
                             quote)
from ess_bot.services.accompaniments import (PROFILE_LISTS, AccompanimentError, AccompanimentService, Actor,
                                             NewAccompaniment, NewProject, Profile, ProjectChanges)
from ess_bot.storage.accompaniments import Accompaniment, Project
from ess_bot.storage.db import Database
from ess_bot.text import fold
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_LIST, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LEGAL_FORMS,
                                MINIMA, MODALITIES, NATURES, NOTE_MAX, PHASES, QPV, THEMES)

# canonical field → header spellings (compared with choice_key: no case, accents or separators)
FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("code", "code projet", "code du projet", "ref projet", "référence projet"),
    "projet": ("projet", "nom du projet", "nom projet", "libellé", "libellé projet", "intitulé", "intitulé projet"),
    "date": ("date", "date du suivi", "date suivi", "date rdv", "date du rdv", "date rendez-vous", "date entretien",
             "jour"),
    "phase": ("phase", "étape", "phase d'accompagnement"),
    "modalite": ("modalité", "mode", "format", "type d'entretien", "type entretien"),
    "duree": ("durée", "temps", "temps passé", "durée du suivi"),
    "duree_minutes": ("durée (min)", "durée min", "durée (minutes)", "durée en minutes", "minutes", "nb minutes"),
    "duree_heures": ("durée (h)", "durée h", "durée (heures)", "durée en heures", "heures", "nb heures",
                     "nombre d'heures"),
    "themes": ("thèmes", "thème", "thématiques", "thématique", "sujets"),
    "note": ("note", "notes", "commentaire", "commentaires", "observations", "observation", "remarques"),
    "departement": ("département", "dept", "dep", "dpt"),
    "forme": ("forme juridique", "forme", "statut juridique", "forme juridique envisagée"),
    "nature": ("nature", "nature du projet"),
    "collectif": ("collectif", "projet collectif"),
    "esus": ("ESUS", "agrément ESUS"),
    "genre": ("genre", "sexe"),
    "age": ("âge", "tranche d'âge", "tranche âge"),
    "statut": ("statut", "situation", "situation professionnelle", "statut du porteur"),
    "minima": ("minima", "minima sociaux"),
    "qpv": ("QPV",),
    "frr": ("FRR", "ZRR"),
}
IGNORE = "ignorer"
PERSONAL_HEADERS = frozenset(choice_key(h) for h in (
    "nom", "prénom", "nom prénom", "prénom nom", "nom du porteur", "porteur", "e-mail", "email", "mail", "courriel",
    "téléphone", "tel", "portable", "mobile", "adresse", "adresse postale", "date de naissance", "naissance",
    "numéro de sécurité sociale", "handicap", "santé"))
PROJECT_FIELDS = {"departement": "department", "forme": "legal_form", "nature": "nature", "collectif": "collective",
                  "esus": "esus"}
PROFILE_FIELDS = {"genre": "gender", "age": "age_band", "statut": "employment_status", "minima": "minima",
                  "qpv": "qpv", "frr": "frr"}
CHOICES = {"departement": DEPARTMENT_LIST, "forme": LEGAL_FORMS, "nature": NATURES, "esus": ESUS, "genre": GENDERS,
           "age": AGE_BANDS, "statut": EMPLOYMENT_STATUSES, "minima": MINIMA, "qpv": QPV, "frr": FRR}
UNSET = {"legal_form": "nsp"}   # project values that a file may fill in on an existing project
MAPPING_EXAMPLE = '--mapping "Intitulé=projet,Temps passé (min)=duree_minutes"'


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, no usable column…). ``message`` is French."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RowError:
    line: int
    column: str      # the header as written in the file ("—" when the whole row is concerned)
    value: str
    reason: str


@dataclass(frozen=True)
class CreatedProject:
    code: str
    label: str


@dataclass
class ImportResult:
    file: str
    partner: str
    partner_name: str
    applied: bool = False
    rows: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)     # (header, field)
    ignored: list[tuple[str, str]] = field(default_factory=list)     # (header, why)
    errors: list[RowError] = field(default_factory=list)
    records: list[int] = field(default_factory=list)                 # record numbers (kept when applied)
    created: list[CreatedProject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_lines(self) -> int:
        return len({e.line for e in self.errors})


# -- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[tuple[int, list[Any]]]    # (line number in the file, cells)


def read_table(path: Path) -> Table:
    """The header row and the data rows (empty rows skipped) of a CSV or XLSX file."""
    if not path.exists():
        raise ImportFileError(f"Fichier introuvable : {path}.")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    raise ImportFileError(f"Format non pris en charge : {quote(path.name)}. Enregistrez le tableau en .csv ou .xlsx.")


def _read_csv(path: Path) -> Table:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[tuple[int, list[Any]]] = []
    start = 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if headers is None:
            headers = [c.strip() for c in cells]
        else:
            rows.append((line, cells))
    if headers is None:
        raise ImportFileError(f"Le fichier {quote(path.name)} est vide.")
    return Table(headers, rows)


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook gets the same French answer
        raise ImportFileError(f"Classeur illisible : {quote(path.name)} ({type(exc).__name__}). "
                              "Enregistrez-le de nouveau au format .xlsx, ou en .csv.") from None
    try:
        ws = wb.worksheets[0]
        headers: list[str] | None = None
        rows: list[tuple[int, list[Any]]] = []
        for line, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = list(values)
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            if headers is None:
                headers = ["" if c is None else str(c).strip() for c in cells]
            else:
                rows.append((line, cells))
    finally:
        wb.close()
    if headers is None:
        raise ImportFileError(f"La première feuille de {quote(path.name)} est vide.")
    return Table(headers, rows)


# -- columns -----------------------------------------------------------------------------------

def field_names() -> str:
    return ", ".join(FIELDS)


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"Intitulé=projet,Temps passé=duree_minutes"`` → {header key: field}."""
    out: dict[str, str] = {}
    if not text:
        return out
    keys = {choice_key(name): name for name in FIELDS}
    keys.update({choice_key(alias): name for name, aliases in FIELDS.items() for alias in aliases})
    keys[choice_key(IGNORE)] = IGNORE
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ImportFileError(f"Correspondance illisible : {quote(part.strip())} (il faut « Colonne=champ »). "
                                  f"Exemple : {MAPPING_EXAMPLE}")
        header, _, name = part.rpartition("=")
        target = keys.get(choice_key(name))
        if target is None:
            raise ImportFileError(f"Champ inconnu dans --mapping : {quote(name.strip())}. Champs possibles : "
                                  f"{field_names()}, ou {IGNORE}. Exemple : {MAPPING_EXAMPLE}")
        out[choice_key(header)] = target
    return out


def match_columns(headers: list[str], mapping: dict[str, str]) -> tuple[dict[int, str], list[tuple[str, str]],
                                                                        list[tuple[str, str]]]:
    """(column index → field, recognised (header, field), ignored (header, why))."""
    aliases = {choice_key(alias): name for name, spellings in FIELDS.items() for alias in (name, *spellings)}
    chosen: dict[int, str] = {}
    recognised, ignored = [], []
    used: dict[str, str] = {}
    for header in mapping:
        if header not in {choice_key(h) for h in headers}:
            shown = next((h for h in headers), "")
            raise ImportFileError(f"--mapping cite une colonne absente du fichier. Colonnes du fichier : "
                                  f"{', '.join(quote(h) for h in headers if h) or quote(shown)}.")
    for i, header in enumerate(headers):
        key = choice_key(header)
        if not key:
            continue
        target = mapping.get(key) or aliases.get(key)
        if key in PERSONAL_HEADERS and key not in mapping:
            ignored.append((header, "donnée personnelle, jamais importée — RGPD"))
            continue
        if target is None:
            ignored.append((header, f"colonne inconnue (pour l'utiliser : --mapping \"{header}=champ\")"))
            continue
        if target == IGNORE:
            ignored.append((header, "ignorée à votre demande"))
            continue
        if target in used:
            raise ImportFileError(f"Deux colonnes donnent le champ {target} : {quote(used[target])} et {quote(header)}. "
                                  f"Gardez-en une, ou ignorez l'autre : --mapping \"{header}={IGNORE}\".")
        used[target] = header
        chosen[i] = target
        recognised.append((header, target))
    present = set(chosen.values())
    missing = []
    if not present & {"code", "projet"}:
        missing.append("le projet (colonne « Projet » ou « Code projet »)")
    if "date" not in present:
        missing.append("la date (colonne « Date »)")
    if "phase" not in present:
        missing.append("la phase (colonne « Phase »)")
    if not present & {"duree", "duree_minutes", "duree_heures"}:
        missing.append("la durée (colonne « Durée », « Durée (min) » ou « Durée (h) »)")
    if missing:
        raise ImportFileError("Colonnes obligatoires introuvables : " + "; ".join(missing) + ". Colonnes du fichier : "
                              + ", ".join(quote(h) for h in headers if h) + f". Pour d'autres intitulés : {MAPPING_EXAMPLE}")
    return chosen, recognised, ignored


# -- values ------------------------------------------------------------------------------------

class CellError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def shown(value: Any) -> str:
    """A cell as written in the report (shortened)."""
    if isinstance(value, datetime):
        value = value.date() if value.time() == time(0) else value
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = re.sub(r"\s+", " ", _text(value))
    return text if len(text) <= 60 else text[:57] + "…"


_YEAR = re.compile(r"\d{4}|\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2}\b")


def parse_date_cell(value: Any, dates: DateParser, now: datetime, today: date) -> date:
    if isinstance(value, datetime):
        found = value.date()
    elif isinstance(value, date):
        found = value
    else:
        text = _text(value)
        if not text:
            raise CellError("Date manquante. Exemple : 12/11/2026.")
        if isinstance(value, (int, float)):
            raise CellError("Nombre à la place d'une date : mettez la cellule au format date, ou écrivez 12/11/2026.")
        if not _YEAR.search(text):
            raise CellError("Date sans année : écrivez-la en entier, par exemple 12/11/2026.")
        try:
            found = dates.parse(text, now, allow_future=True)
        except ParseError as exc:
            message = exc.message.split(" Exemples :")[0]
            raise CellError(message if "Exemple" in message else message + " Exemple : 12/11/2026.") from None
    if found > today:
        raise CellError(f"Date dans le futur : on n'enregistre que ce qui a déjà eu lieu (nous sommes le "
                        f"{today.strftime('%d/%m/%Y')}).")
    if found.year < 2000:
        raise CellError("Date trop ancienne.")
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = _text(value).replace(",", ".").replace(" ", "")
    return float(text) if re.fullmatch(r"\d+(?:\.\d+)?", text) else None


def parse_minutes(value: Any, unit: str) -> int:
    """A duration cell: ``1h30``/``90min`` text, an Excel time (01:30), or a number of minutes or
    hours when the column says which (``Durée (min)``, ``Durée (h)``)."""
    if isinstance(value, time):
        minutes = value.hour * 60 + value.minute
    elif isinstance(value, timedelta):
        minutes = round(value.total_seconds() / 60)
    elif isinstance(value, datetime):
        minutes = value.hour * 60 + value.minute
    else:
        text = _text(value)
        if not text:
            raise CellError("Durée manquante. Exemple : 1h30.")
        number = _number(value)
        if number is not None and unit == "minutes":
            minutes = round(number)
        elif number is not None and unit == "heures":
            minutes = round(number * 60)
        elif number is not None:
            raise CellError("Durée sans unité : écrivez 1h30 ou 90min, ou nommez la colonne « Durée (min) » ou "
                            "« Durée (h) ».")
        else:
            try:
                minutes = parse_duration(text)
            except ParseError as exc:
                raise CellError(exc.message) from None
    if not 1 <= minutes <= DURATION_MAX:
        raise CellError(f"Durée impossible : {minutes} minutes (entre 1 minute et 12 heures par suivi).")
    return minutes


@dataclass
class Row:
    line: int
    cells: dict[str, Any]                  # field → raw cell
    headers: dict[str, str]                # field → header as written
    code: str | None = None
    label: str | None = None
    date: date | None = None
    phase: str | None = None
    modality: str = "individuel"
    minutes: int | None = None
    themes: tuple[str, ...] = ()
    note: str | None = None
    project: dict[str, Any] = field(default_factory=dict)   # NewProject fields
    profile: dict[str, str] = field(default_factory=dict)   # Profile fields


def parse_row(line: int, cells: dict[str, Any], headers: dict[str, str], dates: DateParser,
              now: datetime, today: date) -> tuple[Row, list[RowError]]:
    """Every cell of a row checked on its own (the project is looked up later)."""
    row = Row(line, cells, headers)
    errors: list[RowError] = []

    def check(name: str, fn) -> None:
        if name not in cells:
            return
        try:
            fn(cells[name])
        except CellError as exc:
            errors.append(RowError(line, headers[name], shown(cells[name]), exc.reason))
        except ParseError as exc:
            errors.append(RowError(line, headers[name], shown(cells[name]), exc.message))

    def code(value):
        text = _text(value)
        if text:
            row.code = parse_project_code(text)
            if row.code is None:
                raise CellError("Code de projet illisible (forme attendue : P-7K3Q).")

    def label(value):
        text = clean_text(_text(value))
        if text:
            row.label = text

    def when(value):
        row.date = parse_date_cell(value, dates, now, today)

    def phase(value):
        if not _text(value):
            raise CellError("Phase manquante. Exemple : émergence.")
        row.phase = match_choice(_text(value), PHASES).key

    def modality(value):
        if _text(value):
            row.modality = match_choice(_text(value), MODALITIES).key

    def duration(unit):
        def parse(value):
            if _text(value) or isinstance(value, (time, timedelta)):
                row.minutes = parse_minutes(value, unit)
        return parse

    def themes(value):
        if _text(value):
            row.themes = tuple(c.key for c in match_list(_text(value), THEMES))

    def note(value):
        text = _text(value)
        if text:
            try:
                row.note = check_note(text, "la note", NOTE_MAX) or None
            except PersonalDataError as exc:
                raise CellError(exc.message.replace(" Retirez-la et recommencez.", " Retirez-la du fichier.")) from None

    check("code", code)
    check("projet", label)
    check("date", when)
    check("phase", phase)
    check("modalite", modality)
    for name, unit in (("duree", ""), ("duree_minutes", "minutes"), ("duree_heures", "heures")):
        check(name, duration(unit))
    durations = [name for name in ("duree", "duree_minutes", "duree_heures") if name in cells]
    if row.minutes is None and not any(e.column in {headers[n] for n in durations} for e in errors):
        errors.append(RowError(line, headers[durations[0]], "", "Durée manquante. Exemple : 1h30."))
    check("themes", themes)
    check("note", note)
    for name, attr in PROJECT_FIELDS.items():
        def project_value(value, name=name, attr=attr):
            if not _text(value):
                return
            if name == "collectif":
                row.project[attr] = parse_yes_no(_text(value), "collectif")
            else:
                row.project[attr] = match_choice(_text(value), CHOICES[name]).key
        check(name, project_value)
    for name, attr in PROFILE_FIELDS.items():
        def profile_value(value, name=name, attr=attr):
            if _text(value):
                row.profile[attr] = match_choice(_text(value), CHOICES[name]).key
        check(name, profile_value)
    if row.code is None and row.label is None and not any(e.column in (headers.get("code"), headers.get("projet"))
                                                           for e in errors):
        column = headers.get("projet") or headers.get("code")
        errors.append(RowError(line, column, "", "Projet manquant : indiquez son nom ou son code (P-7K3Q)."))
    return row, errors


# -- the import --------------------------------------------------------------------------------

class Importer:
    """Checks (and, when asked, records) the rows of one file for one partner."""

    def __init__(self, config: Config, clock: Clock, service: AccompanimentService | None = None):
        self.config = config
        self.clock = clock
        self.service = service or AccompanimentService(config, clock)
        self.dates = DateParser(clock.tz)

    def actor(self, partner: str, advisor: str | None) -> Actor:
        p = self.config.partner(partner)
        if p is None:
            raise ImportFileError(f"Partenaire inconnu : {quote(partner)}. Partenaires : "
                                  + ", ".join(q.slug for q in self.config.partners) + ".")
        if advisor is None:
            return Actor(user_id=f"import:{partner}", partner=partner, role="advisor")
        member = self.config.member(advisor)
        if member is None or member.partner != partner:
            raise ImportFileError(f"{advisor} n'est pas membre de {p.name} dans la configuration : les suivis importés "
                                  "doivent être attribués à un·e conseiller·ère de la structure (ou omettez --conseiller).")
        return Actor(user_id=member.user_id, partner=partner, role="advisor")

    async def run(self, db: Database, path: Path, partner: str, *, apply: bool = False, mapping: str | None = None,
                  advisor: str | None = None) -> ImportResult:
        actor = self.actor(partner, advisor)
        table = read_table(path)
        columns, recognised, ignored = match_columns(table.headers, parse_mapping(mapping))
        result = ImportResult(file=path.name, partner=partner, partner_name=self.config.partner(partner).name,
                              rows=len(table.rows), columns=recognised, ignored=ignored)
        headers = {name: table.headers[i] for i, name in columns.items()}
        now = self.clock.now()
        parsed: list[Row] = []
        for line, cells in table.rows:
            values = {name: (cells[i] if i < len(cells) else None) for i, name in columns.items()}
            row, errors = parse_row(line, values, headers, self.dates, now, self.clock.today())
            result.errors += errors
            parsed.append(row)
        async with db.sessions() as session:
            try:
                await self._record(session, actor, path, parsed, result)
            finally:
                if apply and result.ok:
                    await session.commit()
                    result.applied = True
                else:
                    await session.rollback()
        if not result.applied:
            result.records = []  # rolled back: these numbers do not exist
        return result

    async def _record(self, session, actor: Actor, path: Path, rows: list[Row], result: ImportResult) -> None:
        """Every valid row through the service, in this session (the caller commits or rolls back)."""
        bad_lines = {e.line for e in result.errors}
        projects: dict[str, Project] = {}
        lines: dict[int, int] = {}  # record number → line of this file
        for row in rows:
            if row.line in bad_lines:
                continue
            try:
                project = await self._project(session, actor, row, projects, result)
            except CellError as exc:
                column = row.headers.get("code" if row.code else "projet", "—")
                result.errors.append(RowError(row.line, column, row.code or row.label or "", exc.reason))
                continue
            duplicate = await session.scalar(select(Accompaniment.id).where(
                Accompaniment.project_id == project.id, Accompaniment.partner == actor.partner,
                Accompaniment.date == row.date, Accompaniment.phase == row.phase,
                Accompaniment.modality == row.modality, Accompaniment.duration_minutes == row.minutes,
                Accompaniment.cancelled.is_(False)).limit(1))
            if duplicate in lines:
                result.errors.append(RowError(row.line, "—", "", f"Même suivi qu'à la ligne {lines[duplicate]} (même "
                                              "projet, date, phase, modalité et durée) : ligne en double ?"))
                continue
            if duplicate is not None:
                result.errors.append(RowError(row.line, "—", "", f"Ce suivi est déjà enregistré (n°{duplicate} : même "
                                              "projet, date, phase, modalité et durée) : fichier déjà importé ?"))
                continue
            try:
                view = await self.service.log_accompaniment(session, actor, NewAccompaniment(
                    project=project.code, date=row.date, phase=row.phase, duration_minutes=row.minutes,
                    modality=row.modality, themes=row.themes, note=row.note,
                    source_event_id=f"import:{path.name[:200]}:{row.line}"))
            except AccompanimentError as exc:
                result.errors.append(RowError(row.line, "—", "", exc.message))
                continue
            await session.flush()
            result.records.append(view.id)
            lines[view.id] = row.line

    async def _project(self, session, actor: Actor, row: Row, known: dict[str, Project],
                       result: ImportResult) -> Project:
        """The row's project: by code (visible to the partner), else by exact label among the partner's
        projects, else created. Project columns must agree with an existing project's record."""
        svc = self.service
        if row.code is not None:
            try:
                view = await svc.find_project(session, actor, row.code)
            except AccompanimentError as exc:
                raise CellError(exc.message) from None
            project = await session.get(Project, view.id)
        else:
            key = fold(row.label)
            project = known.get(key)
            if project is None:
                project = await session.scalar(select(Project).where(Project.partner == actor.partner,
                                                                     Project.label_key == key).limit(1))
            if project is None:
                project = await self._create(session, actor, row, result)
            known[key] = project
        await self._agree(session, actor, row, project)
        return project

    async def _create(self, session, actor: Actor, row: Row, result: ImportResult) -> Project:
        values = dict(row.project)
        if "department" not in values:
            deps = self.config.partner(actor.partner).departments
            if len(deps) != 1:
                raise CellError(f"Nouveau projet {quote(row.label)} sans département : ajoutez une colonne « Département » "
                                f"(par exemple 25) — la structure en couvre plusieurs ({', '.join(deps)}).")
            values["department"] = deps[0]
        try:
            view = await self.service.create_project(session, actor, NewProject(label=row.label, **values))
            if row.profile:
                await self.service.set_profile(session, actor, view.code, Profile(**row.profile))
        except AccompanimentError as exc:
            raise CellError(exc.message) from None
        result.created.append(CreatedProject(view.code, view.label))
        return await session.get(Project, view.id)

    async def _agree(self, session, actor: Actor, row: Row, project: Project) -> None:
        """Values given for an existing project: equal to its record, or filling an unset value."""
        changes: dict[str, Any] = {}
        profile: dict[str, str] = {}
        for attr, value in row.project.items():
            current = getattr(project, attr)
            if current == value:
                continue
            if UNSET.get(attr) == current:
                changes[attr] = value
                continue
            raise CellError(f"{_label(attr)} : valeur différente de la fiche du projet {project.code} "
                            f"({_value_label(attr, current)} dans la fiche, {_value_label(attr, value)} ici).")
        for attr, value in row.profile.items():
            current = getattr(project, attr)
            if current is None:
                profile[attr] = value
            elif current != value:
                raise CellError(f"{_label(attr)} : valeur différente de la fiche du projet {project.code} "
                                f"({_value_label(attr, current)} dans la fiche, {_value_label(attr, value)} ici).")
        try:
            if changes:
                await self.service.update_project(session, actor, project.code, ProjectChanges(**changes))
            if profile:
                await self.service.set_profile(session, actor, project.code, Profile(**profile))
        except AccompanimentError as exc:
            raise CellError(exc.message) from None


_ATTR_LISTS = {"department": DEPARTMENT_LIST, "legal_form": LEGAL_FORMS, "nature": NATURES, "esus": ESUS,
               **PROFILE_LISTS}
_ATTR_NAMES = {"department": "Département", "legal_form": "Forme juridique", "nature": "Nature",
               "collective": "Collectif", "esus": "Agrément ESUS", "gender": "Genre", "age_band": "Tranche d'âge",
               "employment_status": "Statut", "minima": "Minima sociaux", "qpv": "QPV", "frr": "FRR"}


def _label(attr: str) -> str:
    return _ATTR_NAMES.get(attr, attr)


def _value_label(attr: str, value: Any) -> str:
    if attr == "collective":
        return "oui" if value else "non"
    clist = _ATTR_LISTS.get(attr)
    return quote(clist.label(value) if clist else str(value))


# -- the report --------------------------------------------------------------------------------

def format_result(result: ImportResult, *, apply: bool) -> str:
    """The French report printed by ``ess-bot import``."""
    mode = "import" if apply else "essai (rien n'est enregistré ; ajoutez --apply pour importer)"
    lines = [f"Import de {quote(result.file)} pour {result.partner_name} — {mode}"]
    lines.append("Colonnes reconnues : " + ", ".join(f"{quote(h)} → {f}" for h, f in result.columns) + ".")
    if result.ignored:
        lines.append("Colonnes ignorées : " + "; ".join(f"{quote(h)} ({why})" for h, why in result.ignored) + ".")
    valid = result.rows - result.error_lines
    lines.append(f"{result.rows} ligne{'s' if result.rows > 1 else ''} de données : {valid} valide{'s' if valid > 1 else ''}"
                 f", {result.error_lines} en erreur.")
    if result.errors:
        lines.append("Erreurs :")
        for e in sorted(result.errors, key=lambda e: e.line):
            where = f"ligne {e.line}" + (f", colonne {quote(e.column)}" if e.column and e.column != "—" else "")
            value = f", valeur {quote(e.value)}" if e.value else ""
            lines.append(f"- {where}{value} : {e.reason}")
        lines.append("Rien n'a été enregistré : corrigez ces lignes puis relancez (l'import se fait en entier ou "
                     "pas du tout).")
        return "\n".join(lines)
    if not result.rows:
        lines.append("Aucune ligne à importer.")
        return "\n".join(lines)
    created = ", ".join(f"{c.label}" + (f" ({c.code})" if result.applied else "") for c in result.created)
    if result.applied:
        first, last = min(result.records), max(result.records)
        numbers = f"n°{first}" if first == last else f"n°{first} à n°{last}"
        lines.append(f"✅ {len(result.records)} suivi{'s' if len(result.records) > 1 else ''} importé"
                     f"{'s' if len(result.records) > 1 else ''} ({numbers}).")
        if result.created:
            lines.append(f"Projets créés ({len(result.created)}) : {created}. Notez ces codes : ils servent aux "
                         "prochains suivis (!suivi P-XXXX …).")
    else:
        lines.append(f"Tout est prêt : {valid} suivi{'s' if valid > 1 else ''} à enregistrer"
                     + (f", et {len(result.created)} nouveau{'x' if len(result.created) > 1 else ''} projet"
                        f"{'s' if len(result.created) > 1 else ''} à créer : {created}" if result.created else "")
                     + ". Relancez avec --apply pour les enregistrer.")
    return "\n".join(lines)

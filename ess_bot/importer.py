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

import codecs
import csv
import math
import posixpath
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

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


def _from_markdown(text: str) -> str:
    """A reason from the parsers (Markdown, written for the chat) as the terminal shows it."""
    from ess_bot.framework.messages import render_markdown

    return render_markdown(text)[0]


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
    encoding: str | None = None                                      # a CSV's text encoding (codec name)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_lines(self) -> int:
        return len({e.line for e in self.errors})


# -- limits ------------------------------------------------------------------------------------

MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    """What a file may hold. The first group is about the data: when one is passed, the French message
    names the limit and the value found. The second group bounds the reading itself (an XLSX is a zip
    of XML parts that openpyxl parses): with these, the import stays well under 300 MB of memory
    whatever the file — a zip bomb, a sheet of a million empty rows, a row of a million cells, a table
    of a million strings. A partner's real spreadsheet (a few thousand rows, under 1 MB) is far from
    every one of them; the bounds are checked before openpyxl opens the file, or row by row."""

    file_bytes: int = 20 * MB             # the file as given, CSV or XLSX
    uncompressed_bytes: int = 100 * MB    # an XLSX's parts once inflated, all together
    compression_ratio: int = 100          # inflated ÷ compressed, for a part inflating to over 1 MB (real
    #                                       sheets stay under about 30; deflate tops out near 1 000)
    zip_members: int = 1_000              # parts of an XLSX (a real one has 10 to 50)
    rows: int = 20_000                    # data rows: not empty, the header row excluded (20 000 rows take
    #                                       about 2 minutes to check; the worst file of that size, 190 MB)
    lines: int = 100_000                  # lines of the file or the sheet, empty ones included
    columns: int = 200                    # cells of a row, up to its last non-empty one
    cell_chars: int = 32_767              # characters in one cell (Excel's own limit)
    # -- the reading itself
    directory_bytes: int = 1 * MB         # the zip's table of contents (zipfile holds one object per entry)
    xml_token_bytes: int = 1 * MB         # one tag or one text of an XML part (bytes between two « < »)
    sheet_rows: int = 100_000             # rows openpyxl holds at once: of a sheet declaring no dimension,
    #                                       or out of order
    row_elements: int = 50_000            # elements in one row or one shared string; fields in one CSV row
    kept_elements: int = 60_000           # elements openpyxl turns into objects (about 1 kB each): of the
    #                                       parts it parses whole (styles, workbook…) together; outside the
    #                                       rows of a sheet; outside the strings of the string table
    shared_strings: int = 200_000         # strings of the shared-string table, held in memory by openpyxl
    shared_strings_bytes: int = 20 * MB   # the XML part of that table


LIMITS = Limits()

SPLIT = "Découpez-le en plusieurs fichiers (par exemple un par année) et importez-les l'un après l'autre."
RESAVE = ("Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de nouveau au format .xlsx, ou enregistrez-le "
          "en .csv, puis relancez.")


def _n(n: int) -> str:
    """``50000`` → ``50 000`` (a narrow no-break space between thousands)."""
    return f"{n:,}".replace(",", "\u202f")


def _size(n: int) -> str:
    """A size in French: « 675 Mo », « 2,6 Mo », « 850 ko »."""
    if n >= 10 * MB:
        return f"{_n(round(n / MB))} Mo"
    if n >= MB:
        return f"{n / MB:.1f} Mo".replace(".", ",")
    if n >= 1000:
        return f"{round(n / 1000)} ko"
    return f"{n} octets"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")   # never printed to the terminal as such


def _plain(text: str) -> str:
    """A file's text as shown in a message: control characters (a terminal escape, a NUL) as spaces."""
    return _CONTROL.sub(" ", text)


# -- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: Iterable[tuple[int, list[Any]]]    # (line number in the file, cells); from open_table: read once
    encoding: str | None = None              # a CSV's text encoding (codec name); None for an XLSX


def read_table(path: Path, limits: Limits = LIMITS) -> Table:
    """The header row and every data row (empty rows skipped) of a CSV or XLSX file, in a list."""
    with open_table(path, limits) as table:
        return Table(table.headers, list(table.rows), table.encoding)


@contextmanager
def open_table(path: Path, limits: Limits = LIMITS) -> Iterator[Table]:
    """The header row and the data rows of a CSV or XLSX file, the rows read as they are used (valid
    inside the ``with``). Every bound of :class:`Limits` is checked — before reading when it can be (the
    size, the zip's table of contents and parts, the XML structure), else row by row — and each one
    passed is an :class:`ImportFileError` in French."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".csv", ".txt"):
        if not path.exists():
            raise ImportFileError(f"Fichier introuvable : {path}.")
        raise ImportFileError(f"Format non pris en charge : {quote(path.name)}. Enregistrez le tableau en .csv ou "
                              ".xlsx.")
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ImportFileError(f"{quote(path.name)} n'est pas un fichier (un dossier ?). Donnez le chemin du "
                                  "tableau, par exemple suivis.xlsx.")
    except FileNotFoundError:
        raise ImportFileError(f"Fichier introuvable : {path}.") from None
    except OSError as exc:
        raise ImportFileError(f"Impossible de lire {path} : {exc.strerror or exc}.") from None
    if size > limits.file_bytes:
        raise ImportFileError(f"Le fichier {quote(path.name)} fait {_size(size)} ; la limite est "
                              f"{_size(limits.file_bytes)}. {SPLIT}")
    # openpyxl warns in English (a date out of range, an unknown extension): the report says what matters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if suffix in (".xlsx", ".xlsm"):
            with _xlsx_lines(path, size, limits) as lines:
                yield _table(path.name, lines, limits, None,
                             f"La première feuille de {quote(path.name)} est vide.")
        else:
            encoding, lines = _csv_lines(path, limits)
            yield _table(path.name, lines, limits, encoding, f"Le fichier {quote(path.name)} est vide.")


def _table(name: str, lines: Iterator[tuple[int, Sequence[Any]]], limits: Limits, encoding: str | None,
           empty: str) -> Table:
    source = _bounded(name, lines, limits)
    for _line, cells in source:
        headers = [_header(c) for c in cells]
        break
    else:
        raise ImportFileError(empty)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for count, (line, cells) in enumerate(source, start=1):
            if count > limits.rows:
                raise ImportFileError(f"{quote(name)} compte plus de {_n(limits.rows)} lignes de données (la "
                                      f"{_n(count)}e est à la ligne {_n(line)}) ; la limite est {_n(limits.rows)}. "
                                      f"{SPLIT}")
            yield line, cells

    return Table(headers, rows(), encoding)


def _header(cell: Any) -> str:
    text = _plain("" if cell is None else str(cell)).strip()
    return text if len(text) <= 100 else text[:99] + "…"


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _bounded(name: str, lines: Iterator[tuple[int, Sequence[Any]]],
             limits: Limits) -> Iterator[tuple[int, list[Any]]]:
    """The non-empty rows (trailing empty cells dropped), each within the limits of lines, columns and
    cell length."""
    for line, cells in lines:
        if line > limits.lines:
            raise ImportFileError(f"{quote(name)} va au-delà de {_n(limits.lines)} lignes (ligne {_n(line)} atteinte, "
                                  f"lignes vides comprises) ; la limite est {_n(limits.lines)}. Supprimez les lignes "
                                  f"vides en bas du tableau, ou {SPLIT[0].lower()}{SPLIT[1:]}")
        last = len(cells)
        while last and _empty(cells[last - 1]):
            last -= 1
        if not last:
            continue
        if last > limits.columns:
            raise ImportFileError(f"La ligne {_n(line)} de {quote(name)} compte {_n(last)} colonnes ; la limite est "
                                  f"{_n(limits.columns)}. Gardez seulement les colonnes utiles au suivi (Projet, "
                                  "Date, Phase, Durée…), puis relancez.")
        for i, cell in enumerate(cells[:last]):
            if isinstance(cell, str) and len(cell) > limits.cell_chars:
                hint = " (un guillemet « \" » non fermé ?)" if "\n" in cell else ""
                raise ImportFileError(f"La cellule de la ligne {_n(line)}, colonne n°{i + 1} de {quote(name)} fait "
                                      f"{_n(len(cell))} caractères{hint} ; la limite est {_n(limits.cell_chars)} "
                                      "(celle d'Excel). Raccourcissez-la, puis relancez.")
        yield line, list(cells[:last])


# -- CSV: encodings ----------------------------------------------------------------------------

# byte order marks, longest first (a UTF-32 LE mark begins with the UTF-16 LE one)
_BOMS = ((codecs.BOM_UTF32_LE, "utf_32"), (codecs.BOM_UTF32_BE, "utf_32"), (codecs.BOM_UTF8, "utf_8_sig"),
         (codecs.BOM_UTF16_LE, "utf_16"), (codecs.BOM_UTF16_BE, "utf_16"))
# what charset-normalizer may propose once UTF-8 has failed: the encodings of French spreadsheets (Windows,
# Mac, DOS, Unix), the Unicode ones for a file without a byte order mark
_DETECTED = ("cp1252", "iso8859_15", "latin_1", "mac_roman", "cp850", "utf_16", "utf_32")
_SINGLE_BYTE = frozenset({"cp1252", "iso8859_15", "latin_1", "mac_roman", "cp850"})
ENCODING_NAMES = {"utf_8": "UTF-8", "utf_8_sig": "UTF-8", "utf_16": "UTF-16", "utf_32": "UTF-32",
                  "cp1252": "Windows-1252", "iso8859_15": "ISO-8859-15", "latin_1": "ISO-8859-1 (Latin-1)",
                  "mac_roman": "Mac Roman", "cp850": "DOS (cp850)"}
# characters of French text beyond ASCII: they decide between single-byte encodings that all decode a file
# (é is 0xE9 in Windows-1252, 0x8E in Mac Roman, 0x82 in cp850)
_FRENCH = frozenset("àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ«»’‘“”–—…€°·\u00a0\u202f")
_ASCII = bytes(range(128))


def _french_score(raw: bytes, encoding: str) -> int:
    """How French the non-ASCII bytes of ``raw`` read in a single-byte ``encoding``."""
    high = raw.translate(None, _ASCII)
    score = 0
    for byte in set(high):
        count = high.count(byte)
        try:
            char = bytes([byte]).decode(encoding)
        except UnicodeDecodeError:
            score -= 3 * count
            continue
        score += 2 * count if char in _FRENCH else 0 if char.isalpha() else -count
    return score


def _candidates(raw: bytes) -> list[str]:
    """charset-normalizer's proposals for a file that is not UTF-8, the single-byte ones ranked by how
    French they read (the library cannot tell Windows-1252, Mac Roman and cp850 apart on a short file)."""
    from charset_normalizer import from_bytes

    proposed = [m.encoding for m in from_bytes(raw, cp_isolation=list(_DETECTED))]
    unicode = [e for e in proposed if e not in _SINGLE_BYTE]
    single = [e for e in proposed if e in _SINGLE_BYTE]
    scores = {e: _french_score(raw, e) for e in single}
    return unicode + sorted(single, key=lambda e: -scores[e])


def decode_text(name: str, raw: bytes) -> tuple[str, str]:
    """(text, codec name) of a CSV file: its byte order mark, else UTF-8, else what charset-normalizer
    detects. A failure names the encodings tried."""
    if raw.startswith(b"PK\x03\x04"):
        raise ImportFileError(f"{quote(name)} est en réalité un classeur Excel (.xlsx) : renommez-le en .xlsx, ou "
                              "enregistrez-le en .csv depuis votre tableur, puis relancez.")
    if raw.startswith(_OLE):
        raise ImportFileError(_OLE_MESSAGE.format(name=quote(name)))
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return _text_only(name, raw.decode(encoding), encoding), encoding
            except UnicodeDecodeError as exc:
                label = ENCODING_NAMES[encoding]
                raise ImportFileError(f"{quote(name)} commence par la marque d'un texte {label} mais ne se lit pas en "
                                      f"{label} (octet illisible à la position {_n(exc.start)}). Enregistrez-le de "
                                      "nouveau en « CSV UTF-8 » depuis votre tableur, puis relancez.") from None
    try:
        return _text_only(name, raw.decode("utf_8"), "utf_8"), "utf_8"
    except UnicodeDecodeError as exc:
        position = exc.start
    tried = ["UTF-8"]
    for encoding in _candidates(raw):
        tried.append(ENCODING_NAMES[encoding])
        try:
            return _text_only(name, raw.decode(encoding), encoding), encoding
        except UnicodeDecodeError:
            continue
    if b"\x00" in raw:
        raise ImportFileError(_BINARY.format(name=quote(name)))
    raise ImportFileError(f"Encodage de {quote(name)} non reconnu : ce n'est pas de l'UTF-8 (octet illisible à la "
                          f"position {_n(position)}), et il ne ressemble à du texte dans aucun des autres encodages essayés ("
                          f"{', '.join(tried[1:]) or ', '.join(ENCODING_NAMES[e] for e in _DETECTED)}). Enregistrez "
                          "le tableau en « CSV UTF-8 » depuis votre tableur (Enregistrer sous…), puis relancez.")


_BINARY = ("{name} n'est pas un fichier texte (il contient des octets nuls) : est-ce bien un tableau CSV ? "
           "Enregistrez le tableau en « CSV UTF-8 » depuis votre tableur, puis relancez.")


def _text_only(name: str, text: str, encoding: str) -> str:
    if "\x00" in text:
        raise ImportFileError(_BINARY.format(name=quote(name)))
    return text


# -- CSV: rows ---------------------------------------------------------------------------------

_NEWLINE = re.compile(r"\r\n|\r|\n")    # Windows, old Mac (Excel's « CSV Macintosh ») and Unix line ends


def _csv_lines(path: Path, limits: Limits) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """(encoding, every record with the number of its first line, empty ones included)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"Impossible de lire {path} : {exc.strerror or exc}.") from None
    text, encoding = decode_text(path.name, raw)
    del raw
    first = _NEWLINE.search(text)
    header = text[:first.start()] if first else text
    delimiter = max((";", ",", "\t"), key=header.count)

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(_physical_lines(path.name, text, delimiter, limits), delimiter=delimiter)
        start = 1
        try:
            for cells in reader:
                yield start, cells
                start = reader.line_num + 1
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise ImportFileError(f"Une cellule de {quote(path.name)} commençant ligne {_n(start)} fait plus de "
                                      f"{_n(csv.field_size_limit())} caractères (un guillemet « \" » non fermé ?) ; "
                                      f"la limite est {_n(limits.cell_chars)}. Raccourcissez-la, puis relancez.") from None
            raise ImportFileError(f"CSV illisible dans {quote(path.name)} vers la ligne {_n(reader.line_num)} : "
                                  "vérifiez les guillemets de cette ligne, ou enregistrez de nouveau le tableau en "
                                  "« CSV UTF-8 » depuis votre tableur.") from None

    return encoding, records()


def _physical_lines(name: str, text: str, delimiter: str, limits: Limits) -> Iterator[str]:
    """The lines of ``text``, ends kept (the csv module's input), without copying it whole. A record is
    held by the csv module as a list of fields: its separators are counted first (a record may span lines
    inside quotes) so that one line of a million empty fields never reaches it."""
    pending = 0          # separators of the record being read
    quoted = False       # inside a quoted field at the end of the previous line
    start = number = 0
    for end in _line_ends(text):
        line = text[start:end]
        start = end
        number += 1
        pending += line.count(delimiter)
        if pending > limits.row_elements:
            raise ImportFileError(f"La ligne {_n(number)} de {quote(name)} compte plus de {_n(limits.row_elements)} "
                                  f"séparateurs « {_plain(delimiter)} » ; la limite est {_n(limits.columns)} colonnes. "
                                  "Gardez seulement les colonnes utiles au suivi, puis relancez.")
        if line.count('"') % 2:
            quoted = not quoted
        if not quoted:
            pending = 0
        yield line


def _line_ends(text: str) -> Iterator[int]:
    for match in _NEWLINE.finditer(text):
        yield match.end()
    if not text.endswith(("\n", "\r")) and text:
        yield len(text)


# -- XLSX: the zip, before openpyxl opens it ---------------------------------------------------

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # Excel 97-2003, or an .xlsx protected by a password
_OLE_MESSAGE = ("{name} est un classeur Excel 97-2003 (.xls) ou protégé par un mot de passe : ouvrez-le dans Excel "
                "ou LibreOffice et enregistrez-le au format .xlsx (sans mot de passe) ou en .csv, puis relancez.")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STREAMED = {"worksheet": f"{_MAIN} row", "sst": f"{_MAIN} si"}   # root → the element openpyxl reads one by one
_CELL, _FORMULA, _VALUE, _INLINE = (f"{_MAIN} {t}" for t in ("c", "f", "v", "is"))
_WORKBOOK_TYPES = frozenset(f"application/vnd.{t}.main+xml" for t in (
    "openxmlformats-officedocument.spreadsheetml.sheet", "openxmlformats-officedocument.spreadsheetml.template",
    "ms-excel.sheet.macroEnabled", "ms-excel.template.macroEnabled"))
_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_CHUNK = 1 << 16


@dataclass
class _Part:
    """What openpyxl would hold of one part of the zip, counted by one streaming pass (expat, no tree)."""
    root: str = ""          # "worksheet" or "sst" (streamed by openpyxl, one row or one string at a time),
    #                         "xml" (any other XML), "" (not XML: an image, a binary part)
    elements: int = 0       # of an "xml" part: all of them (what openpyxl holds if it parses the part whole)
    unvalued: int = 0       # of a worksheet: formulas without a computed value
    first_unvalued: str = ""


@contextmanager
def _xlsx_lines(path: Path, size: int, limits: Limits) -> Iterator[Iterator[tuple[int, tuple[Any, ...]]]]:
    """Every row of the first worksheet (empty ones included), numbered, once the zip and its XML have
    been checked against the limits; openpyxl in read-only streaming mode."""
    name = path.name
    try:
        _check_zip_head(path, name, size, limits)
        with zipfile.ZipFile(path) as archive:
            parts = _check_zip(archive, name, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise ImportFileError(f"Classeur illisible : {quote(name)} est une archive abîmée ({_plain(str(exc))[:80]}). "
                              f"{RESAVE}") from None
    from openpyxl import load_workbook
    try:
        workbook = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook gets the same French answer
        raise ImportFileError(f"Classeur illisible : {quote(name)} ({type(exc).__name__}). "
                              "Enregistrez-le de nouveau au format .xlsx, ou en .csv.") from None
    try:
        if not workbook.worksheets:
            raise ImportFileError(f"Classeur illisible : {quote(name)} ne contient aucune feuille de calcul (seulement "
                                  "des graphiques ?). Mettez le tableau des suivis en première feuille, puis relancez.")
        sheet = workbook.worksheets[0]
        part = parts.get(getattr(sheet, "_worksheet_path", ""))
        if part is not None and part.unvalued:
            raise ImportFileError(f"La première feuille de {quote(name)} contient {_n(part.unvalued)} formule"
                                  f"{'s' if part.unvalued > 1 else ''} jamais calculée{'s' if part.unvalued > 1 else ''} "
                                  f"({'la première ' if part.unvalued > 1 else ''}en {_plain(part.first_unvalued)[:20] or '?'}) : "
                                  f"{'leur valeur est inconnue' if part.unvalued > 1 else 'sa valeur est inconnue'}."
                                  " Ouvrez le fichier dans Excel ou LibreOffice et enregistrez-le (les valeurs "
                                  "sont alors calculées), ou collez les valeurs à la place des formules, puis relancez.")
        sheet.reset_dimensions()   # a wrong <dimension> would pad every row to it
        yield _sheet_rows(name, sheet)
    finally:
        workbook.close()


def _sheet_rows(name: str, sheet) -> Iterator[tuple[int, tuple[Any, ...]]]:
    line = 0
    try:
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, values
    except Exception as exc:  # noqa: BLE001 - a hostile cell (a number of 5 000 digits…) is a French message
        raise ImportFileError(f"Classeur illisible : {quote(name)}, cellule illisible vers la ligne {_n(line + 1)} "
                              f"({type(exc).__name__}). {RESAVE}") from None


def _check_zip_head(path: Path, name: str, size: int, limits: Limits) -> None:
    """The file is a zip, with a table of contents of a sensible size (zipfile builds one object per
    entry before anything can be counted)."""
    with path.open("rb") as f:
        head = f.read(8)
        if head.startswith(_OLE):
            raise ImportFileError(_OLE_MESSAGE.format(name=quote(name)))
        if not head.startswith(b"PK"):
            if not head:
                raise ImportFileError(f"Classeur illisible : {quote(name)} est vide (0 octet). {RESAVE}")
            if _looks_like_text(path):
                raise ImportFileError(f"Classeur illisible : {quote(name)} est un fichier texte, pas un classeur "
                                      ".xlsx (un CSV renommé ?). Renommez-le en .csv, puis relancez.")
            raise ImportFileError(f"Classeur illisible : {quote(name)} n'est pas un classeur .xlsx (ce n'est pas une "
                                  f"archive zip). {RESAVE}")
        find_end = getattr(zipfile, "_EndRecData", None)   # zipfile's own reading of the end record (private,
        if find_end is None:                                # stable since Python 2): skip the check without it
            return
        end = find_end(f)
        if end is None:
            raise ImportFileError(f"Classeur illisible : {quote(name)} est une archive zip incomplète ou abîmée (fin "
                                  f"introuvable). {RESAVE}")
        directory = end[zipfile._ECD_SIZE]
        if directory > limits.directory_bytes:
            raise ImportFileError(f"Le classeur {quote(name)} a une table des matières de {_size(directory)} ; la limite "
                                  f"est {_size(limits.directory_bytes)}. Ce n'est pas un classeur ordinaire. {RESAVE}")


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as f:
        sample = f.read(4096)
    return b"\x00" not in sample and all(b >= 32 or b in b"\t\r\n" for b in sample[:512].replace(b"\xef\xbb\xbf", b""))


def _check_zip(archive: zipfile.ZipFile, name: str, limits: Limits) -> dict[str, _Part]:
    """The zip's entries (number, sizes, compression ratio), then every part streamed once through expat
    to count what openpyxl would hold of it, then the parts openpyxl parses whole, found by their role;
    returns what was counted per part."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > limits.zip_members:
        raise ImportFileError(f"Le classeur {quote(name)} contient {_n(len(infos))} parties ; la limite est "
                              f"{_n(limits.zip_members)}. Ce n'est pas un classeur ordinaire. {RESAVE}")
    total = sum(i.file_size for i in infos)
    if total > limits.uncompressed_bytes:
        raise ImportFileError(f"Le classeur {quote(name)} fait {_size(total)} une fois décompressé ; la limite est "
                              f"{_size(limits.uncompressed_bytes)}. {SPLIT} Ou enregistrez-le en .csv.")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MB and ratio > limits.compression_ratio:
            raise ImportFileError(f"Le classeur {quote(name)} se décompresse {_n(round(ratio))} fois "
                                  f"({_plain(info.filename)[:80]} : {_size(info.compress_size)} → "
                                  f"{_size(info.file_size)}) ; la limite est {_n(limits.compression_ratio)} fois. "
                                  f"Ce n'est pas un classeur ordinaire. {RESAVE}")
        if info.flag_bits & 0x1:
            raise ImportFileError(f"Classeur illisible : {quote(name)} est chiffré. {RESAVE}")
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        kind = archive.read("mimetype")[:100].decode("ascii", "replace") if "mimetype" in names else ""
        what = ("un classeur OpenDocument (.ods) renommé" if "spreadsheet" in kind else
                "un document OpenDocument renommé" if kind else "une archive zip, pas un classeur Excel")
        raise ImportFileError(f"Classeur illisible : {quote(name)} est {what} (aucune feuille de calcul dedans). "
                              f"{RESAVE}")
    parts = {i.filename: _scan_part(archive, i, name, limits) for i in infos}
    _check_parsed(archive, parts, name, limits)
    return parts


def _structure(name: str, part: str, what: str) -> ImportFileError:
    return ImportFileError(f"Le classeur {quote(name)} a une structure inhabituelle ({_plain(part)[:80]} : {what}). "
                           f"Ce n'est pas un classeur ordinaire. {RESAVE}")


_DIMENSION, _SHEET_DATA = f"{_MAIN} dimension", f"{_MAIN} sheetData"


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: Limits) -> _Part:
    """One pass of expat over a part, no tree kept, stopping at the first bound passed: the size of a tag
    or a text; for a worksheet, the rows openpyxl holds (all of them when no <dimension> comes first, the
    ones out of order always), the elements of one row and those outside the rows; for the string table,
    its size, its strings, the elements of one string and those outside. A part that is not XML, or stops
    being well-formed, ends the pass: openpyxl never reads it, or fails at the same place."""
    part = _Part()
    where = info.filename
    depth = item_depth = item_elements = items = loose = last_row = out_of_order = 0
    sized = unsized = False              # a <dimension> before <sheetData>, or <sheetData> without one
    cell: list[Any] | None = None        # [reference, has a formula, has a value, type] of the cell being read
    in_value = False

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, item_depth, item_elements, items, loose, last_row, out_of_order, sized, unsized, cell
        nonlocal in_value
        depth += 1
        if depth == 1:
            uri, _, local = tag.rpartition(" ")
            part.root = local if uri == _MAIN and local in _STREAMED else "xml"
        if len(attrs) > 100:
            raise _structure(name, where, f"un élément de {_n(len(attrs))} attributs")
        if part.root == "xml":
            part.elements += 1
        elif item_depth:
            item_elements += 1
            if item_elements > limits.row_elements:
                raise _structure(name, where, f"plus de {_n(limits.row_elements)} éléments dans une seule ligne ou "
                                              "un seul texte")
            if tag == _CELL:
                cell = [attrs.get("r", ""), False, False, attrs.get("t", "n")]
            elif cell is not None and tag == _FORMULA:
                cell[1] = True
            elif cell is not None and tag == _INLINE:
                cell[2] = True
            elif cell is not None and tag == _VALUE:
                in_value = True
        elif tag == _STREAMED[part.root]:
            item_depth, item_elements = depth, 1
            items += 1
            if part.root == "sst":
                if items > limits.shared_strings:
                    raise _structure(name, where, f"plus de {_n(limits.shared_strings)} textes différents ; la limite "
                                                  f"est {_n(limits.shared_strings)}")
                return
            if sum(map(len, attrs.values())) > 1000:
                raise _structure(name, where, "une ligne aux attributs démesurés")
            r = attrs.get("r")
            row = int(r) if r and r.isdigit() and len(r) < 10 else last_row + 1 if not r else 0
            if row <= last_row:            # openpyxl keeps it, and does not give it to the reader
                out_of_order += 1
            last_row = max(last_row, row)
            if (unsized and items > limits.sheet_rows) or out_of_order > limits.sheet_rows:
                raise _structure(name, where, f"plus de {_n(limits.sheet_rows)} lignes "
                                              + ("sans dimensions déclarées" if unsized else "dans le désordre"))
        else:
            loose += 1
            if loose > limits.kept_elements:
                raise _structure(name, where, f"plus de {_n(limits.kept_elements)} éléments hors des "
                                              + ("lignes" if part.root == "worksheet" else "textes"))
            if tag == _DIMENSION and not unsized:
                sized = True
            elif tag == _SHEET_DATA and not sized:
                unsized = True

    def end(tag: str) -> None:
        nonlocal depth, item_depth, cell, in_value
        if tag == _VALUE:
            in_value = False
        elif tag == _CELL and cell is not None:
            if cell[1] and not cell[2] and cell[3] not in ("str", "inlineStr"):
                part.unvalued += 1
                part.first_unvalued = part.first_unvalued or cell[0]
            cell = None
        if depth == item_depth:
            item_depth = 0
        depth -= 1

    def text(data: str) -> None:
        if in_value and cell is not None and data:
            cell[2] = True

    def refuse(*_args: Any) -> None:
        raise _structure(name, where, "une déclaration de type de document (DOCTYPE)")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    with archive.open(info) as stream:
        chunk = stream.read(_CHUNK)
        if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or chunk[1:2] == b"\x00":
            if b"<\x00" in chunk[:8] or b"\x00<" in chunk[:8]:
                raise _structure(name, where, "du XML en UTF-16, qu'un tableur n'écrit pas")
            return part
        body = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not body.startswith(b"<"):
            return part                       # not XML: an image, a binary part
        declaration = len(chunk) - len(body) if body.startswith(b"<?xml") else -1
        offset = run = 0
        carry = b""
        while chunk:
            # expat holds a whole tag, comment or instruction in memory before its handler runs
            window = carry + chunk
            for mark in (b"<!", b"<?"):
                found = window.find(mark)
                while found >= 0:
                    if not (mark == b"<?" and offset - len(carry) + found == declaration):
                        raise _structure(name, where, "une déclaration, un commentaire ou une instruction XML, "
                                                      "qu'un tableur n'écrit pas")
                    found = window.find(mark, found + 1)
            pieces = chunk.split(b"<")
            run += len(pieces[0])
            if max(run, max(map(len, pieces[1:-1]), default=0)) > limits.xml_token_bytes:
                raise _structure(name, where, f"une balise ou un texte de plus de {_size(limits.xml_token_bytes)}")
            if len(pieces) > 1:
                run = len(pieces[-1])
            try:
                parser.Parse(chunk, False)
            except expat.ExpatError:
                return part                   # not well-formed: openpyxl fails at the same place
            offset += len(chunk)
            if part.root == "sst" and offset > limits.shared_strings_bytes:
                raise _structure(name, where, f"une table de textes de plus de {_size(limits.shared_strings_bytes)} ; "
                                              f"la limite est {_size(limits.shared_strings_bytes)}")
            carry = chunk[-1:]
            chunk = stream.read(_CHUNK)
        try:
            parser.Parse(b"", True)
        except expat.ExpatError:
            pass
    return part


_FIXED = ("[Content_Types].xml", "docProps/core.xml", "docProps/custom.xml", "xl/styles.xml", "xl/workbook.xml")


def _check_parsed(archive: zipfile.ZipFile, parts: dict[str, _Part], name: str, limits: Limits) -> None:
    """The parts openpyxl parses whole in read-only mode (content types, workbook, styles, properties,
    relationships, chart sheets and what they draw), found as openpyxl finds them, hold at most
    ``kept_elements`` elements together; a worksheet or the string table is streamed, never used for
    another role, nor one for the other (what a streamed part holds was counted row by row above, what
    any other part holds, element by element)."""
    def kind(part: str) -> str:
        found = parts.get(part)
        return found.root if found else ""

    misused = "une feuille ou une table de textes utilisée pour autre chose"
    parsed: set[str] = set()

    def add(part: str) -> None:
        if part in parts and part not in parsed:
            if kind(part) in _STREAMED:
                raise _structure(name, part, misused)
            parsed.add(part)
            total = sum(parts[p].elements for p in parsed)
            if total > limits.kept_elements:
                raise _structure(name, part, f"plus de {_n(limits.kept_elements)} éléments XML dans les parties lues en "
                                             "entier (styles, classeur, relations…)")

    rels_parts = [p for p in parts if p.endswith(".rels")]
    for part in (*_FIXED, *rels_parts):   # counted before any is parsed below
        add(part)

    def tree(part: str) -> ElementTree.Element | None:
        try:
            return ElementTree.fromstring(archive.read(part))
        except (ElementTree.ParseError, KeyError):
            return None                       # openpyxl stops there too, or never reads it

    types = tree("[Content_Types].xml")
    for override in types.iter() if types is not None else ():
        part, content = override.get("PartName", "").lstrip("/"), override.get("ContentType", "")
        if content in _WORKBOOK_TYPES:
            add(part)
        elif content == _STRINGS_TYPE and kind(part) != "sst":
            add(part)                         # read as a string table: what it holds is kept
    relations: dict[str, list[tuple[str, str]]] = {}     # owner part → [(type, target)]
    for rels in rels_parts:
        root = tree(rels)
        folder = posixpath.dirname(rels)
        owner = posixpath.join(posixpath.dirname(folder), posixpath.basename(rels)[:-len(".rels")])
        parent = posixpath.split(folder)[0]
        for rel in root.iter() if root is not None else ():
            target = rel.get("Target")
            if target is None or rel.get("TargetMode") == "External":
                continue
            # resolved as openpyxl's get_dependents does
            target = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(parent, target))
            relations.setdefault(owner, []).append((rel.get("Type", ""), target))
    pending: list[str] = []
    for owner, rels in relations.items():
        for relation, target in rels:
            if relation.endswith("/worksheet"):
                if kind(target) != "worksheet":
                    add(target)               # streamed as a sheet, yet not one: everything in it is kept
            elif relation.endswith("/sharedStrings"):
                if kind(target) == "worksheet":
                    raise _structure(name, target, misused)
            elif kind(target) in _STREAMED:
                raise _structure(name, target, misused)
            elif "chartsheet" in relation:
                pending.append(target)
    while pending:                            # a chart sheet, its drawing, its charts: parsed whole
        part = pending.pop()
        if part in parsed:
            continue
        add(part)
        pending += [target for _relation, target in relations.get(part, ())]


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
        raise ImportFileError("Colonnes obligatoires introuvables : " + " ; ".join(missing) + ". Colonnes du fichier : "
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
    text = re.sub(r"\s+", " ", _plain(_text(value))).strip()
    return text if len(text) <= 60 else text[:57] + "…"


EXCEL_ERRORS = frozenset({"#VALUE!", "#REF!", "#DIV/0!", "#N/A", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!",
                          "#GETTING_DATA", "#VALEUR!", "#NOM?", "#NOMBRE!", "#NUL!"})   # English and French Excel
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
        if len(text) > 40:
            raise CellError("Date illisible : bien trop longue pour une date. Exemple : 12/11/2026.")
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
        raise CellError("Date trop ancienne : on n'importe rien d'avant l'an 2000.")
    return found


def _number(value: Any) -> float | None:
    """A cell's number (``inf`` when too large for a float: a hostile 400-digit cell), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf
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
        if number is not None and unit in ("minutes", "heures") and not (-1e6 < number < 1e6):
            raise CellError(f"Durée impossible : {shown(value)} {unit} (entre 1 minute et 12 heures par suivi).")
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
        if isinstance(cells[name], str) and cells[name].strip() in EXCEL_ERRORS:
            errors.append(RowError(line, headers[name], shown(cells[name]), "Valeur d'erreur du tableur (une formule en "
                                   "erreur, ou une date hors limites) : corrigez cette cellule, puis relancez."))
            return
        try:
            fn(cells[name])
        except CellError as exc:
            errors.append(RowError(line, headers[name], shown(cells[name]), exc.reason))
        except ParseError as exc:
            errors.append(RowError(line, headers[name], shown(cells[name]), exc.message))
        except (ArithmeticError, ValueError, TypeError):   # a hostile value no parser expected: never a traceback
            errors.append(RowError(line, headers[name], shown(cells[name]), "Valeur illisible."))

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

    def __init__(self, config: Config, clock: Clock, service: AccompanimentService | None = None,
                 limits: Limits = LIMITS):
        self.config = config
        self.clock = clock
        self.service = service or AccompanimentService(config, clock)
        self.dates = DateParser(clock.tz)
        self.limits = limits

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
        now = self.clock.now()
        parsed: list[Row] = []
        with open_table(path, self.limits) as table:   # read as parsed: only the recognised columns are kept
            columns, recognised, ignored = match_columns(table.headers, parse_mapping(mapping))
            result = ImportResult(file=path.name, partner=partner, partner_name=self.config.partner(partner).name,
                                  columns=recognised, ignored=ignored, encoding=table.encoding)
            headers = {name: table.headers[i] for i, name in columns.items()}
            for line, cells in table.rows:
                values = {name: (cells[i] if i < len(cells) else None) for i, name in columns.items()}
                row, errors = parse_row(line, values, headers, self.dates, now, self.clock.today())
                result.errors += errors
                parsed.append(row)
        result.rows = len(parsed)
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
    if result.encoding in _SINGLE_BYTE:   # guessed: Unicode files are read by their mark, or certain
        lines.append(f"Texte lu en {ENCODING_NAMES.get(result.encoding, result.encoding)} (encodage détecté) : si des "
                     "accents sont faux ci-dessous, enregistrez le fichier en « CSV UTF-8 » et relancez.")
    lines.append("Colonnes reconnues : " + ", ".join(f"{quote(h)} → {f}" for h, f in result.columns) + ".")
    if result.ignored:
        lines.append("Colonnes ignorées : " + "; ".join(f"{quote(h)} ({why})" for h, why in result.ignored) + ".")
    valid = result.rows - result.error_lines
    lines.append(f"{_n(result.rows)} ligne{'s' if result.rows > 1 else ''} de données : {_n(valid)} "
                 f"valide{'s' if valid > 1 else ''}, {_n(result.error_lines)} en erreur.")
    if result.errors:
        lines.append("Erreurs :")
        for e in sorted(result.errors, key=lambda e: e.line):
            where = f"ligne {e.line}" + (f", colonne {quote(e.column)}" if e.column and e.column != "—" else "")
            value = f", valeur {quote(e.value)}" if e.value else ""
            lines.append(f"- {where}{value} : {_from_markdown(e.reason)}")
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
        lines.append(f"✅ {_n(len(result.records))} suivi{'s' if len(result.records) > 1 else ''} importé"
                     f"{'s' if len(result.records) > 1 else ''} ({numbers}).")
        if result.created:
            lines.append(f"Projets créés ({len(result.created)}) : {created}. Notez ces codes : ils servent aux "
                         "prochains suivis (!suivi P-XXXX …).")
    else:
        lines.append(f"Tout est prêt : {_n(valid)} suivi{'s' if valid > 1 else ''} à enregistrer"
                     + (f", et {len(result.created)} nouveau{'x' if len(result.created) > 1 else ''} projet"
                        f"{'s' if len(result.created) > 1 else ''} à créer : {created}" if result.created else "")
                     + ". Relancez avec --apply pour les enregistrer.")
    return "\n".join(lines)

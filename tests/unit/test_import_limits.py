"""Bounded import: hostile CSV and XLSX files end in one French message naming the limit and the value
found (an ImportFileError, exit code 2 on the command line), before openpyxl or the csv module can hold
them in memory. The zip bomb runs ``ess-bot import`` in a subprocess and measures its peak memory."""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from ess_bot.importer import LIMITS, ImportFileError, read_table

ROOT = Path(__file__).resolve().parents[2]
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
SHEET_HEAD = f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}>'
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>{extra}</Types>')
STRINGS_TYPE = ('<Override PartName="/xl/sharedStrings.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships '
             'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
             'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
             'Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook {NS} '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            '<sheet name="Suivis" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships '
                 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                 'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
                 'Target="worksheets/sheet1.xml"/>{extra}</Relationships>')
STRINGS_REL = ('<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
               'sharedStrings" Target="sharedStrings.xml"/>')
HEADER_ROW = ('<row r="1">' + "".join(f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>' for c, h in
                                      zip("ABCDE", ("Projet", "Date", "Phase", "Durée (min)", "Département")))
              + "</row>")


def build_xlsx(path: Path, sheet, strings=None, *, extra: dict[str, str] | None = None, level: int = 6) -> Path:
    """A minimal workbook written part by part with zipfile (openpyxl writes only sane files): the sheet
    and the shared strings given as byte chunks, so that hundreds of MB never sit in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES.format(extra=STRINGS_TYPE if strings else ""))
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(extra=STRINGS_REL if strings else ""))
        with z.open("xl/worksheets/sheet1.xml", "w") as f:
            for chunk in sheet:
                f.write(chunk)
        if strings:
            with z.open("xl/sharedStrings.xml", "w") as f:
                for chunk in strings:
                    f.write(chunk)
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    return path


def sheet_xml(rows: str, before: str = "", after: str = "") -> list[bytes]:
    return [f"{SHEET_HEAD}{before}<sheetData>{rows}</sheetData>{after}</worksheet>".encode()]


def refused(path: Path, **limits) -> str:
    """The French message of reading ``path`` under these limits; thousands are written with a narrow
    no-break space (``50\u202f000``), shown here as a plain space for readable assertions."""
    with pytest.raises(ImportFileError) as exc:
        read_table(path, dataclasses.replace(LIMITS, **limits))
    return exc.value.message.replace("\u202f", " ")


# -- the zip bomb, through the command line ------------------------------------------------------

def zip_bomb(path: Path, inflated: int = 675_000_000) -> Path:
    """About 2.5 MB inflating to 675 MB: highly repetitive sheet XML, a random row now and then."""
    rng = random.Random(1)
    block = "".join('<row><c t="inlineStr"><is><t>Café</t></is></c><c><v>45000</v></c></row>' if i % 400 else
                    f"<row><c><v>{rng.randrange(10 ** 9)}</v></c></row>" for i in range(20_000)).encode()
    head = f'{SHEET_HEAD}<sheetData>'.encode()
    return build_xlsx(path, [head, *(block for _ in range(inflated // len(block))), b"</sheetData></worksheet>"])


def peak_rss_of(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Runs ``args`` from a fresh interpreter and returns (its result, its peak RSS in bytes): the
    measuring interpreter has no other child, so RUSAGE_CHILDREN is this run's alone."""
    probe = textwrap.dedent(f"""
        import json, resource, subprocess, sys
        done = subprocess.run({args!r}, capture_output=True, text=True)
        print(json.dumps([done.returncode, done.stdout, done.stderr,
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=120, check=True)
    import json
    code, stdout, stderr, kib = json.loads(out.stdout)
    return subprocess.CompletedProcess(args, code, stdout, stderr), kib * 1024


def test_a_zip_bomb_is_refused_in_french_under_300_mb(tmp_path):
    bomb = zip_bomb(tmp_path / "suivis.xlsx")
    assert 2_000_000 < bomb.stat().st_size < 3_000_000
    with zipfile.ZipFile(bomb) as z:
        assert z.getinfo("xl/worksheets/sheet1.xml").file_size > 600_000_000
    env = {**os.environ, "ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"}
    start = time.monotonic()
    result, peak = peak_rss_of([sys.executable, "-m", "ess_bot", "import", str(bomb), "--partner", "bge-fc"],
                               env, tmp_path)
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "Le classeur « suivis.xlsx » fait 674 Mo une fois décompressé ; la limite est 100 Mo. Découpez-le en "
        "plusieurs fichiers (par exemple un par année) et importez-les l'un après l'autre. Ou enregistrez-le en .csv.")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert peak < 300_000_000, f"peak RSS {peak / 1e6:.0f} MB"
    assert elapsed < 10


def test_a_bomb_under_the_size_limit_is_refused_by_its_ratio(tmp_path):
    path = zip_bomb(tmp_path / "petit.xlsx", inflated=60_000_000)
    message = refused(path)
    assert message.startswith("Le classeur « petit.xlsx » se décompresse ")
    assert "fois (xl/worksheets/sheet1.xml : " in message and "→ 59 Mo) ; la limite est 100 fois." in message


def test_sizes_declared_too_small_are_caught_by_zipfile(tmp_path):
    """A zip that lies about its inflated size: zipfile stops at the declared size and finds the CRC
    wrong, so the lie cannot make it inflate more than declared."""
    path = build_xlsx(tmp_path / "menteur.xlsx", sheet_xml(HEADER_ROW + '<row r="2"><c><v>1</v></c></row>' * 50_000))
    data = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    for signature, name_at, size_at in ((b"PK\x01\x02", 46, 24), (b"PK\x03\x04", 30, 22)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_at:at + name_at + len(name)] == name:
                struct.pack_into("<I", data, at + size_at, 1000)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    message = refused(path)
    assert message.startswith("Classeur illisible : « menteur.xlsx » est une archive abîmée (Bad CRC-32")


# -- limits on the file and on the zip -----------------------------------------------------------

def test_file_size_limit(tmp_path):
    path = tmp_path / "gros.csv"
    path.write_text("Projet;Date;Phase;Durée\n" + "Café;12/03/2026;accueil;1h\n" * 100, encoding="utf-8")
    assert refused(path, file_bytes=1000) == ("Le fichier « gros.csv » fait 3 ko ; la limite est 1 ko. Découpez-le en "
                                              "plusieurs fichiers (par exemple un par année) et importez-les l'un "
                                              "après l'autre.")


def workbook(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def test_zip_members_and_table_of_contents(tmp_path):
    path = workbook(tmp_path / "suivis.xlsx", [["Projet", "Date"], ["Café", "12/03/2026"]])
    with zipfile.ZipFile(path) as z:
        count = len(z.infolist())
    assert refused(path, zip_members=3).startswith(f"Le classeur « suivis.xlsx » contient {count} parties ; la limite "
                                                   "est 3. Ce n'est pas un classeur ordinaire.")
    message = refused(path, directory_bytes=100)
    assert message.startswith("Le classeur « suivis.xlsx » a une table des matières de ")
    assert "; la limite est 100 octets." in message


# -- limits on the data, CSV and XLSX alike ------------------------------------------------------

CSV_HEADER = "Projet;Date;Phase;Durée (min);Département"


def csv_file(tmp_path: Path, lines: list[str], name: str = "suivis.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_rows_lines_columns_and_cell_length(tmp_path, kind):
    def file(rows: list[list]) -> Path:
        if kind == "xlsx":
            return workbook(tmp_path / "suivis.xlsx", rows)
        return csv_file(tmp_path, [";".join(map(str, r)) for r in rows])

    header = CSV_HEADER.split(";")
    good = ["Café", "12/03/2026", "accueil", 30, 25]
    path = file([header, good, good, good, good])
    assert len(read_table(path, dataclasses.replace(LIMITS, rows=4)).rows) == 4
    assert refused(path, rows=3) == (f"« suivis.{kind} » compte plus de 3 lignes de données (la 4e est à la ligne 5) ; "
                                     "la limite est 3. Découpez-le en plusieurs fichiers (par exemple un par année) "
                                     "et importez-les l'un après l'autre.")
    path = file([header, good] + [[None] * 5] * 20 + [good])
    assert refused(path, lines=10).startswith(f"« suivis.{kind} » va au-delà de 10 lignes (ligne 11 atteinte, lignes "
                                              "vides comprises) ; la limite est 10. Supprimez les lignes vides")
    path = file([header, good + [None, None, "trop loin"]])
    assert len(read_table(path, dataclasses.replace(LIMITS, columns=8)).rows[0][1]) == 8
    assert refused(path, columns=7) == (f"La ligne 2 de « suivis.{kind} » compte 8 colonnes ; la limite est 7. Gardez "
                                        "seulement les colonnes utiles au suivi (Projet, Date, Phase, Durée…), puis "
                                        "relancez.")
    if kind == "xlsx":   # openpyxl cuts a cell to 32 767 characters when writing: the XML by hand
        path = build_xlsx(tmp_path / "suivis.xlsx", sheet_xml(
            HEADER_ROW + f'<row r="2"><c r="E2" t="inlineStr"><is><t>{"x" * 40_000}</t></is></c></row>'))
    else:
        path = file([header, good[:4] + ["x" * 40_000]])
    assert refused(path) == (f"La cellule de la ligne 2, colonne n°5 de « suivis.{kind} » fait 40 000 caractères ; la "
                             "limite est 32 767 (celle d'Excel). Raccourcissez-la, puis relancez.")


def test_a_real_partner_spreadsheet_passes(tmp_path):
    """A few thousand rows, the usual columns, notes and accents: far from every limit."""
    rows = [["Projet", "Date", "Phase", "Modalité", "Durée", "Thèmes", "Note", "Département", "Forme juridique"]]
    rows += [[f"Café culturel n°{i % 300} à Besançon", datetime(2025, 1 + i % 12, 1 + i % 28), "émergence", "visio",
              "1h30", "juridique", f"Rendez-vous n°{i} : statuts de la coopérative, plan de financement", 25,
              "association"] for i in range(3000)]
    table = read_table(workbook(tmp_path / "bge.xlsx", rows))
    assert len(table.rows) == 3000 and table.headers == rows[0]
    assert table.rows[-1] == (3001, rows[-1])
    table = read_table(csv_file(tmp_path, [";".join(map(str, r)) for r in rows]))
    assert len(table.rows) == 3000 and table.rows[0][1][0] == "Café culturel n°0 à Besançon"


def test_csv_cells_over_the_csv_module_limit(tmp_path):
    """The csv module refuses a field over 131 072 characters: a French message, not its error."""
    path = csv_file(tmp_path, [CSV_HEADER, "Café;12/03/2026;accueil;30;" + "x" * 200_000])
    assert refused(path) == ("Une cellule de « suivis.csv » commençant ligne 2 fait plus de 131 072 caractères (un "
                             "guillemet « \" » non fermé ?) ; la limite est 32 767. Raccourcissez-la, puis relancez.")
    path = csv_file(tmp_path, [CSV_HEADER, 'Café;12/03/2026;accueil;30;"une note jamais fermée'] + ["a;b;c"] * 10_000)
    assert "(un guillemet « \" » non fermé ?)" in refused(path)


def test_a_csv_row_of_a_million_fields_never_reaches_the_csv_module(tmp_path):
    path = csv_file(tmp_path, [CSV_HEADER, ";" * 1_000_000 + "x"])
    assert refused(path) == ("La ligne 2 de « suivis.csv » compte plus de 50 000 séparateurs « ; » ; la limite est 200 "
                             "colonnes. Gardez seulement les colonnes utiles au suivi, puis relancez.")
    # inside quotes, a record spanning lines is counted as a whole
    path = csv_file(tmp_path, [CSV_HEADER, '"' + ";" * 30_000, ";" * 30_000 + '"'])
    assert "plus de 50 000 séparateurs" in refused(path)
    with pytest.raises(ImportFileError) as exc:
        read_table(path)
    assert "plus de 50\u202f000 séparateurs" in exc.value.message   # French typography, not a plain space


# -- the XML inside an XLSX ----------------------------------------------------------------------

NO_RATIO = {"compression_ratio": 10 ** 6}   # to reach the structure checks with small repetitive files


def test_a_row_of_a_million_cells(tmp_path):
    path = build_xlsx(tmp_path / "large.xlsx", sheet_xml('<row r="1">' + "<c><v>1</v></c>" * 60_000 + "</row>"))
    assert refused(path, **NO_RATIO) == (
        "Le classeur « large.xlsx » a une structure inhabituelle (xl/worksheets/sheet1.xml : plus de 50 000 éléments "
        "dans une seule ligne ou un seul texte). Ce n'est pas un classeur ordinaire. Ouvrez-le dans Excel ou "
        "LibreOffice et enregistrez-le de nouveau au format .xlsx, ou enregistrez-le en .csv, puis relancez.")


def test_rows_openpyxl_would_hold(tmp_path):
    # no <dimension>: openpyxl reads the whole sheet at load, keeping every row
    path = build_xlsx(tmp_path / "a.xlsx", sheet_xml(HEADER_ROW + "<row/>" * 1000))
    assert "plus de 500 lignes sans dimensions déclarées" in refused(path, sheet_rows=500, **NO_RATIO)
    # out of order: kept by openpyxl but never handed to the reader, so never counted as lines
    path = build_xlsx(tmp_path / "b.xlsx", sheet_xml(HEADER_ROW + '<row r="1"/>' * 1000, before='<dimension ref="A1"/>'))
    assert "plus de 500 lignes dans le désordre" in refused(path, sheet_rows=500, **NO_RATIO)
    # with a dimension, in order: streamed, and stopped by the line limit
    path = build_xlsx(tmp_path / "c.xlsx", sheet_xml(HEADER_ROW + "".join(f'<row r="{i}"/>' for i in range(2, 2000)),
                                                     before='<dimension ref="A1:E1"/>'))
    assert "va au-delà de 100 lignes" in refused(path, sheet_rows=500, lines=100, **NO_RATIO)


def test_elements_openpyxl_would_keep(tmp_path):
    path = build_xlsx(tmp_path / "fusions.xlsx", sheet_xml(
        HEADER_ROW, after='<mergeCells>' + '<mergeCell ref="H1:I2"/>' * 2000 + "</mergeCells>"))
    assert "plus de 1 000 éléments hors des lignes" in refused(path, kept_elements=1000, **NO_RATIO)
    styles = (f'<?xml version="1.0" encoding="UTF-8"?><styleSheet {NS}><cellXfs>'
              + '<xf numFmtId="0"><alignment wrapText="1"/></xf>' * 1000 + "</cellXfs></styleSheet>")
    path = build_xlsx(tmp_path / "styles.xlsx", sheet_xml(HEADER_ROW), extra={"xl/styles.xml": styles})
    assert refused(path, kept_elements=1000, **NO_RATIO) == (
        "Le classeur « styles.xlsx » a une structure inhabituelle (xl/styles.xml : plus de 1 000 éléments XML dans les "
        "parties lues en entier (styles, classeur, relations…)). Ce n'est pas un classeur ordinaire. Ouvrez-le dans "
        "Excel ou LibreOffice et enregistrez-le de nouveau au format .xlsx, ou enregistrez-le en .csv, puis relancez.")
    # a part openpyxl never reads in read-only mode (a pivot table's records) may be large
    records = f'<pivotCacheRecords {NS}>' + "<r><n v=\"1\"/></r>" * 2000 + "</pivotCacheRecords>"
    path = build_xlsx(tmp_path / "tcd.xlsx", sheet_xml(HEADER_ROW),
                      extra={"xl/pivotCache/pivotCacheRecords1.xml": records})
    assert read_table(path, dataclasses.replace(LIMITS, kept_elements=1000, **NO_RATIO)).headers[0] == "Projet"


def test_shared_strings(tmp_path):
    strings = [f'<sst {NS}>'.encode(), *(b"<si><t>Caf\xc3\xa9</t></si>" for _ in range(2000)), b"</sst>"]
    cells = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    path = build_xlsx(tmp_path / "textes.xlsx", sheet_xml(cells), strings)
    assert read_table(path, dataclasses.replace(LIMITS, **NO_RATIO)).headers == ["Café"]
    assert "plus de 1 000 textes différents ; la limite est 1 000" in refused(path, shared_strings=1000, **NO_RATIO)
    assert "une table de textes de plus de 10 ko ; la limite est 10 ko" in refused(
        path, shared_strings_bytes=10_000, **NO_RATIO)


def test_declarations_tokens_and_misused_parts(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            f'<worksheet {NS}><sheetData><row><c t="inlineStr"><is><t>&b;</t></is></c></row></sheetData></worksheet>')
    path = build_xlsx(tmp_path / "entites.xlsx", [bomb.encode()])
    assert ("(xl/worksheets/sheet1.xml : une déclaration, un commentaire ou une instruction XML, qu'un tableur "
            "n'écrit pas)") in refused(path)
    path = build_xlsx(tmp_path / "commentaire.xlsx", sheet_xml("<!-- " + "<" * 10 + " -->" + HEADER_ROW))
    assert "un commentaire" in refused(path)
    path = build_xlsx(tmp_path / "long.xlsx", sheet_xml(f'<row><c t="inlineStr"><is><t>{"x" * 5000}</t></is></c></row>'))
    assert "une balise ou un texte de plus de 1 ko" in refused(path, xml_token_bytes=1000, **NO_RATIO)
    path = build_xlsx(tmp_path / "utf16.xlsx", ["\ufeff".encode("utf-16-le") + sheet_xml(HEADER_ROW)[0]
                                                .decode().encode("utf-16-le")])
    assert "du XML en UTF-16" in refused(path)
    # a worksheet used as the stylesheet would be parsed whole by openpyxl, not streamed
    sheet = sheet_xml(HEADER_ROW)[0].decode()
    path = build_xlsx(tmp_path / "role.xlsx", sheet_xml(HEADER_ROW), extra={"xl/styles.xml": sheet})
    assert "(xl/styles.xml : une feuille ou une table de textes utilisée pour autre chose)" in refused(path)


# -- hostile files and cells ---------------------------------------------------------------------

def test_files_that_are_not_what_they_say(tmp_path):
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(5000))
    cases = {
        "vide.xlsx": b"",
        "vide.csv": b"",
        "bruit.csv": garbage,
        "bruit.xlsx": garbage,
        "texte.xlsx": "Projet;Date\nCafé;12/03/2026\n".encode(),
        "ancien.xlsx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
        "ancien.csv": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
        "classeur.csv": workbook(tmp_path / "w.xlsx", [["Projet"]]).read_bytes(),
    }
    expected = {
        "vide.xlsx": "Classeur illisible : « vide.xlsx » est vide (0 octet).",
        "vide.csv": "Le fichier « vide.csv » est vide.",
        "bruit.csv": "« bruit.csv » n'est pas un fichier texte (il contient des octets nuls)",
        "bruit.xlsx": "Classeur illisible : « bruit.xlsx » n'est pas un classeur .xlsx (ce n'est pas une archive zip).",
        "texte.xlsx": "Classeur illisible : « texte.xlsx » est un fichier texte, pas un classeur .xlsx (un CSV renommé ?).",
        "ancien.xlsx": "« ancien.xlsx » est un classeur Excel 97-2003 (.xls) ou protégé par un mot de passe",
        "ancien.csv": "« ancien.csv » est un classeur Excel 97-2003 (.xls) ou protégé par un mot de passe",
        "classeur.csv": "« classeur.csv » est en réalité un classeur Excel (.xlsx) : renommez-le en .xlsx",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert refused(tmp_path / name).startswith(expected[name]), name
    with zipfile.ZipFile(tmp_path / "zip.xlsx", "w") as z:
        z.writestr("lisez-moi.txt", "bonjour")
    assert refused(tmp_path / "zip.xlsx").startswith(
        "Classeur illisible : « zip.xlsx » est une archive zip, pas un classeur Excel (aucune feuille de calcul dedans).")
    with zipfile.ZipFile(tmp_path / "calc.xlsx", "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<x/>")
    assert "est un classeur OpenDocument (.ods) renommé" in refused(tmp_path / "calc.xlsx")
    (tmp_path / "dossier.csv").mkdir()
    assert "n'est pas un fichier (un dossier ?)" in refused(tmp_path / "dossier.csv")


def test_formulas_never_computed(tmp_path):
    path = workbook(tmp_path / "formules.xlsx", [["Projet", "Durée (min)", "Total"], ["Café", "=30*2", "=B2+1"]])
    assert refused(path) == (
        "La première feuille de « formules.xlsx » contient 2 formules jamais calculées (la première en B2) : leur "
        "valeur est inconnue. Ouvrez le fichier dans Excel ou LibreOffice et enregistrez-le (les valeurs sont alors "
        "calculées), ou collez les valeurs à la place des formules, puis relancez.")
    # computed by a spreadsheet: the cached values are read (an empty text result included)
    computed = ('<row r="2"><c r="A2" t="str"><f>"Café"</f><v>Café</v></c><c r="B2" t="str"><f>""</f><v></v></c>'
                '<c r="D2"><f>30*2</f><v>60</v></c></row>')
    table = read_table(build_xlsx(tmp_path / "calcule.xlsx", sheet_xml(HEADER_ROW + computed)))
    assert table.rows == [(2, ["Café", None, None, 60])]


def test_hostile_cell_values(tmp_path):
    cell = '<c r="{ref}"><v>{value}</v></c>'
    # a number of 5 000 digits stops openpyxl itself: the file, not a traceback
    path = build_xlsx(tmp_path / "chiffres.xlsx", sheet_xml(HEADER_ROW + '<row r="2">' + cell.format(
        ref="D2", value="9" * 5000) + "</row>"))
    assert refused(path).startswith("Classeur illisible : « chiffres.xlsx », cellule illisible vers la ligne 2 (")
    path = build_xlsx(tmp_path / "iso.xlsx", sheet_xml(HEADER_ROW + '<row r="2"><c r="B2" t="d"><v>99999-01-01</v>'
                                                                  "</c></row>"))
    assert "cellule illisible vers la ligne 2" in refused(path)

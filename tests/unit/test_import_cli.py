"""``ess-bot import`` as a real subprocess, on a temporary SQLite database (embedded example configuration)."""

from __future__ import annotations

import sqlite3

from tests.unit.test_cli import run

NOW = ["--now", "2026-11-27T10:00"]
HEADER = "Projet;Date;Phase;Modalité;Durée;Thèmes;Note;Département;Forme juridique;Prénom"
GOOD = [HEADER,
        "Café culturel Pixel;12/03/2026;émergence;visio;1h30;juridique;premier rendez-vous;25;association;Jeanne",
        "Café culturel Pixel;19/03/2026;ante-création;;45min;;;;;Jeanne",
        "Recyclerie du Haut-Doubs;02/04/2026;accueil;téléphone;2h;;;39;scic;Paul"]
BAD = GOOD + ["Garage solidaire;10/04/2026;financement;;1h75;;;39;;",
              "Tiers-lieu;01/05/2099;accueil;;1h;;mail : jean@example.org;70;;"]


def setup(tmp_path, lines):
    path = tmp_path / "suivis.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"}
    return path, env


def rows(tmp_path, sql):
    con = sqlite3.connect(tmp_path / "data" / "bot.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_dry_run_then_apply(tmp_path):
    path, env = setup(tmp_path, GOOD)
    result = run(["import", str(path), "--partner", "bge-fc", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == ("Import de « suivis.csv » pour BGE Franche-Comté — essai (rien n'est enregistré ; "
                                   "ajoutez --apply pour importer)")
    assert "Colonnes reconnues : « Projet » → projet, « Date » → date" in out
    assert "« Prénom » (donnée personnelle, jamais importée — RGPD)" in out
    assert "3 lignes de données : 3 valides, 0 en erreur." in out
    assert "Tout est prêt : 3 suivis à enregistrer, et 2 nouveaux projets à créer" in out
    assert rows(tmp_path, "SELECT count(*) FROM accompaniments") == [(0,)]
    assert "Traceback" not in result.stderr

    result = run(["import", str(path), "--partner", "bge-fc", "--apply", "--conseiller", "@karim:example.org", *NOW],
                 env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "✅ 3 suivis importés (n°1 à n°3)." in result.stdout
    assert "Projets créés (2) : Café culturel Pixel (P-" in result.stdout
    assert rows(tmp_path, "SELECT project_id, date, phase, duration_minutes, advisor, partner FROM accompaniments") == [
        (1, "2026-03-12", "emergence", 90, "@karim:example.org", "bge-fc"),
        (1, "2026-03-19", "ante_creation", 45, "@karim:example.org", "bge-fc"),
        (2, "2026-04-02", "accueil", 120, "@karim:example.org", "bge-fc")]
    assert rows(tmp_path, "SELECT label, department, legal_form FROM projects") == [
        ("Café culturel Pixel", "25", "association"), ("Recyclerie du Haut-Doubs", "39", "scic")]


def test_errors_are_reported_per_row_and_nothing_is_written(tmp_path):
    path, env = setup(tmp_path, BAD)
    result = run(["import", str(path), "--partner", "bge-fc", "--apply", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "5 lignes de données : 3 valides, 2 en erreur." in out
    assert "- ligne 5, colonne « Durée », valeur « 1h75 » : Durée illisible : « 1h75 »" in out
    assert "- ligne 6, colonne « Date », valeur « 01/05/2099 » : Date dans le futur" in out
    assert "- ligne 6, colonne « Note », valeur « mail : jean@example.org » : 🔒 La note contient une adresse e-mail" in out
    assert "Rien n'a été enregistré : corrigez ces lignes puis relancez" in out
    assert rows(tmp_path, "SELECT count(*) FROM accompaniments") == [(0,)]
    assert rows(tmp_path, "SELECT count(*) FROM projects") == [(0,)]
    assert "Traceback" not in result.stderr


def test_mapping_and_xlsx(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Intitulé", "Jour", "Étape", "Temps passé (minutes)", "Téléphone"])
    ws.append(["Tiers-lieu du Morvan", "03/02/2026", "accueil", 90, "06 12 34 56 78"])
    wb.save(tmp_path / "aldess.xlsx")
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"}
    args = ["import", str(tmp_path / "aldess.xlsx"), "--partner", "aldess", "--apply", *NOW]
    result = run(args, env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Colonnes obligatoires introuvables : la durée" in result.stderr
    result = run(args + ["--mapping", "Intitulé=projet,Temps passé (minutes)=duree_minutes"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "« Téléphone » (donnée personnelle, jamais importée — RGPD)" in result.stdout
    assert rows(tmp_path, "SELECT date, duration_minutes, partner FROM accompaniments") == [("2026-02-03", 90, "aldess")]


def test_usage_errors(tmp_path):
    path, env = setup(tmp_path, GOOD)
    result = run(["import", str(tmp_path / "absent.csv"), "--partner", "bge-fc"], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Fichier introuvable" in result.stderr
    result = run(["import", str(path), "--partner", "nulle-part"], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Partenaire inconnu : « nulle-part »" in result.stderr
    result = run(["import", str(path), "--partner", "bge-fc", "--mapping", "Projet=couleur"], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Champ inconnu dans --mapping : « couleur »" in result.stderr
    result = run(["import", str(path), "--partner", "bge-fc", "--conseiller", "@lucie:example.org"], env=env,
                 cwd=tmp_path)
    assert result.returncode == 2 and "n'est pas membre de BGE Franche-Comté" in result.stderr
    result = run(["import", str(path)], env=env, cwd=tmp_path)
    assert result.returncode == 2 and "--partner" in result.stderr
    for r in (result,):
        assert "Traceback" not in r.stderr


def test_encodings_through_the_command_line(tmp_path):
    """A Mac Roman CSV (CR line ends) used to crash with UnboundLocalError, a UTF-16 one to give NUL-garbled
    column names: both are imported, accents right."""
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"}
    mac = tmp_path / "mac.csv"
    mac.write_bytes(("\r".join(GOOD[:2]) + "\r").encode("mac_roman"))
    result = run(["import", str(mac), "--partner", "bge-fc", "--apply", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Texte lu en Mac Roman (encodage détecté)" in result.stdout
    unicode = tmp_path / "unicode.txt"
    unicode.write_bytes("\r\n".join(line.replace(";", "\t") for line in [HEADER, GOOD[3]]).encode("utf-16"))
    result = run(["import", str(unicode), "--partner", "bge-fc", "--apply", *NOW], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Colonnes reconnues : « Projet » → projet, « Date » → date" in result.stdout
    assert rows(tmp_path, "SELECT label, department FROM projects ORDER BY id") == [
        ("Café culturel Pixel", "25"), ("Recyclerie du Haut-Doubs", "39")]
    assert rows(tmp_path, "SELECT phase, modality, note FROM accompaniments ORDER BY id") == [
        ("emergence", "visio", "premier rendez-vous"), ("accueil", "telephone", None)]


def test_hostile_files_exit_2_in_french(tmp_path):
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"}
    cases = {"bruit.xlsx": bytes(range(256)) * 20, "bruit.csv": bytes(range(256)) * 20, "vide.xlsx": b"",
             "classeur.csv": b"PK\x03\x04" + bytes(100)}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = run(["import", str(tmp_path / name), "--partner", "bge-fc"], env=env, cwd=tmp_path)
        assert result.returncode == 2, (name, result.stderr)
        assert f"« {name} »" in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr and "Error" not in result.stderr

"""The ``ess-bot`` command line, run as a real subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args, stdin="", cwd=None, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ess_bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, timeout=120)


def test_help_on_every_command():
    for args in (["--help"], ["run", "--help"], ["console", "--help"], ["db", "--help"], ["check-config", "--help"]):
        result = run(args)
        assert result.returncode == 0, result.stderr
        assert "utilisation : ess-bot" in result.stdout


def test_check_config_prints_a_summary_and_names_bad_keys(tmp_path):
    ok = run(["check-config", "-c", str(ROOT / "config.example.toml")])
    assert ok.returncode == 0 and "Configuration valide" in ok.stdout and "URSCOP" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[partners]]\nslug = "x"\nname = "X"\n[[members]]\nuser_id = "@a:b"\npartner = "y"\n')
    result = run(["check-config", "-c", str(bad)])
    assert result.returncode == 2
    assert f"{bad}: [members[0].partner] partenaire inconnu : 'y'" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_is_scriptable_with_json_and_a_frozen_clock(tmp_path):
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/console.db"}
    script = "!ping\n/as @karim:example.org\n/room bge-fc\n!aide\n!inconnue\n/now 2026-11-25T09:00\n!ping\n"
    result = run(["console", "--json", "--now", "2026-11-24T10:00", "--files-dir", str(tmp_path)], stdin=script,
                 env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    for record in lines:
        assert {"room", "kind", "body", "html", "reply_to", "mentions", "filename"} <= record.keys()
    ping, aide, unknown, ping2 = lines
    assert ping["kind"] == "notice" and ping["room"] == "!coordination:example.org"
    assert ping["body"].startswith("🏓 Pong !")
    assert aide["room"] == "!bge:example.org" and "Karim" in aide["body"]
    assert "Commande inconnue" in unknown["body"]
    assert "en service depuis 23 h" in ping2["body"]  # the frozen clock moved by /now


def test_console_human_output_and_default_example_config(tmp_path):
    # run from an empty folder: no config.toml, so the embedded example is used, data/ is created there
    result = run(["console"], stdin="!ping\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "🤖 🏓 Pong !" in result.stdout
    assert (tmp_path / "data" / "ess-bot.db").exists()


def test_console_rejects_bad_now_and_room():
    assert "Exemple : --now 2026-11-24T10:00" in run(["console", "--now", "hier"]).stderr
    result = run(["console", "--room", "nulle-part"])
    assert result.returncode == 2 and "Salon inconnu" in result.stderr


def test_db_upgrade(tmp_path):
    env = {"ESS_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/up.db"}
    result = run(["db", "upgrade"], env=env, cwd=tmp_path)
    assert result.returncode == 0 and "Base de données à jour" in result.stdout
    assert (tmp_path / "up.db").exists()


def test_run_without_credentials_explains_what_is_missing(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.example.toml").read_text())
    result = run(["run", "-c", str(config)], env={"ESS_BOT_MATRIX_PASSWORD": "", "ESS_BOT_MATRIX_ACCESS_TOKEN": ""})
    assert result.returncode == 2
    assert "[matrix.password] un mot de passe ou un access_token est nécessaire" in result.stderr


def test_command_line_errors_and_help_are_in_french():
    result = run(["nimporte"])
    assert result.returncode == 2
    assert "choix inconnu « nimporte »" in result.stderr and "invalid choice" not in result.stderr
    result = run(["console", "--now"])
    assert "l'option --now attend une valeur" in result.stderr
    helptext = run(["console", "--help"]).stdout
    assert helptext.startswith("utilisation : ess-bot console") and "afficher cette aide" in helptext
    assert "show this help" not in helptext and "usage:" not in helptext

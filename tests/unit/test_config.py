import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from ess_bot import config as config_module
from ess_bot.config import ConfigError, DatabaseSettings, load_config, parse_config, parse_hours, summary
from tests.support import TEST_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def raw(extra: str = "") -> dict:
    return tomllib.loads(TEST_CONFIG + extra)


def test_example_config_has_the_whole_consortium():
    config = load_config(ROOT / "config.example.toml", env={})
    names = [p.name for p in config.partners]
    assert names == ["BGE Franche-Comté", "Coopilote", "Aldess", "Cluster Jura", "PESAD 21", "Active 71",
                     "Fdfr89", "URSCOP"]
    assert [p.slug for p in config.partners if p.lead] == ["bge-fc"]
    towns = {p.town for p in config.permanences}
    assert {"Vesoul", "Belfort", "Pontarlier", "Lons-le-Saunier", "Besançon"} <= towns
    besancon_days = {p.weekday for p in config.permanences if p.town == "Besançon"}
    assert besancon_days == {"monday", "tuesday", "wednesday", "thursday", "friday"}
    assert {m.role for m in config.members} == {"advisor", "coordinator", "admin"}
    # relative paths are anchored next to the configuration file
    assert config.database.url == f"sqlite+aiosqlite:///{ROOT}/data/ess-bot.db"
    assert config.matrix.store_path == str(ROOT / "data/store")
    assert "8" in summary(config) and "URSCOP" in summary(config)


def test_environment_wins_for_secrets_and_database():
    env = {"ESS_BOT_MATRIX_PASSWORD": "s3cret", "ESS_BOT_DATABASE_URL": "postgresql+asyncpg://u:p@h/db"}
    config = load_config(ROOT / "config.example.toml", env=env)
    assert config.matrix.password == "s3cret"
    assert config.database.url == "postgresql+asyncpg://u:p@h/db"
    assert "u:***@h" in summary(config)


@pytest.mark.parametrize("extra, key, fragment", [
    ('[[members]]\nuser_id = "claire"\npartner = "bge-fc"\n', "members[4].user_id", "claire"),
    ('[[members]]\nuser_id = "@x:test"\npartner = "nope"\n', "members[4].partner", "nope"),
    ('[[members]]\nuser_id = "@x:test"\npartner = "bge-fc"\nrole = "chef"\n', "members[4].role", "chef"),
    ('[[partners]]\nslug = "Bad Slug"\nname = "X"\n', "partners[2].slug", "Bad Slug"),
    ('[[partners]]\nslug = "x"\nname = "X"\ndepartments = ["75"]\n', "partners[2].departments[0]", "75"),
    ('[[permanences]]\npartner = "bge-fc"\ntown = "Dole"\nweekday = "mardi"\nhours = "09:00-12:00"\n',
     "permanences[0].weekday", "mardi"),
    ('[[permanences]]\npartner = "bge-fc"\ntown = "Dole"\nweekday = "tuesday"\nhours = "9h-12h"\n',
     "permanences[0].hours", "9h-12h"),
])
def test_errors_name_the_key_and_the_value(extra, key, fragment):
    with pytest.raises(ConfigError) as err:
        parse_config(raw(extra), source="conf.toml")
    assert err.value.key == key
    assert fragment in err.value.message
    assert str(err.value).startswith("conf.toml: [" + key + "]")


def test_unknown_key_and_bad_types_are_reported():
    data = raw()
    data["bot"]["prefix"] = "!"
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="c.toml")
    assert err.value.key == "bot.prefix" and "command_prefix" in err.value.message
    data = raw()
    data["bot"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        parse_config(data, source="c.toml")
    data = raw()
    data["matrix"] = {"sync_timeout_ms": "long"}
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="c.toml")
    assert err.value.key == "matrix.sync_timeout_ms"


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="introuvable"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[bot\n")
    with pytest.raises(ConfigError, match="syntaxe TOML incorrecte \\(ligne 1, colonne 5\\)"):
        load_config(bad)


def test_hours():
    slots = parse_hours("09:00-12:00, 14h00-17h30")
    assert [(s.hour, e.hour, e.minute) for s, e in slots] == [(9, 12, 0), (14, 17, 30)]
    with pytest.raises(ValueError):
        parse_hours("12:00-09:00")


def test_room_keys_resolve():
    config = parse_config(raw(), source="c")
    assert config.resolve_room("coordination") == "!coord:test"
    assert config.resolve_room("urscop") == "!urscop:test"
    assert config.resolve_room("annonces") == "!annonces:test"
    assert config.resolve_room("!other:test") == "!other:test"
    assert config.resolve_room("nowhere") is None


def test_meetings_events_http_sections():
    data = raw('[meetings]\nper_year = 6\nreminder_days = [1, 7, 3]\n[events]\nmembers_may_add = false\n'
               '[http]\nlisten = "127.0.0.1:8080"\ntoken = "0123456789abcdef"\n')
    config = parse_config(data, source="c")
    assert config.meetings.per_year == 6 and config.meetings.reminder_days == (7, 3, 1)
    assert config.events.members_may_add is False and config.events.reminder_days == (7, 1)
    assert config.http.enabled and config.http.listen == "127.0.0.1:8080"
    with pytest.raises(ConfigError) as err:
        parse_config(raw('[http]\nlisten = "127.0.0.1:8080"\n'), source="c")
    assert err.value.key == "http.token"
    with pytest.raises(ConfigError) as err:
        parse_config(raw('[meetings]\nreminder_days = ["J-7"]\n'), source="c")
    assert err.value.key == "meetings.reminder_days[0]" and "J-7" in err.value.message
    assert not parse_config(raw(), source="c").http.enabled


def test_member_lookup_by_localpart_and_room_keys_ignore_case():
    config = parse_config(raw(), source="c")
    assert config.find_member("karim").user_id == "@karim:test"
    assert config.find_member("@Karim").user_id == "@karim:test"
    assert config.find_member("personne") is None
    assert config.resolve_room("URSCOP") == "!urscop:test"


def test_http_limits_have_defaults_and_are_validated():
    config = parse_config(raw(), source="c")
    assert (config.http.request_timeout_seconds, config.http.max_connections) == (10, 64)
    config = parse_config(raw('[http]\nlisten = "127.0.0.1:8080"\ntoken = "0123456789abcdef"\n'
                              'request_timeout_seconds = 3\nmax_connections = 500\n'), source="c")
    assert (config.http.request_timeout_seconds, config.http.max_connections) == (3, 500)
    assert "délai 3 s, 500 connexions simultanées au plus" in summary(config)
    assert "Flux HTTP : désactivé" in summary(parse_config(raw(), source="c"))
    for extra, key, fragment in [("request_timeout_seconds = 0", "http.request_timeout_seconds", "entre 1 et 300"),
                                 ("request_timeout_seconds = 301", "http.request_timeout_seconds", "reçu : 301"),
                                 ('request_timeout_seconds = "10 s"', "http.request_timeout_seconds", "'10 s'"),
                                 ("max_connections = 0", "http.max_connections", "entre 1 et 10000"),
                                 ("max_connection = 5", "http.max_connection", "max_connections")]:
        with pytest.raises(ConfigError) as err:
            parse_config(raw(f"[http]\n{extra}\n"), source="c")
        assert err.value.key == key and fragment in err.value.message, (extra, err.value)


SECRETS = ("hunter2-matrix-password", "syt_access_token_value", "feed-token-0123456789", "db-password-42")


def _secret_config():
    env = {"ESS_BOT_MATRIX_PASSWORD": SECRETS[0], "ESS_BOT_MATRIX_ACCESS_TOKEN": SECRETS[1],
           "ESS_BOT_HTTP_TOKEN": SECRETS[2],
           "ESS_BOT_DATABASE_URL": f"postgresql+asyncpg://bot:{SECRETS[3]}@db.example.org:5432/ess"}
    return load_config(ROOT / "config.example.toml", env=env)


def test_no_secret_in_any_repr_or_str():
    config = _secret_config()
    assert config.matrix.password == SECRETS[0] and config.http.token == SECRETS[2]  # loaded, only hidden
    shown = [repr(config), str(config), repr(config.matrix), str(config.matrix), repr(config.http),
             repr(config.database), str(config.database), summary(config)]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert "bot:***@db.example.org:5432/ess" in repr(config.database)  # still useful for a diagnosis
    assert "homeserver='https://matrix.example.org'" in repr(config.matrix)
    in_query = DatabaseSettings(url="postgresql+asyncpg://db/ess?password=x1y2z3&ssl=true")
    assert "x1y2z3" not in repr(in_query) and "?password=***&ssl=true" in repr(in_query)


def test_every_secret_looking_field_is_kept_out_of_repr():
    # a guard for fields added later (a store key, another token): the name says it is a secret
    checked = []
    for obj in vars(config_module).values():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == config_module.__name__:
            for f in dataclasses.fields(obj):
                if re.search(r"password|token|secret|key", f.name):
                    checked.append(f"{obj.__name__}.{f.name}")
                    assert not f.repr, f"{obj.__name__}.{f.name} would show in repr()"
    assert {"MatrixSettings.password", "MatrixSettings.access_token", "HttpSettings.token"} <= set(checked)


def test_a_secret_of_the_wrong_type_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        parse_config(raw('[matrix]\npassword = 12345678\n'), source="c")
    assert err.value.key == "matrix.password" and "12345678" not in str(err.value)
    assert "texte entre guillemets attendu" in err.value.message

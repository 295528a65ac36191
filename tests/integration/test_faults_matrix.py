"""The real bot on a real Synapse under faults: its database refusing writes (injected on SQLite),
PostgreSQL stopped and started again during a burst, the homeserver restarted, and the start errors
a person gets on the command line. Files under a permissive umask stay owner-only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ess_bot.errors import FatalError
from ess_bot.storage.accompaniments import Project
from ess_bot.transports.matrix import MatrixBot
from tests.faults import DatabaseFaults
from tests.harness import PostgresServer
from tests.harness.matrix_client import match
from tests.integration.test_matrix_bot import is_reply_to
from tests.support import network_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def partner_and_coordination(bot_runner, make_user):
    """Karim (advisor, BGE's room) and Claire (coordinator, the coordination room), the bot in both."""
    karim, claire = await make_user("karim"), await make_user("claire")
    bge = await karim.create_room(name="BGE Franche-Comté", invite=[bot_runner.user_id])
    coord = await claire.create_room(name="Coordination", invite=[bot_runner.user_id])
    bot_runner.members = [(karim.user_id, "bge-fc", "advisor"), (claire.user_id, "bge-fc", "coordinator")]
    bot_runner.partner_rooms = {"bge-fc": bge}
    bot_runner.rooms = {"coordination": coord}
    bot = await bot_runner.start()
    joined = match(type="m.room.member", state_key=bot_runner.user_id, membership="join")
    await karim.wait_for(bge, joined)
    await claire.wait_for(coord, joined)
    return bot, karim, claire, bge, coord


def from_bot(bot_runner, **fields):
    return match(sender=bot_runner.user_id, type="m.room.message", **fields)


def alive(bot: MatrixBot) -> set[str]:
    return {t.get_name() for t in bot._tasks if not t.done()}


async def test_writes_refused_on_a_real_homeserver_and_files_owner_only(bot_runner, make_user):
    previous = os.umask(0o022)
    try:
        bot, karim, claire, bge, coord = await partner_and_coordination(bot_runner, make_user)
    finally:
        os.umask(previous)
    faults = DatabaseFaults(bot.app.db)
    faults.writes_fail = True

    cmd = await karim.send_text(bge, '!projet nouveau "Recyclerie du Haut-Doubs" dep=25')
    reply = await karim.wait_for(bge, is_reply_to(cmd), timeout=30)
    assert reply["content"]["msgtype"] == "m.notice"
    assert "Je ne peux pas enregistrer cette demande pour l'instant" in reply["content"]["body"]
    told = await claire.wait_for(coord, from_bot(bot_runner), timeout=30)
    assert told["content"]["msgtype"] == "m.text" and "Base de données indisponible" in told["content"]["body"]
    cmd = await karim.send_text(bge, "!ping")  # read-only: answered in full
    reply = await karim.wait_for(bge, is_reply_to(cmd), timeout=30)
    assert reply["content"]["body"].startswith("🏓 Pong !")

    healed = time.monotonic()
    faults.heal()
    back = await claire.wait_for(coord, from_bot(bot_runner), timeout=15)
    assert "de nouveau disponible" in back["content"]["body"]
    print(f"\n[faults] database back → coordination told after {time.monotonic() - healed:.2f} s")
    assert time.monotonic() - healed < 5
    cmd = await karim.send_text(bge, '!projet nouveau "Recyclerie du Haut-Doubs" dep=25')
    reply = await karim.wait_for(bge, is_reply_to(cmd), timeout=30)
    assert reply["content"]["body"].startswith("✅ Projet")
    assert {"ess-bot-sync", "ess-bot-outbox", "ess-bot-database-watch"} <= alive(bot)

    # files created under umask 022 are still for the bot's user only
    workdir = bot_runner.workdir
    assert oct((workdir / "bot.db").stat().st_mode & 0o777) == "0o600"
    store = workdir / "store"
    assert oct(store.stat().st_mode & 0o777) == "0o700"
    files = [p for p in store.iterdir() if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and (store / "credentials.json") in files
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files), [(p, oct(p.stat().st_mode)) for p in files]


async def test_postgres_restarted_during_a_burst(bot_runner, make_user):
    """Ten commands, PostgreSQL stopped after the third and started again a few seconds later: each
    command gets exactly one answer, each "created" answer is one project, none is applied twice,
    and the bot's tasks are all still running."""
    pg = PostgresServer()
    pg.start()
    try:
        bot_runner.db_url = pg.create_database()
        bot, karim, claire, bge, coord = await partner_and_coordination(bot_runner, make_user)
        commands = [await karim.send_text(bge, f'!projet nouveau "Projet numéro {n}" dep=25') for n in range(3)]
        first = await karim.wait_for(bge, is_reply_to(commands[0]), timeout=30)
        pg.halt()  # while the next commands arrive, maybe with one of the first three on its way
        commands += [await karim.send_text(bge, f'!projet nouveau "Projet numéro {n}" dep=25') for n in range(3, 10)]
        await asyncio.sleep(2)
        pg.resume()
        resumed = time.monotonic()
        replies = {commands[0]: first["content"]["body"]}
        for cmd in commands[1:]:
            replies[cmd] = (await karim.wait_for(bge, is_reply_to(cmd), timeout=60))["content"]["body"]
        back = await claire.wait_for(coord, lambda e: e.get("sender") == bot_runner.user_id and
                                     "de nouveau disponible" in (e.get("content") or {}).get("body", ""), timeout=30)
        assert back and time.monotonic() - resumed < 15
        print(f"\n[faults] PostgreSQL back → all answered and recovery told after {time.monotonic() - resumed:.2f} s")
        extra = await karim.collect(bge, lambda e: e.get("sender") == bot_runner.user_id, 1, timeout=2,
                                    allow_fewer=True)
        assert extra == [], [e["content"]["body"] for e in extra]  # nothing answered twice
        created = [b for b in replies.values() if b.startswith("✅ Projet")]
        refused = [b for b in replies.values() if "Rien n'a été enregistré" in b]
        print(f"\n[faults] burst of 10 with PostgreSQL stopped: {len(created)} created, {len(refused)} refused")
        assert len(created) + len(refused) == 10 and len(refused) >= 7 and len(created) >= 1, replies
        async with bot.app.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Project)) == len(created)
        cmd = await karim.send_text(bge, '!projet nouveau "Après la panne" dep=25')
        reply = await karim.wait_for(bge, is_reply_to(cmd), timeout=30)
        assert reply["content"]["body"].startswith("✅ Projet")
        assert {"ess-bot-sync", "ess-bot-outbox", "ess-bot-database-watch"} <= alive(bot)
    finally:
        await bot_runner.stop()
        pg.stop()


async def test_wrong_password_is_a_french_fatal_error(synapse, tmp_path):
    from tests.harness import fresh_user

    bot_id, _, _ = await synapse.register_user_async(fresh_user("essbot"), password="the-right-one")
    config = network_config(f"sqlite+aiosqlite:///{tmp_path}/bot.db", members=[],
                            matrix={"homeserver": synapse.base_url, "user_id": bot_id, "password": "a-wrong-one",
                                    "store_path": str(tmp_path / "store")}, base_dir=tmp_path)
    bot = MatrixBot(config)
    try:
        with pytest.raises(FatalError) as caught:
            await bot.start()
    finally:
        await bot.stop()
    assert caught.value.message == (f"Connexion refusée par {synapse.base_url} pour {bot_id} : identifiant ou mot "
                                    "de passe incorrect (M_FORBIDDEN). Vérifiez matrix.password (ou "
                                    "ESS_BOT_MATRIX_PASSWORD).")


def run_cli(tmp_path: Path, homeserver: str, password: str, db_url: str, user_id: str = "@bot:localhost"):
    config = tmp_path / "config.toml"
    config.write_text(f'[matrix]\nhomeserver = "{homeserver}"\nuser_id = "{user_id}"\npassword = "{password}"\n'
                      f'store_path = "{tmp_path}/store"\n[database]\nurl = "{db_url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESS_BOT_")}
    return subprocess.run([sys.executable, "-m", "ess_bot", "run", "-c", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_start_errors_on_the_command_line(synapse, tmp_path):
    """One French line naming what and where, exit code 2, no traceback."""
    from tests.harness import fresh_user
    from tests.harness.synapse import free_port

    sqlite = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    port = free_port()
    done = run_cli(tmp_path, f"http://127.0.0.1:{port}", "x", sqlite)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (f"Serveur Matrix injoignable : http://127.0.0.1:{port} (connexion "
                                                    "refusée). Vérifiez matrix.homeserver et le réseau, puis relancez.")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2

    done = run_cli(tmp_path, synapse.base_url, "x", f"postgresql+asyncpg://ess:secret@127.0.0.1:{port}/ess")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "secret" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"Base de données injoignable : PostgreSQL « ess » sur 127.0.0.1:{port} (connexion refusée")

    done = run_cli(tmp_path, synapse.base_url, "x", "sqlite+aiosqlite:////proc/ess-bot-nowhere/bot.db")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Base de données injoignable : SQLite /proc/ess-bot-nowhere/bot.db (dossier introuvable ou impossible à "
        "créer). Vérifiez database.url (ou ESS_BOT_DATABASE_URL), le dossier et ses droits.")

    user, _, _ = synapse.register_user(fresh_user("essbot"), password="right")
    other = tmp_path / "other"
    other.mkdir()
    done = run_cli(other, synapse.base_url, "wrong", f"sqlite+aiosqlite:///{other}/bot.db", user_id=user)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"Connexion refusée par {synapse.base_url} pour {user} : identifiant ou mot de passe incorrect "
        "(M_FORBIDDEN). Vérifiez matrix.password (ou ESS_BOT_MATRIX_PASSWORD).")

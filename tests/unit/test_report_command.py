"""!rapport end to end: dispatcher, real SQLite database, frozen clock, drained outbox."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from tests.storage.test_reports import seed
from tests.unit.accompaniment_driver import ALDESS, ANNOUNCES, BGE, COORD, PARIS, URSCOP, Bot

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)
DIRECT = "!direct-karim:test"


@pytest.fixture
async def bot(tmp_path):
    b = await Bot(tmp_path, NOW).start()
    async with b.app.db.sessions.begin() as session:
        await seed(session)
    try:
        yield b
    finally:
        await b.close()


async def report(bot, line, sender="@claire:test", room=COORD):
    """(summary, files) of one !rapport; files as {extension: Outgoing}."""
    outs = await bot.say(line, sender=sender, room=room)
    assert all(o.room_id == room and o.reply_to == bot.last_event_id for o in outs)
    notices = [o for o in outs if o.kind == "notice"]
    assert len(notices) == 1, [o.body for o in outs]
    files = {o.filename.rsplit(".", 1)[1]: o for o in outs if o.kind in ("file", "image")}
    return notices[0].body, files


def csv_totals(out) -> dict[tuple[str, str, str], str]:
    rows = csv.DictReader(io.StringIO(out.data.decode("utf-8-sig")), delimiter=";")
    return {(r["rubrique"], r["groupe"], r["indicateur"]): r["valeur"] for r in rows}


async def test_coordinator_gets_the_network_report_with_three_files(bot):
    summary, files = await report(bot, "!rapport T3 2026")
    assert summary.startswith("📊 Bilan d'accompagnement — 3e trimestre 2026 (du 1er juillet au 30 septembre 2026) · "
                              "tout le réseau")
    assert "9 suivis, 5 projets accompagnés (dont 4 nouveaux), 11 h 30" in summary
    assert set(files) == {"csv", "xlsx", "png"}
    assert files["csv"].kind == "file" and files["csv"].mimetype == "text/csv"
    assert files["csv"].filename == "rapport-reseau-2026-T3.csv"
    assert files["xlsx"].kind == "file" and files["xlsx"].data[:2] == b"PK"
    assert files["png"].kind == "image" and files["png"].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert csv_totals(files["csv"])[("Total", "tout", "suivis")] == "9"
    for secret in ("Projet secret", "P-2222", "Note confidentielle"):
        assert secret not in summary and secret.encode() not in files["csv"].data


async def test_default_period_is_the_current_quarter_and_other_forms(bot):
    summary, _ = await report(bot, "!rapport")
    assert "4e trimestre 2026" in summary and "1 suivi," in summary  # n°10, 1 October
    summary, _ = await report(bot, "!rapport trimestre dernier")
    assert "3e trimestre 2026" in summary and "9 suivis" in summary
    summary, files = await report(bot, "!rapport du 01/07/2026 au 31/07/2026")
    assert "du 1er juillet au 31 juillet 2026" in summary and "4 suivis" in summary
    assert files["csv"].filename == "rapport-reseau-2026-07-01_2026-07-31.csv"
    summary, _ = await report(bot, "!bilan 2026")
    assert "année 2026" in summary and "11 suivis" in summary


async def test_coordinator_may_ask_for_one_partner(bot):
    for line in ("!rapport T3 2026 urscop", "!rapport urscop T3 2026", "!rapport T3 2026 partenaire=URSCOP",
                 '!rapport T3 2026 "URSCOP"'):
        summary, files = await report(bot, line)
        assert "· URSCOP" in summary and "2 suivis, 2 projets accompagnés (dont 2 nouveaux), 3 h" in summary, line
        assert files["csv"].filename == "rapport-urscop-2026-T3.csv"
    summary, _ = await report(bot, "!rapport T3 2026 BGE Franche-Comté")
    assert "· BGE Franche-Comté" in summary and "5 suivis" in summary
    summary, _ = await report(bot, "!rapport T3 2026 tout le réseau")
    assert "· tout le réseau" in summary


async def test_advisor_gets_their_own_partner_only(bot):
    summary, files = await report(bot, "!rapport T3 2026", sender="@karim:test", room=DIRECT)
    assert "· BGE Franche-Comté" in summary and "5 suivis" in summary and "Par structure" not in summary
    assert files["csv"].filename == "rapport-bge-fc-2026-T3.csv"
    summary, _ = await report(bot, "!rapport T3 2026", sender="@karim:test", room=COORD)
    assert "· BGE Franche-Comté" in summary
    for line in ("!rapport T3 2026 urscop", "!rapport urscop"):
        text = await bot.reply_to(line, sender="@karim:test", room=DIRECT)
        assert text.startswith("🔒") and "URSCOP" in text and "BGE Franche-Comté" in text and "Exemple" in text
    text = await bot.reply_to("!rapport 2026 réseau", sender="@karim:test", room=DIRECT)
    assert text.startswith("🔒") and "coordination" in text


async def test_partner_rooms_show_that_partner_only(bot):
    summary, _ = await report(bot, "!rapport T3 2026", sender="@karim:test", room=BGE)
    assert "· BGE Franche-Comté" in summary
    # a coordinator in their partner's room: that partner's figures, and a word on where to get the rest
    summary, _ = await report(bot, "!rapport T3 2026", sender="@claire:test", room=BGE)
    assert "· BGE Franche-Comté" in summary and "message direct" in summary
    text = await bot.reply_to("!rapport T3 2026 urscop", sender="@claire:test", room=BGE)
    assert text.startswith("🔒") and "seuls ses chiffres" in text
    # another partner's room: refused, whoever asks
    for sender, room in (("@karim:test", URSCOP), ("@marc:test", ALDESS), ("@claire:test", URSCOP)):
        text = await bot.reply_to("!rapport T3 2026", sender=sender, room=room)
        assert text.startswith("🔒") and "autre structure" in text, (sender, room)
    summary, _ = await report(bot, "!rapport T3 2026", sender="@ali:test", room=ALDESS)
    assert "· Aldess" in summary and "2 suivis" in summary


async def test_where_it_does_not_run(bot):
    text = await bot.reply_to("!rapport 2026", sender="@claire:test", room=ANNOUNCES)
    assert "n'est pas disponible dans un salon d'annonces" in text
    text = await bot.reply_to("!rapport 2026", sender="@claire:test", room="!autre:test")
    assert "n'est pas disponible" in text and "message direct" in text
    text = await bot.reply_to("!rapport 2026", sender="@inconnu:test", room=COORD)
    assert "Je ne vous trouve pas parmi les membres" in text


@pytest.mark.parametrize("line, words", [
    ("!rapport T5 2026", ["4 trimestres", "« T5 2026 »", "Exemple"]),
    ("!rapport blabla", ["Période illisible", "« blabla »", "bge-fc, urscop, aldess", "Exemple"]),
    ("!rapport 2027", ["n'a pas encore commencé", "Exemple"]),
    ("!rapport 2026 urscop bge-fc", ["Une structure à la fois", "URSCOP et BGE Franche-Comté"]),
    ("!rapport 2026 partenaire=nulle", ["Structure inconnue", "« nulle »", "Exemple"]),
    ("!rapport 2026 urscop réseau", ["il faut choisir"]),
])
async def test_bad_arguments_are_explained(bot, line, words):
    text = await bot.reply_to(line, sender="@claire:test", room=COORD)
    for word in words:
        assert word in text, text


async def test_records_logged_and_cancelled_through_the_bot_count_or_not(tmp_path):
    bot = await Bot(tmp_path, NOW).start()
    try:
        code = await bot.new_project('!projet nouveau "Atelier vélo" dep=25')
        await bot.say(f"!suivi {code} accueil 1h30 hier")
        await bot.say(f"!suivi {code} émergence 45min")
        await bot.say(f"!suivi {code} financement 2h mardi")
        await bot.redact(bot.last_event_id)  # deleting the command message cancels its record
        await bot.say("!suivi annuler 1")
        summary, files = await report(bot, "!rapport novembre 2026")
        assert "1 suivi, 1 projet accompagné (dont 1 nouveau), 45 min" in summary
        assert "Atelier vélo" not in summary and code not in summary
        assert csv_totals(files["csv"])[("Phase", "émergence", "suivis")] == "1"
    finally:
        await bot.close()


async def test_help(bot):
    text = await bot.reply_to("!aide rapport", sender="@claire:test", room=COORD)
    assert "!rapport T3 2026" in text and "trimestre dernier" in text and "CSV" in text

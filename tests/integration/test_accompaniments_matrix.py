"""Accompaniment flows through the real bot on the session's Synapse: !suivi and its undo by deleting the
message, a referral across two partner rooms, and !rapport with its three files downloaded and read."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ess_bot.clock import Clock
from ess_bot.storage.accompaniments import Accompaniment
from tests.harness.matrix_client import match
from tests.integration.test_matrix_bot import is_reply_to

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)   # a Friday; "hier" is 26 November 2026
CODE = re.compile(r"P-[2-9A-HJKMNP-Z]{4}")


class Network:
    """Three members, three rooms (BGE's, URSCOP's, coordination) and the bot in all of them."""

    def __init__(self, bot, karim, marc, claire, bge, urscop, coord):
        self.bot, self.karim, self.marc, self.claire = bot, karim, marc, claire
        self.bge, self.urscop, self.coord = bge, urscop, coord

    async def ask(self, user, room, body, timeout=30):
        """Send a command; return (command event id, the bot's reply)."""
        cmd = await user.send_text(room, body)
        reply = await user.wait_for(room, is_reply_to(cmd), timeout=timeout)
        assert reply["sender"] == self.bot.config.matrix.user_id
        return cmd, reply

    async def new_project(self, label="Café culturel Pixel"):
        _, reply = await self.ask(self.karim, self.bge, f'!projet nouveau "{label}" dep=25 forme=scop')
        assert reply["content"]["body"].startswith("✅ Projet"), reply["content"]["body"]
        return CODE.search(reply["content"]["body"]).group(0)

    async def records(self):
        async with self.bot.app.db.sessions() as session:
            return list((await session.scalars(select(Accompaniment).order_by(Accompaniment.id))).all())


@pytest.fixture
async def network(bot_runner, make_user):
    karim, marc, claire = await make_user("karim"), await make_user("marc"), await make_user("claire")
    bge = await karim.create_room(name="BGE Franche-Comté", invite=[bot_runner.user_id])
    urscop = await marc.create_room(name="URSCOP", invite=[bot_runner.user_id])
    coord = await claire.create_room(name="Coordination", invite=[bot_runner.user_id])
    bot_runner.members = [(karim.user_id, "bge-fc", "advisor"), (marc.user_id, "urscop", "advisor"),
                          (claire.user_id, "bge-fc", "coordinator")]
    bot_runner.partner_rooms = {"bge-fc": bge, "urscop": urscop}
    bot_runner.rooms = {"coordination": coord}
    bot = await bot_runner.start(clock=Clock(PARIS, frozen_at=NOW))
    for user, room in ((karim, bge), (marc, urscop), (claire, coord)):
        await user.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"),
                            timeout=30)
    return Network(bot, karim, marc, claire, bge, urscop, coord)


async def test_suivi_echo_then_undo_by_deleting_the_command(network):
    n = network
    code = await n.new_project()
    cmd, reply = await n.ask(n.karim, n.bge, f"!suivi {code} émergence 1h30 hier")
    content = reply["content"]
    assert content["msgtype"] == "m.notice"
    assert content["body"].startswith(f"✅ Suivi n°1 enregistré — Café culturel Pixel ({code}) · émergence · "
                                      "individuel · 1 h 30 · jeudi 26 novembre 2026")
    assert [(r.id, r.cancelled, r.source_event_id) for r in await n.records()] == [(1, False, cmd)]

    await n.karim.redact(n.bge, cmd)
    notice = await n.karim.wait_for(n.bge, match(sender=n.bot.config.matrix.user_id, type="m.room.message",
                                                 body_contains="annulé"), timeout=30)
    assert notice["content"]["msgtype"] == "m.notice"
    assert notice["content"]["body"].startswith("🗑️ Suivi n°1 annulé (message d'origine supprimé)")
    record = (await n.records())[0]
    assert record.cancelled and record.cancelled_by == n.karim.user_id


async def test_referral_across_two_partner_rooms(network):
    n = network
    code = await n.new_project()
    bot_id = n.bot.config.matrix.user_id
    _, reply = await n.ask(n.karim, n.bge, f'!projet orienter {code} urscop "passage en SCOP"')
    assert "proposée à URSCOP" in reply["content"]["body"] and reply["content"]["msgtype"] == "m.notice"

    announce = await n.marc.wait_for(n.urscop, match(sender=bot_id, type="m.room.message"), timeout=30)
    content = announce["content"]
    assert content["msgtype"] == "m.text"  # it must notify
    assert content["m.mentions"] == {"user_ids": [n.marc.user_id]}
    assert f"https://matrix.to/#/{n.marc.user_id}" in content["formatted_body"]
    assert "Nouvelle orientation pour URSCOP" in content["body"] and "passage en SCOP" in content["body"]
    assert f"!projet accepter {code}" in content["body"]

    _, reply = await n.ask(n.marc, n.urscop, f"!projet accepter {code}")
    assert reply["content"]["body"].startswith(f"✅ Orientation acceptée : Café culturel Pixel ({code})")
    told = await n.karim.wait_for(n.bge, match(sender=bot_id, type="m.room.message", msgtype="m.text"), timeout=30)
    assert "URSCOP a accepté l'orientation" in told["content"]["body"]
    assert told["content"]["m.mentions"] == {"user_ids": [n.karim.user_id]}
    # URSCOP may now log a session on the project
    _, reply = await n.ask(n.marc, n.urscop, f"!suivi {code} ante-création 2h hier")
    assert reply["content"]["body"].startswith("✅ Suivi n°1 enregistré")


async def test_rapport_files_arrive_and_are_readable(network):
    from openpyxl import load_workbook
    from PIL import Image
    import matplotlib.image

    n = network
    code = await n.new_project()
    await n.ask(n.karim, n.bge, f"!suivi {code} accueil 1h30 hier")
    await n.ask(n.karim, n.bge, f"!suivi {code} émergence 45min")
    bot_id = n.bot.config.matrix.user_id

    cmd = await n.claire.send_text(n.coord, "!rapport 2026")
    events = await n.claire.collect(n.coord, match(sender=bot_id, type="m.room.message"), 4, timeout=90)
    assert all(is_reply_to(cmd)(ev) for ev in events)
    summary, csv_ev, xlsx_ev, png_ev = events
    assert summary["content"]["msgtype"] == "m.notice"
    body = summary["content"]["body"]
    assert body.startswith("📊 Bilan d'accompagnement — année 2026 (du 1er janvier au 31 décembre 2026) · tout le réseau")
    assert "2 suivis, 1 projet accompagné (dont 1 nouveau), 2 h 15" in body
    assert "Café culturel Pixel" not in body and code not in body
    assert [ev["content"]["msgtype"] for ev in events[1:]] == ["m.file", "m.file", "m.image"]
    assert [ev["content"]["body"] for ev in events[1:]] == ["rapport-reseau-2026.csv", "rapport-reseau-2026.xlsx",
                                                            "rapport-reseau-2026.png"]
    assert png_ev["content"]["info"]["mimetype"] == "image/png"

    data = await n.claire.download(csv_ev["content"]["url"])
    assert csv_ev["content"]["info"]["size"] == len(data)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    values = {(r["rubrique"], r["groupe"], r["indicateur"]): r["valeur"] for r in rows}
    assert values[("Total", "tout", "suivis")] == "2" and values[("Total", "tout", "heures")] == "2,25"
    assert values[("Structure", "BGE Franche-Comté", "suivis")] == "2"
    assert values[("Mois", "2026-11", "heures")] == "2,25"

    wb = load_workbook(io.BytesIO(await n.claire.download(xlsx_ev["content"]["url"])))
    assert wb.sheetnames[:3] == ["Synthèse", "Structures", "Phases"]
    synth = {r[0]: r[1] for r in wb["Synthèse"].iter_rows(values_only=True) if r and r[0]}
    assert synth["Période"] == "du 1er janvier au 31 décembre 2026" and synth["Suivis"] == 2
    assert synth["Généré le"] == "27 novembre 2026 à 10 h"
    structures = [list(r) for r in wb["Structures"].iter_rows(values_only=True)]
    assert structures[0] == ["Structure", "Suivis", "Projets", "Heures"]
    assert structures[1] == ["BGE Franche-Comté", 2, 1, 2.25] and structures[-1] == ["Total", 2, 1, 2.25]
    phases = [list(r) for r in wb["Phases"].iter_rows(values_only=True)]
    assert phases[1] == ["accueil", 1, 1, 1.5] and phases[2] == ["émergence", 1, 1, 0.75]

    png = await n.claire.download(png_ev["content"]["url"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2] == (384, 720)

    # an advisor asking for another partner's figures is refused
    _, reply = await n.ask(n.marc, n.urscop, "!rapport 2026 bge-fc")
    assert reply["content"]["body"].startswith("🔒")


async def test_referral_to_a_partner_without_a_room_names_only_the_code_in_the_coordination_room(
        bot_runner, make_user):
    """Issue 12: URSCOP has no room of its own here; its member is told in the coordination room, which
    every structure reads: the project's code, never its name nor the motive."""
    karim, marc, claire = await make_user("karim"), await make_user("marc"), await make_user("claire")
    bge = await karim.create_room(name="BGE Franche-Comté", invite=[bot_runner.user_id])
    coord = await claire.create_room(name="Coordination", invite=[bot_runner.user_id, marc.user_id])
    await marc.join(coord)
    bot_runner.members = [(karim.user_id, "bge-fc", "advisor"), (marc.user_id, "urscop", "advisor"),
                          (claire.user_id, "bge-fc", "coordinator")]
    bot_runner.partner_rooms = {"bge-fc": bge}
    bot_runner.rooms = {"coordination": coord}
    bot = await bot_runner.start(clock=Clock(PARIS, frozen_at=NOW))
    for user, room in ((karim, bge), (claire, coord)):
        await user.wait_for(room, match(type="m.room.member", state_key=bot_runner.user_id, membership="join"),
                            timeout=30)
    n = Network(bot, karim, marc, claire, bge, None, coord)
    code = await n.new_project("Zorglub Secret")
    _, reply = await n.ask(karim, bge, f'!projet orienter {code} urscop "motif confidentiel"')
    assert "dans le salon de coordination (par le code du projet seulement)" in reply["content"]["body"]
    announce = await marc.wait_for(coord, match(sender=bot_runner.user_id, type="m.room.message"), timeout=30)
    content = announce["content"]
    assert content["msgtype"] == "m.text" and content["m.mentions"] == {"user_ids": [marc.user_id]}
    assert f"le projet {code} vous est proposé par BGE Franche-Comté" in content["body"]
    for text in (content["body"], content["formatted_body"]):
        assert "Zorglub" not in text and "motif confidentiel" not in text
    # accepting there: the reply names the code only; the holder's room gets the name
    _, reply = await n.ask(marc, coord, f"!projet accepter {code}")
    assert reply["content"]["body"].startswith(f"✅ Orientation acceptée : {code} est maintenant visible pour URSCOP")
    assert "Zorglub" not in reply["content"]["body"]
    told = await karim.wait_for(bge, match(sender=bot_runner.user_id, type="m.room.message", msgtype="m.text"),
                                timeout=30)
    assert f"URSCOP a accepté l'orientation du projet Zorglub Secret ({code})" in told["content"]["body"]

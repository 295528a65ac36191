"""!evenement through the dispatcher (Harness on SQLite): announcements in every room with an .ics,
refusals, rights, reminders (on time, late, skipped), updates and cancellations."""

from datetime import datetime

import pytest
from icalendar import Calendar
from sqlalchemy import select

from ess_bot.storage.models import ScheduledJob
from tests.support import PARIS, Harness, make_config, started_harness

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
ADD = ('!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon" '
       'lien=https://pixel.example/inscription public=porteurs,partenaires #mois-ess')
ROOMS = ["!annonces:test", "!bge:test", "!urscop:test"]


@pytest.fixture
async def h(tmp_path):
    async with started_harness(tmp_path, NOW) as harness:
        yield harness


def vevent(out):
    [ev] = Calendar.from_ical(out.data).walk("VEVENT")
    return ev


async def jobs(h):
    async with h.app.db.sessions() as s:
        return {j.key: j for j in (await s.scalars(select(ScheduledJob).order_by(ScheduledJob.id))).all()}


async def run_at(h, when):
    h.clock.set(when)
    await h.app.scheduler.run_due()
    return await h.flush()


async def test_add_announces_in_every_room_with_an_ics_and_confirms(h):
    sent = await h.say(ADD, sender="@karim:test", event_id="$add")
    *broadcast, confirmation = sent
    assert [(o.room_id, o.kind) for o in broadcast] == [(r, k) for r in ROOMS for k in ("text", "file")]
    for card, ics in zip(broadcast[::2], broadcast[1::2]):
        assert card.paced and ics.paced and card.kind == "text"  # notifies
        assert card.body.startswith("📅 Nouvel événement : Inauguration du Pixel")
        assert "Quand : vendredi 15 janvier 2027, de 18 h à 21 h" in card.body
        assert "<strong>Où :</strong> Le Pixel, Besançon" in card.html
        assert ics.filename == "inauguration-du-pixel-1.ics" and ics.mimetype == "text/calendar"
        ev = vevent(ics)
        assert str(ev["UID"]) == "event-1@ess-bot" and int(ev["SEQUENCE"]) == 0
    assert confirmation.kind == "notice" and confirmation.reply_to == "$add"
    assert "Événement n°1 « Inauguration du Pixel » enregistré : vendredi 15 janvier 2027, de 18 h à 21 h." \
        in confirmation.body
    assert ("Annoncé dans 3 salons : le salon d'annonces, le salon de BGE Franche-Comté et le salon d'URSCOP"
            in confirmation.body)
    assert "Rappels prévus : J-7 (8 janvier 2027) et J-1 (14 janvier 2027)" in confirmation.body
    keys = await jobs(h)
    assert set(keys) == {"event:1:reminder:7", "event:1:reminder:1"}
    assert keys["event:1:reminder:1"].run_at == datetime(2027, 1, 14, 9, 0, tzinfo=PARIS)


async def test_default_end_is_two_hours_and_without_partner_rooms(tmp_path):
    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/t.db", "[events]\nannounce_in_partner_rooms = false\n")
    h = await Harness(config.database.url, NOW, config).start()
    try:
        *broadcast, confirmation = await h.say('!evenement ajouter "Café ESS" 2/12 9h', sender="@karim:test")
        assert [o.room_id for o in broadcast] == ["!annonces:test", "!annonces:test"]
        assert "mercredi 2 décembre 2026, de 9 h à 11 h" in confirmation.body
        assert "Annoncé dans 1 salon : le salon d'annonces" in confirmation.body
    finally:
        await h.close()


@pytest.mark.parametrize("command, message", [
    ('!evenement ajouter "Passé" 20/11/2026 18h', "La date de début"),
    ('!evenement ajouter "Passé" 24/11/2026 9h', "est déjà passée"),
    ('!evenement ajouter "À l\'envers" 15/01/2027 18h fin=17h', "La fin (17 h) doit être après le début (18 h)"),
    ('!evenement ajouter "Sans heure" 15/01/2027', "Il manque l'heure de début"),
    ('!evenement ajouter 15/01/2027 18h', "Il manque le titre (entre guillemets)"),
    ('!evenement ajouter "Date folle" 32/01/2027 18h', "Cette date n'existe pas : « 32/01/2027 »"),
    ('!evenement ajouter "X" 15/01/2027 18h public=martiens', "Valeur inconnue pour public : « martiens »"),
    ('!evenement ajouter "X" 15/01/2027 18h couleur=rouge', "Option inconnue : « couleur= »"),
    ('!evenement ajouter "X" 15/01/2027 18h organisateur=inconnu', "Organisateur inconnu : « inconnu »"),
    ('!evenement ajouter "X" 15/01/2027 18h lien=ftp://x', "Lien refusé : « ftp://x » n'est pas une adresse web"),
    ('!evenement ajouter "X" 15/01/2027 18h lien=https://', "Lien invalide : « https:// »"),
])
async def test_bad_input_is_refused_with_the_value_and_an_example(h, command, message):
    [reply] = await h.say(command, sender="@karim:test")
    assert reply.kind == "notice" and message in reply.body, reply.body
    assert "Exemple" in reply.body
    assert await jobs(h) == {}


async def test_rights_own_partner_for_members_any_for_coordinators(h, tmp_path):
    [reply] = await h.say('!evenement ajouter "X" 15/01/2027 18h organisateur=urscop', sender="@karim:test")
    assert "pas ceux des autres (ici : URSCOP)" in reply.body
    sent = await h.say('!evenement ajouter "Forum" 15/01/2027 18h organisateur=réseau', sender="@claire:test")
    assert "Organisé par : le réseau ESS" in sent[0].body
    await h.say(ADD, sender="@karim:test")  # n°2, BGE
    [reply] = await h.say("!evenement annuler 2", sender="@marc:test")
    assert "pas ceux des autres (ici : BGE Franche-Comté)" in reply.body

    config = make_config(f"sqlite+aiosqlite:///{tmp_path}/c.db", "[events]\nmembers_may_add = false\n")
    h2 = await Harness(config.database.url, NOW, config).start()
    try:
        [reply] = await h2.say(ADD, sender="@karim:test")
        assert "Seule la coordination du réseau peut annoncer" in reply.body
        assert len(await h2.say(ADD, sender="@claire:test")) == 7
    finally:
        await h2.close()


async def test_reminders_on_time_then_late_then_skipped(h):
    await h.say(ADD, sender="@karim:test")
    assert await run_at(h, datetime(2027, 1, 8, 8, 59, tzinfo=PARIS)) == []
    sent = await run_at(h, datetime(2027, 1, 8, 9, 0, tzinfo=PARIS))
    assert [(o.room_id, o.kind) for o in sent] == [(r, k) for r in ROOMS for k in ("text", "file")]
    assert sent[0].body.startswith("⏰ Rappel : Inauguration du Pixel")
    assert "C'est dans 7 jours, le vendredi 15 janvier 2027 à 18 h." in sent[0].body
    assert "en retard" not in sent[0].body
    # in reply to the announcement of that room (the recorder names the n-th message sent "$sent-n")
    assert [o.reply_to for o in sent[::2]] == ["$sent-1", "$sent-3", "$sent-5"]
    # the bot was down on J-1 at 9:00 and comes back at 15:00: the reminder goes out, saying so
    sent = await run_at(h, datetime(2027, 1, 14, 15, 0, tzinfo=PARIS))
    assert "C'est demain à 18 h." in sent[0].body
    assert "(Rappel prévu le jeudi 14 janvier 2027 à 9 h, envoyé en retard : le bot était indisponible.)" \
        in sent[0].body
    statuses = {k: j.status for k, j in (await jobs(h)).items()}
    assert statuses == {"event:1:reminder:7": "done", "event:1:reminder:1": "late"}


async def test_missed_reminders_of_a_past_event_are_skipped_and_only_the_closest_one_is_sent(h):
    await h.say(ADD, sender="@karim:test")
    await h.say('!evenement ajouter "Atelier" 20/01/2027 14h', sender="@karim:test")
    # down from before J-7 until after the first event: its reminders are skipped; for the second,
    # J-7 (13/01) and J-1 (19/01)… the bot is back on 16/01: J-7 is late and J-1 not due yet
    sent = await run_at(h, datetime(2027, 1, 16, 10, 0, tzinfo=PARIS))
    assert len(sent) == 6 and "Atelier" in sent[0].body and "envoyé en retard" in sent[0].body
    js = await jobs(h)
    assert js["event:1:reminder:7"].status == "skipped" and js["event:1:reminder:1"].status == "skipped"
    assert js["event:1:reminder:1"].note == "événement déjà commencé ou passé"
    # a third event whose J-7 and J-1 are both missed: only J-1 is sent
    await h.say('!evenement ajouter "Forum" 1/02/2027 14h', sender="@karim:test")
    sent = await run_at(h, datetime(2027, 1, 31, 12, 0, tzinfo=PARIS))
    assert len(sent) == 6 and "C'est demain à 14 h." in sent[0].body
    js = await jobs(h)
    assert js["event:3:reminder:7"].status == "skipped" and js["event:3:reminder:1"].status == "late"


async def test_update_announces_changes_with_next_sequence_and_moves_reminders(h):
    await h.say(ADD, sender="@karim:test")
    sent = await h.say("!evenement modifier 1 date=22/01/2027 heure=18h30 lieu=\"Salle des fêtes\"",
                       sender="@karim:test")
    *broadcast, reply = sent
    assert [(o.room_id, o.kind) for o in broadcast] == [(r, k) for r in ROOMS for k in ("text", "file")]
    card = broadcast[0]
    assert card.body.startswith("✏️ Événement modifié : Inauguration du Pixel")
    assert ("Date : vendredi 15 janvier 2027, de 18 h à 21 h → vendredi 22 janvier 2027, de 18 h 30 à 21 h 30"
            in card.body)
    assert "Lieu : Le Pixel, Besançon → Salle des fêtes" in card.body
    assert [o.reply_to for o in broadcast[::2]] == ["$sent-1", "$sent-3", "$sent-5"]
    ev = vevent(broadcast[1])
    assert str(ev["UID"]) == "event-1@ess-bot" and int(ev["SEQUENCE"]) == 1
    assert ev.decoded("DTSTART") == datetime(2027, 1, 22, 18, 30, tzinfo=PARIS)
    assert "Rappels : J-7 (15 janvier 2027) et J-1 (21 janvier 2027)" in reply.body
    js = await jobs(h)
    assert js["event:1:reminder:7"].status == "cancelled"
    assert js["event:1:reminder:7:1"].status == "pending"
    assert js["event:1:reminder:7:1"].run_at == datetime(2027, 1, 15, 9, 0, tzinfo=PARIS)
    # nothing on the old dates, the new ones on time
    assert await run_at(h, datetime(2027, 1, 8, 9, 0, tzinfo=PARIS)) == []
    sent = await run_at(h, datetime(2027, 1, 15, 9, 0, tzinfo=PARIS))
    assert "Salle des fêtes" in sent[0].body and int(vevent(sent[1])["SEQUENCE"]) == 1
    [reply] = await h.say("!evenement modifier 1 lieu=\"Salle des fêtes\"", sender="@karim:test")
    assert "rien n'a changé" in reply.body
    [reply] = await h.say("!evenement modifier 1 fin=17h", sender="@karim:test")
    assert "doit être après le début" in reply.body


async def test_cancel_announces_cancellation_and_cancels_reminders(h):
    await h.say(ADD, sender="@karim:test")
    *broadcast, reply = await h.say('!evenement annuler 1 "salle indisponible"', sender="@claire:test")
    assert broadcast[0].body.startswith("❌ Événement annulé : Inauguration du Pixel")
    assert "Raison : salle indisponible" in broadcast[0].body
    ev = vevent(broadcast[1])
    assert str(ev["STATUS"]) == "CANCELLED" and int(ev["SEQUENCE"]) == 1 and str(ev["UID"]) == "event-1@ess-bot"
    assert "les rappels ne partiront pas" in reply.body
    assert {j.status for j in (await jobs(h)).values()} == {"cancelled"}
    assert await run_at(h, datetime(2027, 1, 14, 9, 0, tzinfo=PARIS)) == []
    [reply] = await h.say("!evenement annuler 1", sender="@claire:test")
    assert "L'événement n°1 « Inauguration du Pixel » est déjà annulé." in reply.body
    [reply] = await h.say("!evenement modifier 1 heure=19h", sender="@claire:test")
    assert "est annulé : on ne peut plus le modifier" in reply.body
    h.clock.set(datetime(2027, 1, 16, 9, 0, tzinfo=PARIS))
    await h.say('!evenement ajouter "Atelier" 20/01/2027 14h', sender="@karim:test")
    h.clock.set(datetime(2027, 1, 21, 9, 0, tzinfo=PARIS))
    [reply] = await h.say("!evenement annuler 2", sender="@claire:test")
    assert "est déjà passé : on ne peut plus l'annuler" in reply.body


async def test_list_and_show(h):
    [reply] = await h.say("!evenement liste")
    assert "Aucun événement à venir" in reply.body
    await h.say(ADD, sender="@karim:test")
    await h.say('!evenement ajouter "Café ESS" 2/12 9h', sender="@karim:test")
    [reply] = await h.say("!evenement liste")
    lines = reply.body.splitlines()
    assert "Événements à venir (2)" in lines[0]
    assert lines[1].startswith("- n°2 · Café ESS — mercredi 2 décembre 2026, de 9 h à 11 h")
    assert "n°1 · Inauguration du Pixel" in lines[2]
    card, ics = await h.say("!evenement voir 1")
    assert "Annoncé dans le salon d'annonces, le salon de BGE Franche-Comté et le salon d'URSCOP" in card.body
    assert ics.kind == "file" and ics.filename.endswith(".ics") and str(vevent(ics)["UID"]) == "event-1@ess-bot"
    [reply] = await h.say("!evenement voir 42")
    assert "Je ne trouve pas d'événement n°42" in reply.body


async def test_unknown_action_suggests_and_help_has_examples(h):
    [reply] = await h.say("!evenement ajoute")
    assert "Action inconnue : « ajoute »" in reply.body and "!evenement ajouter" in reply.body
    [reply] = await h.say("!aide evenement")
    for sub in ("ajouter", "modifier", "annuler", "liste", "voir"):
        assert f"!evenement {sub}" in reply.body
    assert "Exemples" in reply.body

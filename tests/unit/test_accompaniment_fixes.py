"""QA and review fixes for !projet and !suivi, end to end: dispatcher, real SQLite database, frozen
clock, drained outbox (see ``tests.unit.accompaniment_driver``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from ess_bot.storage.accompaniments import Accompaniment, Project, ProjectOutcome
from tests.unit.accompaniment_driver import ALDESS, BGE, COORD, PARIS, URSCOP, Bot

DIRECT_SOPHIE = "!direct-sophie:test"
DIRECT_KARIM = "!direct-karim:test"
QA_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)   # a Tuesday: the day of the QA report
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)      # a Friday
PIXEL = '!projet nouveau "Café culturel Pixel" dep=25 forme=association'


@pytest.fixture
async def make_bot(tmp_path):
    bots: list[Bot] = []

    async def make(now: datetime = NOW) -> Bot:
        path = tmp_path / f"bot{len(bots)}"
        path.mkdir()
        bot = await Bot(path, now).start()
        bots.append(bot)
        return bot

    try:
        yield make
    finally:
        for bot in bots:
            await bot.close()


@pytest.fixture
async def bot(make_bot) -> Bot:
    return await make_bot(NOW)


@pytest.fixture
async def pixel(bot) -> str:
    return await bot.new_project(PIXEL)


async def records(bot) -> list[Accompaniment]:
    async with bot.app.db.sessions() as s:
        return list((await s.scalars(select(Accompaniment).order_by(Accompaniment.id))).all())


async def project_row(bot, code: str) -> Project:
    async with bot.app.db.sessions() as s:
        return await s.scalar(select(Project).where(Project.code == code))


async def accept(bot, code: str, to: str = "urscop") -> None:
    await bot.say(f"!projet orienter {code} {to}")
    sender, room = {"urscop": ("@marc:test", URSCOP), "aldess": ("@ali:test", ALDESS)}[to]
    assert "Orientation acceptée" in await bot.reply_to(f"!projet accepter {code}", sender=sender, room=room)


# -- 1. the duration must not swallow the day of the month ---------------------------------------

@pytest.mark.parametrize("line, summary", [
    ("accueil 2h 15 novembre 2025", "accueil · individuel · 2 h · samedi 15 novembre 2025"),
    ("accueil 1h 12 novembre", "accueil · individuel · 1 h · jeudi 12 novembre 2026"),
    ("accueil 1 h 12 nov.", "accueil · individuel · 1 h · jeudi 12 novembre 2026"),
    ("accueil 2h 15 nov", "accueil · individuel · 2 h · dimanche 15 novembre 2026"),
    ("accueil 2h 15", "accueil · individuel · 2 h 15 · mardi 24 novembre 2026"),
    ("accueil 2h 15 hier", "accueil · individuel · 2 h 15 · lundi 23 novembre 2026"),
    ("12 novembre accueil 2h 15", "accueil · individuel · 2 h 15 · jeudi 12 novembre 2026"),
])
async def test_duration_leaves_the_day_of_the_month(make_bot, line, summary):
    bot = await make_bot(QA_NOW)
    code = await bot.new_project(PIXEL)
    text = await bot.reply_to(f"!suivi {code} {line}")
    assert text.splitlines()[0] == f"✅ Suivi n°1 enregistré — Café culturel Pixel ({code}) · {summary}", text


# -- 2. year guessing, weekdays, old dates --------------------------------------------------------

async def test_year_rule_is_the_same_for_every_date(make_bot):
    bot = await make_bot(QA_NOW)
    code = await bot.new_project(PIXEL)
    for day in ("12/12", "31/12"):
        text = await bot.reply_to(f"!suivi {code} accueil 1h {day}")
        assert f"« {day} »" in text and "futur" in text and f"{day}/2025" in text
    text = await bot.reply_to(f"!suivi {code} accueil 1h 29/02")
    assert "« 29/02 »" in text and "bissextile" in text and "29/02/2024" in text
    assert await records(bot) == []


async def test_a_deduced_past_year_is_said(make_bot):
    bot = await make_bot(datetime(2027, 1, 10, 10, 0, tzinfo=PARIS))
    code = await bot.new_project(PIXEL)
    text = await bot.reply_to(f"!suivi {code} accueil 1h 15/12")
    assert "mardi 15 décembre 2026 (année 2026 déduite)" in text.splitlines()[0]
    text = await bot.reply_to(f"!suivi {code} accueil 1h 05/01")
    assert "déduite" not in text
    text = await bot.reply_to("!suivi modifier 1 date=14/12")
    assert "lundi 14 décembre 2026" in text and "(année 2026 déduite)" in text
    text = await bot.reply_to(f"!projet issue {code} abandon 20/12")
    assert "abandon le 20 décembre 2026 (année 2026 déduite)" in text


async def test_weekday_contradicting_the_date_is_refused(bot, pixel):
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h jeudi 25/11")
    assert "« jeudi 25/11 »" in text and "un mercredi, pas un jeudi" in text
    assert await records(bot) == []
    assert "✅" in await bot.reply_to(f"!suivi {pixel} accueil 1h mercredi 25/11")


@pytest.mark.parametrize("when", ["novembre 2020", "12/11/2020", "date=01/01/2022"])
async def test_dates_older_than_three_years_are_refused(make_bot, when):
    bot = await make_bot(QA_NOW)
    code = await bot.new_project(PIXEL)
    text = await bot.reply_to(f"!suivi {code} accueil 1h {when}")
    assert f"« {when.removeprefix('date=')} »" in text and "plus de 3 ans" in text
    assert "convention en cours" in text and "RGPD" in text and "coordination" in text
    assert await records(bot) == []
    text = await bot.reply_to(f"!projet issue {code} abandon 12/11/2020")
    assert "plus de 3 ans" in text


# -- 3. visibility: details only where the room may see the project -------------------------------

async def test_coordinator_of_another_partner_does_not_show_details_in_her_room(bot, pixel):
    await bot.say(f'!suivi {pixel} accueil 1h "plan de financement"')
    await bot.say(f"!projet profil {pixel} femme 30")
    for line in (f"!projet voir {pixel}", f"!suivi projet {pixel}", "!projet voir Pixel"):
        text = await bot.reply_to(line, sender="@sophie:test", room=URSCOP)
        assert text.startswith("🔒") and "n'est pas suivi par URSCOP" in text, text
        for secret in ("Café culturel Pixel", "plan de financement", "femme", "26–49"):
            assert secret not in text
    # in a direct message she sees it (coordinators see every project)
    assert "Café culturel Pixel" in await bot.reply_to(f"!projet voir {pixel}", sender="@sophie:test",
                                                      room=DIRECT_SOPHIE)
    # once URSCOP accepted the project, its room may show it, whoever asks
    await accept(bot, pixel)
    text = await bot.reply_to(f"!suivi projet {pixel}", sender="@sophie:test", room=URSCOP)
    assert "Café culturel Pixel" in text and "plan de financement" in text
    text = await bot.reply_to(f"!projet voir {pixel}", sender="@claire:test", room=URSCOP)
    assert "Café culturel Pixel" in text and "femme" in text
    # never in a room of a partner that does not follow it, nor in the coordination room
    for room in (ALDESS, COORD):
        assert (await bot.reply_to(f"!projet voir {pixel}", sender="@claire:test", room=room)).startswith("🔒")


async def test_ambiguous_label_in_a_shared_room_names_codes_not_labels(bot, pixel):
    other = await bot.new_project('!projet nouveau "Pixel Art" dep=25', sender="@marc:test", room=URSCOP)
    text = await bot.reply_to("!projet voir Pixel", sender="@claire:test", room=COORD)
    assert pixel in text and other in text and "Pixel Art" not in text and "Café culturel" not in text


@pytest.mark.parametrize("room", [COORD, ALDESS, URSCOP])
async def test_record_confirmations_in_shared_rooms_hide_label_and_note(bot, pixel, room):
    text = await bot.reply_to(f'!suivi {pixel} émergence 1h30 visio hier "premier contact"', room=room)
    assert text.splitlines()[0] == (f"✅ Suivi n°1 enregistré — {pixel} · émergence · visio · 1 h 30 · "
                                    "jeudi 26 novembre 2026")
    assert "Café culturel Pixel" not in text and "premier contact" not in text
    text = await bot.reply_to('!suivi modifier 1 note="second contact" durée=2h', room=room)
    assert text.startswith(f"✏️ Suivi n°1 modifié (durée : 1 h 30 → 2 h et note modifiée) — {pixel} · ")
    assert "contact" not in text and "Café culturel Pixel" not in text
    text = await bot.reply_to("!suivi annuler 1", room=room)
    assert text.startswith(f"🗑️ Suivi n°1 annulé — {pixel} · émergence") and "Café culturel Pixel" not in text
    # where the room may see the project, everything is repeated
    text = await bot.reply_to(f'!suivi {pixel} accueil 1h "premier contact"')
    assert "Café culturel Pixel" in text and "Note : « premier contact »" in text


async def test_record_confirmation_in_the_room_of_an_accepting_partner_shows_the_label(bot, pixel):
    await accept(bot, pixel)
    text = await bot.reply_to(f'!suivi {pixel} accueil 1h "premier contact"', room=URSCOP)
    assert f"Café culturel Pixel ({pixel})" in text and "premier contact" in text


async def test_redaction_notice_in_a_shared_room_hides_the_label(bot, pixel):
    await bot.say(f"!suivi {pixel} accueil 1h", room=COORD)
    outs = await bot.redact(bot.last_event_id, room=COORD)
    assert len(outs) == 1
    assert outs[0].body.startswith(f"🗑️ Suivi n°1 annulé (message d'origine supprimé) — {pixel} ·")
    assert "Café culturel Pixel" not in outs[0].body


# -- 4. who may change a project, who may log on it -----------------------------------------------

async def test_receiving_partner_logs_records_but_does_not_change_the_project(bot, pixel):
    await accept(bot, pixel)
    for line in (f"!projet issue {pixel} abandon", f"!projet profil {pixel} homme",
                 f"!projet modifier {pixel} forme=scic", f'!projet modifier {pixel} libelle="Autre nom"'):
        text = await bot.reply_to(line, sender="@marc:test", room=URSCOP)
        assert f"Le projet {pixel} est porté par BGE Franche-Comté" in text and "enregistrer des suivis" in text, text
    row = await project_row(bot, pixel)
    assert (row.label, row.legal_form, row.gender) == ("Café culturel Pixel", "association", None)
    async with bot.app.db.sessions() as s:
        assert await s.scalar(select(ProjectOutcome)) is None
    assert "✅ Suivi n°1" in await bot.reply_to(f"!suivi {pixel} accueil 1h", sender="@marc:test", room=URSCOP)
    # the holding partner's members and the coordinators may
    assert "✏️" in await bot.reply_to(f"!projet modifier {pixel} forme=scic", sender="@paul:test")
    assert "✏️" in await bot.reply_to(f"!projet modifier {pixel} esus=demandé", sender="@sophie:test",
                                       room=DIRECT_SOPHIE)


async def test_coordinator_logs_only_on_projects_of_her_partner(bot, pixel):
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h", sender="@sophie:test", room=DIRECT_SOPHIE)
    assert f"Le projet {pixel} est porté par BGE Franche-Comté" in text and "compterait pour URSCOP" in text
    assert await records(bot) == []
    # she may still correct or cancel anyone's record
    await bot.say(f"!suivi {pixel} accueil 1h")
    assert "modifié" in await bot.reply_to("!suivi modifier 1 durée=2h", sender="@sophie:test", room=DIRECT_SOPHIE)
    assert "annulé" in await bot.reply_to("!suivi annuler 1", sender="@sophie:test", room=DIRECT_SOPHIE)
    # and log once the project was referred to URSCOP and accepted
    await accept(bot, pixel)
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h", sender="@sophie:test", room=DIRECT_SOPHIE)
    assert text.startswith("✅ Suivi n°2")
    assert (await records(bot))[-1].partner == "urscop"


# -- 5. an outcome keeps what is not given again ---------------------------------------------------

async def test_outcome_keeps_previous_values(bot, pixel):
    await bot.say(f"!projet issue {pixel} creation forme=scop emplois=1,5")
    text = await bot.reply_to(f"!projet issue {pixel} creation")
    assert "Rien n'a changé" in text and "emplois créés : 1,5 ETP" in text and "non renseignés" not in text
    text = await bot.reply_to(f"!projet issue {pixel} creation forme=scic")
    assert "Issue mise à jour" in text and "Changements : forme juridique : SCOP → SCIC." in text
    assert "emplois créés : 1,5 ETP" in text and "Repris de l'issue précédente" in text
    async with bot.app.db.sessions() as s:
        row = await s.scalar(select(ProjectOutcome))
    assert (row.outcome, row.legal_form, Decimal(row.jobs_fte)) == ("creation", "scic", Decimal("1.5"))
    text = await bot.reply_to(f"!projet issue {pixel} abandon")
    assert "issue : création → abandon" in text and "emplois créés : 1,5 ETP → —" in text


# -- 6. no health data in the chat -----------------------------------------------------------------

@pytest.mark.parametrize("note, word", [("dossier MDPH", "MDPH"), ("a la RQTH", "RQTH"), ("touche l'AAH", "AAH"),
                                        ("situation de handicap", "handicap"), ("Maladie chronique", "Maladie"),
                                        ("raisons de santé", "santé"), ("suivi médical", "médical"),
                                        ("en dépression", "dépression"), ("cancer", "cancer"),
                                        ("grossesse", "grossesse"), ("en ALD", "ALD")])
async def test_notes_with_health_data_are_refused(bot, pixel, note, word):
    text = await bot.reply_to(f'!suivi {pixel} accueil 1h "{note}"')
    assert text.startswith("🔒") and f"« {word} »" in text and "pas de données de santé dans le chat" in text
    assert "il contient cette donnée de santé" in text and "Exemple" in text
    assert await records(bot) == []


async def test_health_data_elsewhere_is_refused(bot, pixel):
    assert "donnée de santé" in await bot.reply_to('!projet nouveau "Pixel RQTH" dep=25')
    # a place of the health sector is a project's name, not anyone's health
    assert "✅" in await bot.reply_to('!projet nouveau "Maison de santé des Tilleuls" dep=25')
    assert "donnée de santé" in await bot.reply_to(f'!projet orienter {pixel} urscop "RQTH à prévoir"')
    await bot.say(f"!suivi {pixel} accueil 1h")
    assert "donnée de santé" in await bot.reply_to('!suivi modifier 1 note="handicap"')
    assert "✅" in await bot.reply_to(f'!suivi {pixel} accueil 1h "santon et maladroit"')


# -- 7. labels of several words, ages ---------------------------------------------------------------

@pytest.mark.parametrize("typed, shown", [
    ("demandeur d’emploi indemnisé", "statut : demandeur d'emploi indemnisé"),
    ("demandeur d'emploi non indemnisé", "statut : demandeur d'emploi non indemnisé"),
    ("Demandeur d'emploi de longue durée", "statut : demandeur d'emploi de longue durée"),
    ("sans activité", "statut : sans activité"),
    ("moins de 26 ans", "tranche d'âge : moins de 26 ans"),
    ("50 ans et plus", "tranche d'âge : 50 ans et plus"),
    ("30", "tranche d'âge : 26–49 ans"), ("25", "tranche d'âge : moins de 26 ans"),
    ("52 ans", "tranche d'âge : 50 ans et plus"),
    ("statut=demandeur d'emploi indemnisé", "statut : demandeur d'emploi indemnisé"),
    ('statut="sans activité"', "statut : sans activité"),
    ("femme 30 demandeur d'emploi indemnisé rsa", "minima sociaux : RSA"),
])
async def test_profile_accepts_labels_of_several_words_and_ages(bot, pixel, typed, shown):
    text = await bot.reply_to(f"!projet profil {pixel} {typed}")
    assert text.startswith("✅ Profil du porteur") and shown in text, text


async def test_the_suggested_label_works_when_typed(bot, pixel):
    text = await bot.reply_to(f"!projet profil {pixel} demandeur")
    assert "ambigu" in text and "demandeur d'emploi indemnisé" in text
    text = await bot.reply_to(f"!projet profil {pixel} demandeur d'emploi indemnisé")
    assert "statut : demandeur d'emploi indemnisé" in text
    text = await bot.reply_to(f"!projet profil {pixel} 7")
    assert "« 7 »" in text and "Âge improbable" in text


async def test_presentiel_and_month_abbreviations(bot, pixel):
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h présentiel 12 nov.")
    assert "accueil · individuel · 1 h · jeudi 12 novembre 2026" in text
    text = await bot.reply_to(f"!suivi {pixel} post création 1h 12 nov en présentiel")
    assert "post-création · individuel · 1 h · jeudi 12 novembre 2026" in text


# -- messages -------------------------------------------------------------------------------------

async def test_wording(bot, pixel):
    await bot.say(f"!projet orienter {pixel} urscop")
    assert f"Le projet {pixel} a déjà été proposé à URSCOP" in await bot.reply_to(f"!projet orienter {pixel} urscop")
    await bot.say(f"!suivi {pixel} accueil 1h")
    assert "peut l'annuler" in await bot.reply_to("!suivi annuler 1", sender="@paul:test")
    assert "peut le modifier" in await bot.reply_to("!suivi modifier 1 durée=2h", sender="@paul:test")
    text = await bot.reply_to("!suivi annuler")
    assert "je n'ai rien reçu" in text and "!suivi annuler 42" in text
    text = await bot.reply_to("!suivi annuler 99999999999999999999")
    assert "Numéro « 99999999999999999999 » trop grand" in text
    atelier = await bot.new_project('!projet nouveau "Atelier vélo" dep=25')
    text = await bot.reply_to(f"!projet orienter {atelier} aldess")
    assert text.startswith(f"📨 Orientation d'Atelier vélo ({atelier}) proposée à Aldess")
    assert f"Historique d'Atelier vélo ({atelier})" in await bot.reply_to(f"!suivi projet {atelier}")


async def test_unknown_subcommand_suggests_the_nearest(bot):
    text = await bot.reply_to('!projet nouvaeu "Test" dep=25')
    assert text.startswith("Sous-commande inconnue « nouvaeu ». Vouliez-vous dire !projet nouveau ?")
    assert '!projet nouveau "Test" dep=25' in text
    text = await bot.reply_to("!projet P-2222")
    assert "Sous-commande inconnue « P-2222 »" in text and "!projet voir P-2222" in text
    text = await bot.reply_to("!suivi lsite")
    assert "Vouliez-vous dire !suivi liste ?" in text


async def test_mistyped_phase_is_suggested(bot, pixel):
    text = await bot.reply_to(f"!suivi {pixel} acceuil 1h")
    assert "Je n'ai pas compris « acceuil » : vouliez-vous dire « accueil » ?" in text and pixel in text
    text = await bot.reply_to("!suivi Pixel acceuil 1h")
    assert "« acceuil »" in text and "« accueil »" in text


async def test_member_name_does_not_repeat_the_partner(bot):
    code = await bot.new_project('!projet nouveau "Tiers-lieu" dep=58', sender="@nadia:test", room=ALDESS)
    await bot.say(f"!suivi {code} accueil 1h", sender="@nadia:test", room=ALDESS)
    await bot.say(f"!suivi {code} accueil 2h hier", sender="@ali:test", room=ALDESS)
    text = await bot.reply_to(f"!suivi projet {code}", sender="@ali:test", room=ALDESS)
    assert "Nadia (Aldess)" in text and "(Aldess) (Aldess)" not in text and "Ali (Aldess)" in text


# -- history length, totals, duplicates ------------------------------------------------------------

async def test_history_shows_the_latest_15_and_counts_all(bot, pixel):
    for days in range(39, -1, -1):  # n°1 is the oldest, n°40 today's
        assert "✅" in await bot.reply_to(f"!suivi {pixel} accueil 1h il y a {days} jours")
    await bot.say("!suivi annuler 40")
    text = await bot.reply_to(f"!suivi projet {pixel}")
    lines = [t for t in text.splitlines() if t.startswith("- n°") or t.startswith("n°")]
    shown = [int(t.split("n°")[1].split(" ")[0]) for t in lines]
    assert shown == list(range(39, 24, -1))  # the latest 15, most recent first (n°40 was cancelled)
    assert "… et 24 suivis plus anciens." in text
    assert "Total : 39 suivis, 39 h, par BGE Franche-Comté" in text
    text = await bot.reply_to(f"!projet voir {pixel}")
    assert "Suivis : 39 (39 h), le dernier le jeudi 26 novembre 2026" in text


async def test_same_record_twice_is_kept_with_a_warning(bot, pixel):
    await bot.say(f"!suivi {pixel} accueil 1h hier")
    text = await bot.reply_to(f"!suivi {pixel} accueil 1h hier visio")
    assert text.startswith("✅ Suivi n°2 enregistré")
    assert "déjà enregistré ce suivi (n°1" in text and "annulez celui-ci : !suivi annuler 2" in text
    assert len(await records(bot)) == 2
    # another advisor, another day or another duration: no warning
    for line, sender in ((f"!suivi {pixel} accueil 1h hier", "@paul:test"), (f"!suivi {pixel} accueil 1h", None),
                         (f"!suivi {pixel} accueil 2h hier", None)):
        text = await bot.reply_to(line, sender=sender or "@karim:test")
        assert "⚠️" not in text
    # a cancelled record is not a duplicate
    await bot.say("!suivi annuler 1")
    await bot.say("!suivi annuler 2")
    assert "⚠️" not in await bot.reply_to(f"!suivi {pixel} accueil 1h hier")

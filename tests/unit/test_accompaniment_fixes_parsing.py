"""Review fixes in the pure parsers of the accompaniment domain: record numbers, health data, a
duration next to a day of the month, year guessing, weekday checks, the retention limit, labels
written over several words and ages."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from commands._accompaniment import de_partner, member_with_partner
from ess_bot.config import parse_config
from ess_bot.framework.messages import render_markdown
from ess_bot.parsing import (DateError, DateParser, ParseError, PersonalDataError, check_note, check_personal_data,
                             find_personal_data, match_age, match_duration, match_phrase, parse_number, parse_record_line,
                             retention_start, tokenize_quoted)
from ess_bot.vocabulary import AGE_BANDS, EMPLOYMENT_STATUSES, GENDERS, MINIMA, MODALITIES, PHASES

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)       # a Friday
QA_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)    # the day of the QA report (a Tuesday)


def plain(markdown: str) -> str:
    """A Markdown message as people read it (the plain body)."""
    return render_markdown(markdown)[0]


@pytest.fixture(scope="module")
def dates() -> DateParser:
    return DateParser(PARIS)


def line(text: str, now: datetime = NOW):
    return parse_record_line(tokenize_quoted(text), now, DateParser(PARIS), example="!suivi P-7K3Q accueil 1h")


# -- parse_number ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("42", 42), ("n°42", 42), ("N° 42", 42), ("no 42", 42), ("#42", 42),
                                         (" 7 ", 7), ("nº7", 7), ("1000000000", 10**9)])
def test_parse_number_reads_record_numbers(text, value):
    assert parse_number(text, "du suivi", "!suivi annuler 42") == value


@pytest.mark.parametrize("text, words", [
    ("99999999999999999999", ["Numéro « 99999999999999999999 » trop grand", "`!suivi annuler 42`"]),
    ("0", ["« 0 » trop petit", "`!suivi annuler 42`"]),
    ("-3", ["« -3 » trop petit"]),
    ("abc", ["Numéro du suivi attendu, par exemple `!suivi annuler 42`", "« abc »"]),
    ("Pixel", ["« Pixel »"]),
    ("", ["Numéro du suivi attendu", "je n'ai rien reçu"]),
])
def test_parse_number_names_the_bad_value(text, words):
    with pytest.raises(ParseError) as exc:
        parse_number(text, "du suivi", "!suivi annuler 42")
    body, _ = render_markdown(exc.value.message)  # the message is Markdown: read it as people do
    for word in words:
        assert word.replace("`", "") in body


def test_parse_number_bounds():
    assert parse_number("100", "de la page", "x", low=1, high=100) == 100
    with pytest.raises(ParseError) as exc:
        parse_number("101", "de la page", "`x 3`", low=1, high=100)
    assert "« 101 »" in exc.value.message and "100" in exc.value.message


# -- health data (RGPD) ------------------------------------------------------------------------

@pytest.mark.parametrize("text, word", [
    ("dossier MDPH en cours", "MDPH"), ("a obtenu la RQTH", "RQTH"), ("touche l'AAH", "AAH"),
    ("en situation de handicap", "handicap"), ("personne handicapée", "handicapée"), ("arrêt maladie", "maladie"),
    ("problème de Santé", "Santé"), ("suivi médical", "médical"), ("sort d'une dépression", "dépression"),
    ("cancer du sein", "cancer"), ("GROSSESSE", "GROSSESSE"), ("en ALD", "ALD"), ("en arrêt-maladie", "maladie"),
    ("Dépression.", "Dépression"), ("sante mentale", "sante"),
])
def test_health_data_is_refused(text, word):
    with pytest.raises(PersonalDataError) as exc:
        check_personal_data(text, "la note")
    message = exc.value.message
    assert exc.value.kind == "health" and f"« {word} »" in message
    assert "pas de données de santé dans le chat" in message and "RGPD" in message and "par exemple" in message
    with pytest.raises(PersonalDataError):
        check_note(text)


@pytest.mark.parametrize("text", ["santon provençal", "maladroit au téléphone", "Aldo a rappelé", "bald",
                                  "cancérologie", "gaah", "rendez-vous à la banque", "étude de marché"])
def test_health_words_are_whole_words(text):
    check_personal_data(text, "la note")


@pytest.mark.parametrize("text", [
    "Maison de santé des Tilleuls", "SCIC Maison de Santé pluriprofessionnelle", "centre de santé associatif",
    "Pôle de santé du Haut-Doubs", "Mutuelle santé solidaire", "mutuelle de santé", "Sport-santé Vesoul",
    "cabinet médical partagé", "location de matériel médical", "atelier d'art-thérapie"])
def test_health_sector_names_are_not_health_data(text):
    """A project named after a place or a trade of the health sector (maisons de santé are often SCIC)
    says nothing about anyone's health."""
    assert find_personal_data(text) == []
    check_personal_data(text, "le nom du projet")


@pytest.mark.parametrize("text, word", [
    ("Maison de santé : porteuse en ALD", "ALD"), ("santé fragile, voir maison de santé", "santé"),
    ("Maison de santé ; sa santé l'inquiète", "santé"),
    ("suivi médical au centre médical", "médical"), ("maladie", "maladie")])
def test_health_data_next_to_a_sector_name_is_still_refused(text, word):
    found = find_personal_data(text)
    assert found and found[0].kind == "health" and found[0].value == word


def test_check_personal_data_names_the_field():
    with pytest.raises(PersonalDataError) as exc:
        check_personal_data("Aide aux malades", "le nom du projet")
    assert plain(exc.value.message).startswith("🔒 Le nom du projet contient une donnée de santé (« malades »)")
    with pytest.raises(PersonalDataError) as exc:
        check_personal_data("écrire à a@b.fr", field="le motif")
    assert plain(exc.value.message).startswith("🔒 Le motif contient une adresse e-mail (« a@b.fr »)")


# -- bug 1: the duration must not swallow the day of the month ---------------------------------

@pytest.mark.parametrize("text, minutes, day", [
    ("P-QH4G accueil 2h 15 novembre 2025", 120, date(2025, 11, 15)),
    ("P-QH4G accueil 1h 12 novembre", 60, date(2026, 11, 12)),
    ("P-QH4G accueil 1 h 12 novembre", 60, date(2026, 11, 12)),
    ("P-QH4G accueil 2h 15 nov.", 120, date(2026, 11, 15)),
    ("P-QH4G accueil 2h 15 nov", 120, date(2026, 11, 15)),
    ("P-QH4G accueil 2h 15 Novembre", 120, date(2026, 11, 15)),
    ("P-QH4G accueil 2 h 15 décembre 2025", 120, date(2025, 12, 15)),
    ("P-QH4G accueil 1h 3 mars", 60, date(2026, 3, 3)),
    ("P-QH4G accueil 1h 1er novembre", 60, date(2026, 11, 1)),
    ("P-QH4G accueil 1h30 12 novembre", 90, date(2026, 11, 12)),
    ("P-QH4G accueil 15 novembre 2025 2h 15", 135, date(2025, 11, 15)),
    ("P-QH4G 12 novembre accueil 2h 15", 135, date(2026, 11, 12)),
    ("P-QH4G accueil 2h 15 hier", 135, date(2026, 11, 26)),
    ("P-QH4G accueil 2 h 15 le 12/11", 135, date(2026, 11, 12)),
    ("P-QH4G accueil 2h 15", 135, None),
    ("P-QH4G accueil 1 h 30", 90, None),
    ("P-QH4G accueil 2h 5 sept", 120, date(2026, 9, 5)),
])
def test_duration_and_day_of_month(text, minutes, day):
    read = line(text)
    assert (read.duration, read.date, read.project_words) == (minutes, day, [])


def test_match_duration_leaves_a_day_to_the_date():
    assert match_duration(["2h", "15", "novembre"], 0) == (120, 1)
    assert match_duration(["1", "h", "12", "nov."], 0) == (60, 2)
    assert match_duration(["2h", "15"], 0) == (135, 2)
    assert match_duration(["2h", "15", "visio"], 0) == (135, 2)


# -- bug 2: year guessing ----------------------------------------------------------------------

def test_day_and_month_without_year_follow_one_rule(dates):
    # on 24 November, 12/12 and 31/12 are both this year's: both refused as future, with the way out
    for text, hint in (("12/12", "12/12/2025"), ("31/12", "31/12/2025"), ("31 décembre", "31/12/2025")):
        with pytest.raises(DateError) as exc:
            dates.parse(text, QA_NOW)
        assert f"« {text} »" in exc.value.message and "futur" in exc.value.message and hint in exc.value.message
    # in January, December is last year's: said in the reply
    january = datetime(2027, 1, 10, 9, 0, tzinfo=PARIS)
    for text in ("15/12", "31/12", "15 décembre", "lundi 14 décembre"):
        reading = dates.read(text, january)
        assert reading.value.year == 2026 and reading.assumed_year == 2026, text
    assert dates.read("05/01", january).assumed_year is None
    assert dates.read("15/12/2026", january).assumed_year is None  # typed: nothing deduced


def test_future_allowed_takes_the_nearest_date(dates):
    assert dates.parse("31/12", QA_NOW, allow_future=True) == date(2026, 12, 31)
    assert dates.read("15/12", datetime(2026, 3, 1, 9, 0, tzinfo=PARIS), allow_future=True).assumed_year == 2025


def test_29_february_without_year_in_a_common_year_is_refused(dates):
    with pytest.raises(DateError) as exc:
        dates.parse("29/02", QA_NOW)
    message = exc.value.message
    assert "« 29/02 »" in message and "2026" in message and "bissextile" in message and "29/02/2024" in message
    assert dates.parse("29/02/2024", QA_NOW) == date(2024, 2, 29)
    leap = datetime(2028, 3, 5, 9, 0, tzinfo=PARIS)
    assert dates.read("29/02", leap) == dates.read("29 février", leap)
    assert dates.parse("29/02", leap) == date(2028, 2, 29)


@pytest.mark.parametrize("text, typed, actual", [
    ("jeudi 25/11", "jeudi", "mercredi"), ("jeudi 25.11", "jeudi", "mercredi"),
    ("mardi 12/11/2026", "mardi", "jeudi"), ("lundi 2026-11-25", "lundi", "mercredi"),
    ("vendredi 25 novembre", "vendredi", "mercredi"),
])
def test_weekday_contradicting_the_date_is_refused(dates, text, typed, actual):
    with pytest.raises(DateError) as exc:
        dates.parse(text, NOW)
    message = plain(exc.value.message)
    assert f"« {text} »" in message and f"un {actual}, pas un {typed}" in message and "par exemple" in message


def test_weekday_agreeing_with_the_date(dates):
    assert dates.parse("mercredi 25/11", NOW) == date(2026, 11, 25)
    assert dates.parse("Mercredi 25/11/2026", NOW) == date(2026, 11, 25)
    assert line("P-QH4G accueil 1h mercredi 25/11", NOW).date == date(2026, 11, 25)
    with pytest.raises(DateError) as exc:  # in a line too: not read as "jeudi" plus another date
        line("P-QH4G accueil 1h jeudi 25/11", NOW)
    assert "pas un jeudi" in exc.value.message


# -- bug 2: dates older than the retention period ----------------------------------------------

@pytest.mark.parametrize("text", ["novembre 2020", "12/11/2020", "15 novembre 2022", "23/11/2023",
                                  "il y a 200 semaines"])
def test_records_older_than_three_years_are_refused(text):
    with pytest.raises(DateError) as exc:
        line(f"P-QH4G accueil 1h {text}", QA_NOW)
    message = exc.value.message
    assert f"« {text} »" in message and "plus de 3 ans" in message
    assert "convention en cours" in message and "RGPD" in message
    assert "voyez-le avec la coordination" in message  # how to proceed


def test_retention_limit_is_three_years_to_the_day():
    assert retention_start(date(2026, 11, 24)) == date(2023, 11, 24)
    assert retention_start(date(2028, 2, 29)) == date(2025, 2, 28)
    assert line("P-QH4G accueil 1h 24/11/2023", QA_NOW).date == date(2023, 11, 24)


def test_a_month_without_a_day_asks_for_the_day(dates):
    with pytest.raises(DateError) as exc:
        line("P-QH4G accueil 1h novembre 2025", QA_NOW)
    assert "« novembre 2025 »" in exc.value.message and "12 novembre 2025" in exc.value.message


def test_record_line_tells_the_deduced_year():
    january = datetime(2027, 1, 10, 9, 0, tzinfo=PARIS)
    read = line("P-QH4G accueil 1h 15/12", january)
    assert (read.date, read.assumed_year) == (date(2026, 12, 15), 2026)
    read = line("P-QH4G accueil 1h date=15/12", january)
    assert read.assumed_year == 2026
    assert line("P-QH4G accueil 1h 05/01", january).assumed_year is None


# -- bug 7: labels written over several words, ages, "présentiel" ------------------------------

PROFILE_LISTS = {"genre": GENDERS, "age": AGE_BANDS, "statut": EMPLOYMENT_STATUSES, "minima": MINIMA}


@pytest.mark.parametrize("words, key, n", [
    (["demandeur", "d’emploi", "indemnisé"], "de_indemnise", 3),
    (["Demandeur", "d'emploi", "non", "indemnisé", "rsa"], "de_non_indemnise", 4),
    (["demandeur", "d'emploi", "de", "longue", "durée"], "de_longue_duree", 5),
    (["sans", "activité"], "sans_activite", 2),
    (["moins", "de", "26", "ans"], "lt26", 4),
    (["50", "ans", "et", "plus"], "50plus", 4),
    (["non", "communiqué"], None, 2),  # "nc" exists in every list: which field? (say it with an option)
])
def test_match_phrase(words, key, n):
    found = match_phrase(words, 0, PROFILE_LISTS)
    if key is None:
        assert found is None
        assert match_phrase(words, 0, {"genre": GENDERS})[1].key == "nc"
    else:
        assert found is not None and (found[1].key, found[2]) == (key, n)


def test_match_phrase_leaves_single_words_and_unknown_phrases():
    assert match_phrase(["femme"], 0, PROFILE_LISTS) is None
    assert match_phrase(["demandeur", "d'emploi"], 0, PROFILE_LISTS) is None  # which one? left to the prefix rule


@pytest.mark.parametrize("words, band, n", [
    (["30"], "26_49", 1), (["25"], "lt26", 1), (["26"], "26_49", 1), (["49", "ans"], "26_49", 2),
    (["50"], "50plus", 1), (["62ans"], "50plus", 1), (["18", "femme"], "lt26", 1),
])
def test_ages_give_their_band(words, band, n):
    assert match_age(words, 0) == (band, n)


def test_improbable_age_is_named():
    assert match_age(["femme"], 0) is None
    for age in ("7", "130"):
        with pytest.raises(ParseError) as exc:
            match_age([age], 0)
        assert f"« {age} »" in exc.value.message and "par exemple" in exc.value.message


@pytest.mark.parametrize("text, phase, modality", [
    ("P-QH4G post création 1h présentiel", "post_creation", "individuel"),
    ("P-QH4G ante création 1h en présentiel", "ante_creation", "individuel"),
    ("P-QH4G accueil 1h Présentiel", "accueil", "individuel"),
])
def test_record_line_multiword_phases_and_presentiel(text, phase, modality):
    read = line(text)
    assert (read.phase, read.modality, read.project_words) == (phase, modality, [])
    assert MODALITIES.get(modality) and PHASES.get(phase)


# -- wording helpers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("URSCOP", "d'URSCOP"), ("Aldess", "d'Aldess"),
                                            ("Émergences", "d'Émergences"), ("BGE Franche-Comté", "de BGE Franche-Comté"),
                                            ("Café culturel Pixel", "de Café culturel Pixel"),
                                            ("Atelier vélo", "d'Atelier vélo")])
def test_de_partner_elides_before_a_vowel(name, expected):
    assert de_partner(name) == expected


def test_member_name_does_not_repeat_the_partner():
    config = parse_config({
        "partners": [{"slug": "bge-fc", "name": "BGE Franche-Comté", "departments": ["25"]},
                     {"slug": "urscop", "name": "URSCOP", "departments": ["25"]}],
        "members": [{"user_id": "@karim:test", "partner": "bge-fc", "name": "Karim (BGE)"},
                    {"user_id": "@paul:test", "partner": "bge-fc", "name": "Paul"},
                    {"user_id": "@marc:test", "partner": "urscop", "name": "Marc — URSCOP"}],
    }, source="test")
    ctx = SimpleNamespace(config=config)
    assert plain(member_with_partner(ctx, "@karim:test", "bge-fc")) == "Karim (BGE)"
    assert plain(member_with_partner(ctx, "@paul:test", "bge-fc")) == "Paul (BGE Franche-Comté)"
    assert plain(member_with_partner(ctx, "@marc:test", "urscop")) == "Marc — URSCOP"

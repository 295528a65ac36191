"""The pure parsers: durations, French dates, closed lists, options, codes, RGPD checks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from random import Random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from ess_bot.framework.messages import render_markdown

from ess_bot.parsing import (ChoiceError, DateError, DateParser, DurationError, OptionError, ParseError,
                             PersonalDataError, Token, check_note, check_personal_data, 
                             find_personal_data, match_among, match_choice, match_duration, match_list,
                             new_project_code, parse_duration, parse_fte, parse_project_code, parse_record_line,
                             parse_yes_no, resolve_options, split_options, tokenize_quoted)
from ess_bot.vocabulary import (AGE_BANDS, EMPLOYMENT_STATUSES, GENDERS, LEGAL_FORMS, MINIMA, MODALITIES, PHASES,
                                THEMES)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # a Friday


@pytest.fixture(scope="module")
def dates() -> DateParser:
    return DateParser()


# -- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [
    ("1h30", 90), ("1 h 30", 90), ("90min", 90), ("90 min", 90), ("1,5h", 90), ("1.5 h", 90), ("2 h", 120),
    ("45mn", 45), ("2h00", 120), ("2H", 120), ("1h05", 65), ("2 heures", 120), ("30 minutes", 30),
    ("1h30min", 90), ("0,25h", 15), ("12h", 720), ("1\u202fh\u00a030", 90),
])
def test_durations(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "90", "1h75", "0h", "0 min", "13h", "1h3O", "abc", "1,5", "h30", "-1h"])
def test_bad_durations_are_refused_in_french(text):
    with pytest.raises(DurationError) as exc:
        parse_duration(text)
    message = exc.value.message
    if text:
        assert f"« {text} »" in render_markdown(message)[0]  # the bad value is named (Markdown: escaped)…
    else:
        assert "rien reçu" in message
    assert "`1h30`" in message or "12 h" in message  # …and a way to write it is shown


def test_duration_spans_over_several_words():
    assert match_duration(["1", "h", "30", "hier"], 0) == (90, 3)
    assert match_duration(["90", "min"], 0) == (90, 2)
    assert match_duration(["Pixel", "2h"], 0) is None
    assert match_duration(["Pixel", "2h"], 1) == (120, 1)


# -- dates -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("hier", date(2026, 11, 26)),
    ("avant-hier", date(2026, 11, 25)),
    ("avant hier", date(2026, 11, 25)),
    ("aujourd'hui", date(2026, 11, 27)),
    ("aujourd’hui", date(2026, 11, 27)),
    ("mardi dernier", date(2026, 11, 24)),
    ("mardi", date(2026, 11, 24)),
    ("Mardi", date(2026, 11, 24)),
    ("vendredi", date(2026, 11, 27)),            # today's weekday: today
    ("vendredi dernier", date(2026, 11, 20)),    # "dernier": strictly before today
    ("samedi", date(2026, 11, 21)),
    ("le 12/11", date(2026, 11, 12)),
    ("12/11", date(2026, 11, 12)),
    ("12.11", date(2026, 11, 12)),
    ("12/11/2026", date(2026, 11, 12)),
    ("12/11/26", date(2026, 11, 12)),
    ("2026-11-12", date(2026, 11, 12)),
    ("12 novembre", date(2026, 11, 12)),
    ("le 1er novembre", date(2026, 11, 1)),
    ("1er nov.", date(2026, 11, 1)),
    ("jeudi 12 novembre", date(2026, 11, 12)),
    ("12 janvier", date(2026, 1, 12)),
    ("12 mars", date(2026, 3, 12)),
    ("il y a 3 jours", date(2026, 11, 24)),
    ("il y a une semaine", date(2026, 11, 20)),
    ("il y a 2 semaines", date(2026, 11, 13)),
])
def test_french_dates(dates, text, expected):
    assert dates.parse(text, NOW) == expected


def test_dateparser_fallback(dates):
    # forms the regular expressions do not cover go to dateparser
    assert dates.parse("la semaine dernière", NOW) == date(2026, 11, 20)
    assert dates.parse("le 2 janv.", NOW) == date(2026, 1, 2)


@pytest.mark.parametrize("text", ["demain", "28/11", "12 décembre", "12/11/2027", "samedi 28 novembre 2026"])
def test_future_dates_are_refused(dates, text):
    with pytest.raises(DateError) as exc:
        dates.parse(text, NOW)
    assert "futur" in exc.value.message and text in exc.value.message


def test_a_day_and_month_far_ahead_is_last_years():
    spring = datetime(2026, 3, 1, 9, 0, tzinfo=PARIS)
    assert DateParser().parse("15/12", spring) == date(2025, 12, 15)
    assert DateParser().read("15 décembre", spring).assumed_year == 2025  # said in the reply
    assert DateParser().read("15/02", spring).assumed_year is None        # this year's: nothing to say
    with pytest.raises(DateError) as exc:  # nearer ahead than a year back: a slip, refused, with the way out
        DateParser().parse("15/03", spring)
    assert "« 15/03 »" in exc.value.message and "15/03/2025" in exc.value.message


@pytest.mark.parametrize("text", ["31/02", "12/13", "32/01/2026", "xyz", "", "1 jan 1990", "mardi 12 novembre"])
def test_bad_dates_are_refused(dates, text):
    with pytest.raises(DateError) as exc:
        dates.parse(text, NOW)
    assert exc.value.message


def test_weekday_mismatch_is_explained(dates):
    with pytest.raises(DateError) as exc:
        dates.parse("mardi 12 novembre", NOW)
    assert "jeudi" in exc.value.message


def test_year_boundary(dates):
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=PARIS)
    assert dates.parse("hier", new_year) == date(2026, 12, 31)
    assert dates.parse("le 30/12", new_year) == date(2026, 12, 30)
    assert dates.parse("aujourd'hui", new_year) == date(2027, 1, 1)
    assert dates.parse("mardi", new_year) == date(2026, 12, 29)
    assert dates.parse("il y a 3 jours", new_year) == date(2026, 12, 29)
    assert dates.parse("31 décembre", new_year) == date(2026, 12, 31)


def test_month_boundary(dates):
    first = datetime(2026, 3, 1, 9, 0, tzinfo=PARIS)
    assert dates.parse("hier", first) == date(2026, 2, 28)
    assert dates.parse("avant-hier", first) == date(2026, 2, 27)
    with pytest.raises(DateError) as exc:  # 2026 is not a leap year: no silent jump back to 2024
        dates.parse("29/02", first)
    assert "« 29/02 »" in exc.value.message and "bissextile" in exc.value.message and "29/02/2024" in exc.value.message


@pytest.mark.parametrize("now, text, expected", [
    # 29 March 2026: clocks go forward at 02:00 (CET → CEST)
    (datetime(2026, 3, 29, 3, 30, tzinfo=PARIS), "hier", date(2026, 3, 28)),
    (datetime(2026, 3, 29, 3, 30, tzinfo=PARIS), "aujourd'hui", date(2026, 3, 29)),
    (datetime(2026, 3, 29, 0, 15, tzinfo=PARIS), "dimanche", date(2026, 3, 29)),
    (datetime(2026, 3, 30, 0, 10, tzinfo=PARIS), "hier", date(2026, 3, 29)),      # 22:10 UTC the day before
    (datetime(2026, 3, 30, 0, 10, tzinfo=PARIS), "aujourd'hui", date(2026, 3, 30)),
    (datetime(2026, 3, 30, 0, 10, tzinfo=PARIS), "dimanche dernier", date(2026, 3, 29)),
    (datetime(2026, 3, 30, 0, 10, tzinfo=PARIS), "il y a 1 jour", date(2026, 3, 29)),
    # 25 October 2026: clocks go back at 03:00 (CEST → CET), 02:30 happens twice
    (datetime(2026, 10, 25, 2, 30, tzinfo=PARIS), "hier", date(2026, 10, 24)),
    (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS), "aujourd'hui", date(2026, 10, 25)),
    (datetime(2026, 10, 26, 0, 5, tzinfo=PARIS), "hier", date(2026, 10, 25)),
    (datetime(2026, 10, 26, 0, 5, tzinfo=PARIS), "avant-hier", date(2026, 10, 24)),
    (datetime(2026, 10, 26, 23, 55, tzinfo=PARIS), "aujourd'hui", date(2026, 10, 26)),
])
def test_dst_change_days(dates, now, text, expected):
    assert dates.parse(text, now) == expected
    # the same instant expressed in UTC must not shift the day when the parser knows the bot's zone
    assert DateParser(PARIS).parse(text, now.astimezone(ZoneInfo("UTC"))) == expected


def test_date_spans_in_a_line(dates):
    words = ["Pixel", "mardi", "dernier", "1h"]
    assert dates.match_span(words, 1, NOW) == (date(2026, 11, 24), 2)
    assert dates.match_span(["il", "y", "a", "3", "jours"], 0, NOW) == (date(2026, 11, 24), 5)
    assert dates.match_span(["le", "12/11", "visio"], 0, NOW) == (date(2026, 11, 12), 2)
    assert dates.match_span(["12", "novembre"], 0, NOW) == (date(2026, 11, 12), 2)
    # words that merely belong to the date vocabulary are not dates on their own
    for word in ("mars", "le", "il", "a", "dernier", "Pixel", "25"):
        assert dates.match_span([word], 0, NOW) is None, word
    # a day.month is a date, even a short one: "1.5" is the 1st of May (a duration needs its "h")
    assert dates.match_span(["1.5"], 0, NOW) == (date(2026, 5, 1), 1)


# -- closed lists ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, clist, key", [
    ("emerg", PHASES, "emergence"), ("Émergence", PHASES, "emergence"), ("ante", PHASES, "ante_creation"),
    ("ante-création", PHASES, "ante_creation"), ("montage", PHASES, "ante_creation"), ("post", PHASES, "post_creation"),
    ("indiv", MODALITIES, "individuel"), ("tel", MODALITIES, "telephone"), ("TÉLÉPHONE", MODALITIES, "telephone"),
    ("scic", LEGAL_FORMS, "scic"), ("sarl", LEGAL_FORMS, "sas_sarl_ess"), ("asso", LEGAL_FORMS, "association"),
    ("26-49", AGE_BANDS, "26_49"), ("<26", AGE_BANDS, "lt26"), ("50+", AGE_BANDS, "50plus"),
    ("de-longue-duree", EMPLOYMENT_STATUSES, "de_longue_duree"), ("rsa", MINIMA, "rsa"), ("ass", MINIMA, "ass"),
])
def test_match_choice(text, clist, key):
    assert match_choice(text, clist).key == key


def test_ambiguous_prefix_names_both_values():
    with pytest.raises(ChoiceError) as exc:
        match_choice("a", PHASES)
    assert exc.value.ambiguous
    assert "accueil" in exc.value.message and "ante-création" in exc.value.message
    with pytest.raises(ChoiceError) as exc:
        match_choice("sc", LEGAL_FORMS)
    assert "SCOP" in exc.value.message and "SCIC" in exc.value.message


def test_unknown_value_lists_the_possible_ones():
    with pytest.raises(ChoiceError) as exc:
        match_choice("emergense", PHASES)
    assert not exc.value.ambiguous
    assert "« emergense »" in exc.value.message and "émergence" in exc.value.message


def test_match_among_lists():
    lists = {"phase": PHASES, "modalite": MODALITIES}
    assert match_among("indiv", lists) == ("modalite", MODALITIES.get("individuel"))
    assert match_among("fin", lists) == ("phase", PHASES.get("financement"))
    assert match_among("Pixel", lists) is None
    assert match_among("la", lists) is None          # shorter than 3 letters: not a prefix
    with pytest.raises(ChoiceError) as exc:
        match_among("nc", {"genre": GENDERS, "age": AGE_BANDS}, min_prefix=1)
    assert "genre=nc" in exc.value.message


def test_match_list():
    assert [c.key for c in match_list("juridique,financement", THEMES)] == ["juridique", "financement"]
    assert [c.key for c in match_list("rh; rh", THEMES)] == ["rh"]
    with pytest.raises(ChoiceError):
        match_list("juridique,astrologie", THEMES)


# -- options and tokens ------------------------------------------------------------------------

def test_options():
    toks = tokenize_quoted('dep=25 forme=scic durée=2h date=hier modalite=visio themes=juridique,financement x')
    options, rest = split_options(toks)
    assert [(o.key, o.value) for o in options] == [("dep", "25"), ("forme", "scic"), ("durée", "2h"),
                                                    ("date", "hier"), ("modalite", "visio"),
                                                    ("themes", "juridique,financement")]
    assert rest == [Token("x")]


def test_options_join_a_list_after_a_comma_and_keep_quoted_text():
    options, rest = split_options(tokenize_quoted('themes=juridique, financement "a=b" note="x y"'))
    assert [(o.key, o.value) for o in options] == [("themes", "juridique,financement"), ("note", "x y")]
    assert rest == [Token("a=b", quoted=True)]


def test_resolve_options_errors():
    from ess_bot.parsing import RECORD_OPTIONS
    assert resolve_options(split_options(tokenize_quoted("durée=2h"))[0], RECORD_OPTIONS, "ex") == {"duree": "2h"}
    for text, word in (("couleur=bleu", "couleur"), ("duree=", "n'a pas de valeur"),
                       ("duree=1h duree=2h", "deux fois")):
        with pytest.raises(OptionError) as exc:
            resolve_options(split_options(tokenize_quoted(text))[0], RECORD_OPTIONS, "!suivi P-7K3Q accueil 1h")
        assert word in exc.value.message


def test_record_line_fields_in_any_order(dates):
    line = parse_record_line(tokenize_quoted('hier 1h30 P-7K3Q emerg "premier rendez-vous" visio'), NOW, dates,
                             example="ex")
    assert (line.project_code, line.phase, line.modality, line.duration, line.date, line.quoted) == (
        "P-7K3Q", "emergence", "visio", 90, date(2026, 11, 26), ["premier rendez-vous"])
    line = parse_record_line(tokenize_quoted("Café culturel Pixel ante 1 h 30 mardi dernier themes=rh"), NOW, dates,
                             example="ex")
    assert line.project_words == ["Café", "culturel", "Pixel"]
    assert (line.phase, line.duration, line.date, line.themes) == ("ante_creation", 90, date(2026, 11, 24), ("rh",))


def test_record_line_twice_the_same_field(dates):
    with pytest.raises(ParseError) as exc:
        parse_record_line(tokenize_quoted("P-7K3Q accueil 1h 2h"), NOW, dates, example="ex")
    assert "durée" in exc.value.message and "« 2h »" in exc.value.message


# -- numbers, codes, RGPD ----------------------------------------------------------------------

def test_fte():
    assert parse_fte("2") == Decimal("2")
    assert parse_fte("1,5") == Decimal("1.5")
    assert parse_fte("0.75 ETP") == Decimal("0.75")
    for bad in ("deux", "-1", "1,555", "1000"):
        with pytest.raises(ParseError):
            parse_fte(bad)


def test_yes_no():
    assert parse_yes_no("Oui", "x") is True and parse_yes_no("non", "x") is False
    with pytest.raises(ParseError):
        parse_yes_no("peut-être", "collectif")


def test_project_codes():
    rng = Random(1)
    codes = {new_project_code(rng) for _ in range(200)}
    assert all(parse_project_code(c) == c for c in codes)
    assert all(not set(c[2:]) & set("01ILO") for c in codes)
    assert parse_project_code("p-7k3q") == "P-7K3Q" and parse_project_code("P7K3Q") == "P-7K3Q"
    assert parse_project_code("P-7K3O") is None and parse_project_code("Pixel") is None


@pytest.mark.parametrize("text, kind", [
    ("appeler le 06 12 34 56 78", "phone"), ("0612345678", "phone"), ("+33 6 12 34 56 78", "phone"),
    ("06.12.34.56.78", "phone"), ("06-12-34-56-78", "phone"), ("+33612345678", "phone"), ("03 81 00 00 00", "phone"),
    ("écrire à jean.dupont@example.org", "email"), ("MAIL: a+b@sub.example.fr", "email"),
])
def test_personal_data_is_detected(text, kind):
    found = find_personal_data(text)
    assert found and found[0].kind == kind
    with pytest.raises(PersonalDataError) as exc:
        check_personal_data(text)
    assert "RGPD" in exc.value.message and found[0].value in render_markdown(exc.value.message)[0]


@pytest.mark.parametrize("text", ["1h30 le 12/11/2026", "SIRET 12345678901234", "dossier n° 2026-118",
                                  "budget 12 000 €", "rdv à 14h30", "code postal 25000"])
def test_ordinary_notes_pass(text):
    assert find_personal_data(text) == []


def test_note_length():
    assert check_note("  premier   rendez-vous ") == "premier rendez-vous"
    with pytest.raises(ParseError) as exc:
        check_note("x" * 281)
    assert "281" in exc.value.message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parsers_only_raise_parse_errors(text):
    parser = DateParser()
    for fn in (parse_duration, lambda t: parser.parse(t, NOW), lambda t: match_choice(t, PHASES), parse_fte,
               check_note, lambda t: parse_record_line(tokenize_quoted(t.replace('"', "")), NOW, parser, example="x")):
        try:
            fn(text)
        except ParseError as exc:
            assert exc.message


def test_normalize_keeps_two_quoted_parts_apart():
    """Regression: normalize() used to glue '"label" x y "note"' into one token (ess_bot/text.py)."""
    from ess_bot.text import normalize, tokenize
    text = normalize('!suivi "Café culturel" ante 2h "premier rendez-vous"')
    assert tokenize(text) == ["!suivi", "Café culturel", "ante", "2h", "premier rendez-vous"]
    assert normalize("« Café Pixel » et «\u00a0note\u00a0»") == '"Café Pixel" et "note"'


# -- values named in Markdown messages, the calendar horizon, huge numbers ---------------------------

def test_md_quote_shows_a_value_exactly_as_typed():
    from ess_bot.parsing import md_quote
    for value in ["<script>alert(1)</script>", "[clic](javascript:alert(1))", "**gras** _it_", "`x` \\*", "# t"]:
        body, html = render_markdown(f"Valeur : {md_quote(value)}.")
        assert body == f"Valeur : « {value} »." and "<a" not in html and "<strong>" not in html
        assert "<script>" not in html and "<code>" not in html
    assert md_quote("a\x00b\nc") == "« a b c »"


def test_the_calendar_horizon():
    from ess_bot.parsing import EARLIEST_YEAR, HORIZON_YEARS, check_horizon, horizon
    today = date(2026, 11, 24)
    assert horizon(today) == (date(EARLIEST_YEAR, 1, 1), date(2026 + HORIZON_YEARS, 11, 24))
    assert horizon(date(2028, 2, 29))[1] == date(2033, 2, 28)
    assert check_horizon(date(2031, 11, 24), "24/11/2031", today) == date(2031, 11, 24)
    with pytest.raises(DateError) as exc:
        check_horizon(date(9999, 12, 31), "31/12/9999", today)
    plain = render_markdown(exc.value.message)[0]
    assert "Date trop lointaine : « 31/12/9999 » (vendredi 31 décembre 9999)" in plain
    assert "plus de 5 ans, soit après le 24 novembre 2031" in plain and "Exemple : 15/01/2027" in plain
    with pytest.raises(DateError, match="avant 1970"):
        check_horizon(date(1969, 12, 31), "31/12/1969", today)


@pytest.mark.parametrize("text, expected", [
    ("9" * 5000, "trop grand"), ("-" + "9" * 5000, "trop petit"), ("0" * 4000 + "7", None),
    ("2147483648", "trop grand"), ("n°" + "1" * 30, "trop grand"),
])
def test_numbers_too_long_for_int_are_refused_by_name(text, expected):
    from ess_bot.parsing import parse_number
    if expected is None:
        assert parse_number(text, "du suivi", "!suivi annuler 42") == 7
        return
    with pytest.raises(ParseError) as exc:
        parse_number(text, "du suivi", "!suivi annuler 42")
    assert expected in exc.value.message


def test_a_phrase_never_runs_over_a_stand_in_for_a_quoted_token():
    """Callers put a stand-in where a quoted token was; a NUL one (normalised to nothing) must not let
    ``accueil`` + the quoted note read as one phrase."""
    from ess_bot.parsing import match_phrase
    lists = {"phase": PHASES, "modalite": MODALITIES}
    assert match_phrase(["accueil", "\x00"], 0, lists) is None
    assert match_phrase(["post", "création", "\x00"], 0, lists)[2] == 2

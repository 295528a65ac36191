"""What people type to !reunion: dates (future first), times, durations, windows, answers."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from commands._reunion import (ALL, InputError, meeting_duration, parse_day, parse_dispo, parse_proposal, parse_time,
                               reaction_answer, unknown_words)
from ess_bot.config import MeetingSettings
from tests.support import PARIS

TODAY = date(2026, 11, 27)


@pytest.mark.parametrize("text, expected", [
    ("12/03", date(2027, 3, 12)), ("12/12", date(2026, 12, 12)), ("12/03/2026", date(2026, 3, 12)),
    ("12/03/27", date(2027, 3, 12)), ("2027-01-05", date(2027, 1, 5)), ("12 mars", date(2027, 3, 12)),
    ("1er avril 2027", date(2027, 4, 1)), ("jeudi 10 décembre", date(2026, 12, 10)), ("le 3 déc.", date(2026, 12, 3)),
    ("20/11", date(2026, 11, 20)),      # a week ago: this year's (refused later as past), not next year's
    ("Mardi 5 JANVIER", date(2027, 1, 5)),
])
def test_parse_day(text, expected):
    assert parse_day(text, TODAY) == expected


@pytest.mark.parametrize("text, message, example", [
    ("31/02", "La date « 31/02 » n'existe pas", "Exemples : `12/03`"),
    ("demain soir", "Je ne comprends pas la date « demain soir »", "Exemples : `12/03`"),
    ("lundi 10 décembre", "est un jeudi, pas un lundi (« lundi 10 décembre »)", "Exemple : `jeudi 10 décembre 2026`"),
    ("12 brumaire", "Je ne comprends pas la date « 12 brumaire »", "Exemples : `12/03`"),
])
def test_parse_day_errors(text, message, example):
    """Every refusal names the value as typed and shows an example."""
    with pytest.raises(InputError) as err:
        parse_day(text, TODAY)
    assert message in err.value.message
    assert example in err.value.message


def test_times_and_durations():
    assert parse_time("14h") == time(14, 0) and parse_time("9h30") == time(9, 30) and parse_time("14:15") == time(14, 15)
    assert parse_time("mars") is None
    with pytest.raises(InputError, match="n'existe pas"):
        parse_time("24h")
    assert meeting_duration("3h") == 180 and meeting_duration("2h30") == 150 and meeting_duration("90min") == 90
    assert meeting_duration("1h15min") == 75 and meeting_duration("1,5h") == 90     # the shared parser's forms
    for bad, message in (("3", "Durée illisible : « 3 »"), ("deux heures", "Durée illisible : « deux heures »"),
                         ("10min", "La durée « 10min » est trop courte"), ("13h", "La durée « 13h » est trop longue")):
        with pytest.raises(InputError) as err:
            meeting_duration(bad)
        assert message in err.value.message and "Exemple" in err.value.message


def test_unknown_words_spot_an_unquoted_title():
    assert unknown_words("du réseau 12/03") == ["du", "réseau"]
    assert unknown_words("jeudi 12 mars à 14h") == []


def test_proposal_with_a_window_and_options():
    prop = parse_proposal(["Rencontre", "du", "1er", "décembre", "au", "15", "janvier", "n=3", "durée=2h",
                           "lieu=Dijon", "limite=4/12"], TODAY, PARIS, MeetingSettings(), "!")
    assert prop.title == "Rencontre" and prop.n == 3 and prop.duration == 120 and prop.location == "Dijon"
    assert prop.window.start == date(2026, 12, 5) and prop.window.end == date(2027, 1, 15)   # after the deadline
    assert prop.explicit == []


def test_proposal_with_explicit_dates_and_defaults():
    prop = parse_proposal(["Bilan", "8/12", "14h,", "jeudi", "10", "décembre,", "15/12", "à", "9h30"], TODAY, PARIS,
                          MeetingSettings(), "!")
    assert prop.title == "Bilan" and prop.location == "Besançon" and prop.duration == 180
    assert prop.explicit == [datetime(2026, 12, 8, 14, 0, tzinfo=PARIS),
                             datetime(2026, 12, 10, 14, 0, tzinfo=PARIS),   # no time: Thursday → 14 h
                             datetime(2026, 12, 15, 9, 30, tzinfo=PARIS)]
    assert parse_proposal([], TODAY, PARIS, MeetingSettings(), "!").title == "Rencontre du réseau"


@pytest.mark.parametrize("args, expected", [
    (["1=oui", "2=sibesoin", "3=non"], (None, [(1, "oui"), (2, "sibesoin"), (3, "non")])),
    (["4", "1=o", "2=n"], (4, [(1, "oui"), (2, "non")])),
    (["2", "oui"], (None, [(2, "oui")])),
    (["2", "si", "besoin"], (None, [(2, "sibesoin")])),
    (["4", "2", "peut-être", "3", "non"], (4, [(2, "sibesoin"), (3, "non")])),
    (["tout=non"], (None, [(ALL, "non")])),
    (["1,3=oui"], (None, [(1, "oui"), (3, "oui")])),
    (["n°2", "✅"], (None, [(2, "oui")])),
])
def test_parse_dispo(args, expected):
    assert parse_dispo(args, "!") == expected


def test_reaction_keys():
    assert reaction_answer("✅") == "oui" and reaction_answer("✔️") == "oui" and reaction_answer("👍🏽") == "oui"
    assert reaction_answer("🤔") == "sibesoin" and reaction_answer("❌") == "non" and reaction_answer("👀") is None

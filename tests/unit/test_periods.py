"""French report periods: years, quarters, semesters, months, ranges, relative forms, year boundaries."""

from __future__ import annotations

from datetime import date

import pytest

from ess_bot.services.periods import (Period, PeriodError, current_quarter, month_period, parse_period, quarter_period,
                                      range_period, semester_period, year_period)

TODAY = date(2026, 11, 27)
NEW_YEAR = date(2027, 1, 5)


def span(text: str, today: date = TODAY) -> tuple[date, date]:
    p = parse_period(text, today)
    return p.start, p.end


@pytest.mark.parametrize("text, start, end, label", [
    ("2026", date(2026, 1, 1), date(2026, 12, 31), "année 2026"),
    ("année 2025", date(2025, 1, 1), date(2025, 12, 31), "année 2025"),
    ("T1 2026", date(2026, 1, 1), date(2026, 3, 31), "1er trimestre 2026"),
    ("T2 2026", date(2026, 4, 1), date(2026, 6, 30), "2e trimestre 2026"),
    ("T3 2026", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("t4-2025", date(2025, 10, 1), date(2025, 12, 31), "4e trimestre 2025"),
    ("2026-T3", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("2026 t3", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("Q3 2026", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("3e trimestre 2026", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("troisième trimestre 2026", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("trimestre 3 2026", date(2026, 7, 1), date(2026, 9, 30), "3e trimestre 2026"),
    ("premier trimestre 2026", date(2026, 1, 1), date(2026, 3, 31), "1er trimestre 2026"),
    ("dernier trimestre 2025", date(2025, 10, 1), date(2025, 12, 31), "4e trimestre 2025"),
    ("S1 2026", date(2026, 1, 1), date(2026, 6, 30), "1er semestre 2026"),
    ("s2 2026", date(2026, 7, 1), date(2026, 12, 31), "2e semestre 2026"),
    ("2026-S2", date(2026, 7, 1), date(2026, 12, 31), "2e semestre 2026"),
    ("1er semestre 2026", date(2026, 1, 1), date(2026, 6, 30), "1er semestre 2026"),
    ("second semestre 2025", date(2025, 7, 1), date(2025, 12, 31), "2e semestre 2025"),
    ("novembre 2026", date(2026, 11, 1), date(2026, 11, 30), "novembre 2026"),
    ("Février 2024", date(2024, 2, 1), date(2024, 2, 29), "février 2024"),
    ("févr. 2026", date(2026, 2, 1), date(2026, 2, 28), "février 2026"),
    ("11/2026", date(2026, 11, 1), date(2026, 11, 30), "novembre 2026"),
    ("2026-02", date(2026, 2, 1), date(2026, 2, 28), "février 2026"),
    ("du 01/01/2026 au 30/06/2026", date(2026, 1, 1), date(2026, 6, 30), "du 1er janvier au 30 juin 2026"),
    ("01/01/2026-30/06/2026", date(2026, 1, 1), date(2026, 6, 30), "du 1er janvier au 30 juin 2026"),
    ("du 1er janvier 2026 au 30 juin 2026", date(2026, 1, 1), date(2026, 6, 30), "du 1er janvier au 30 juin 2026"),
    ("2026-01-01 - 2026-03-31", date(2026, 1, 1), date(2026, 3, 31), "du 1er janvier au 31 mars 2026"),
    ("entre le 1/2/2026 et le 28/2/2026", date(2026, 2, 1), date(2026, 2, 28), "du 1er février au 28 février 2026"),
    ("de janvier à mars 2026", date(2026, 1, 1), date(2026, 3, 31), "du 1er janvier au 31 mars 2026"),
    ("du 15/12/2025 au 15/01/2026", date(2025, 12, 15), date(2026, 1, 15),
     "du 15 décembre 2025 au 15 janvier 2026"),
    ("du 15/12 au 15/01/2026", date(2025, 12, 15), date(2026, 1, 15), "du 15 décembre 2025 au 15 janvier 2026"),
    ("2025-2026", date(2025, 1, 1), date(2026, 12, 31), "années 2025 à 2026"),
    ("de 2024 à 2025", date(2024, 1, 1), date(2025, 12, 31), "années 2024 à 2025"),
])
def test_explicit_periods(text, start, end, label):
    p = parse_period(text, TODAY)
    assert (p.start, p.end, p.label) == (start, end, label)


@pytest.mark.parametrize("text, start, end", [
    ("", date(2026, 10, 1), date(2026, 12, 31)),              # default: the current quarter
    ("ce trimestre", date(2026, 10, 1), date(2026, 12, 31)),
    ("trimestre en cours", date(2026, 10, 1), date(2026, 12, 31)),
    ("trimestre dernier", date(2026, 7, 1), date(2026, 9, 30)),
    ("le trimestre précédent", date(2026, 7, 1), date(2026, 9, 30)),
    ("dernier trimestre", date(2026, 7, 1), date(2026, 9, 30)),
    ("ce semestre", date(2026, 7, 1), date(2026, 12, 31)),
    ("semestre dernier", date(2026, 1, 1), date(2026, 6, 30)),
    ("ce mois-ci", date(2026, 11, 1), date(2026, 11, 30)),
    ("mois dernier", date(2026, 10, 1), date(2026, 10, 31)),
    ("cette année", date(2026, 1, 1), date(2026, 12, 31)),
    ("l'an dernier", date(2025, 1, 1), date(2025, 12, 31)),
    ("l’année dernière", date(2025, 1, 1), date(2025, 12, 31)),
    ("depuis le 01/03/2026", date(2026, 3, 1), TODAY),
    ("depuis mars", date(2026, 3, 1), TODAY),
    ("novembre", date(2026, 11, 1), date(2026, 11, 30)),        # this year's (started)
    ("décembre", date(2025, 12, 1), date(2025, 12, 31)),        # not begun this year: last year's
    ("T4", date(2026, 10, 1), date(2026, 12, 31)),
    ("S1", date(2026, 1, 1), date(2026, 6, 30)),
])
def test_relative_periods(text, start, end):
    assert span(text) == (start, end)


@pytest.mark.parametrize("text, start, end", [
    ("", date(2027, 1, 1), date(2027, 3, 31)),
    ("trimestre dernier", date(2026, 10, 1), date(2026, 12, 31)),
    ("semestre dernier", date(2026, 7, 1), date(2026, 12, 31)),
    ("mois dernier", date(2026, 12, 1), date(2026, 12, 31)),
    ("l'an dernier", date(2026, 1, 1), date(2026, 12, 31)),
    ("décembre", date(2026, 12, 1), date(2026, 12, 31)),
    ("janvier", date(2027, 1, 1), date(2027, 1, 31)),
    ("T4", date(2026, 10, 1), date(2026, 12, 31)),
    ("T1", date(2027, 1, 1), date(2027, 3, 31)),
    ("T2", date(2026, 4, 1), date(2026, 6, 30)),
    ("S2", date(2026, 7, 1), date(2026, 12, 31)),
    ("du 15/12 au 05/01", date(2026, 12, 15), date(2027, 1, 5)),
])
def test_year_boundaries(text, start, end):
    assert span(text, NEW_YEAR) == (start, end)


@pytest.mark.parametrize("text, words", [
    ("blabla", ["Période illisible", "« blabla »", "T3 2026"]),
    ("T5 2026", ["4 trimestres", "« T5 2026 »"]),
    ("S3", ["2 semestres"]),
    ("13/2026", ["Mois impossible", "« 13/2026 »"]),
    ("1999", ["Année impossible"]),
    ("2027", ["n'a pas encore commencé", "27 novembre 2026"]),
    ("janvier 2027", ["n'a pas encore commencé"]),
    ("2026-2025", ["désordre"]),
    ("du 31/02/2026 au 30/06/2026", ["n'existe pas"]),
    ("du 30/06/2026 au 01/01/2026", ["après sa fin"]),
])
def test_errors_name_the_value_and_give_examples(text, words):
    with pytest.raises(PeriodError) as exc:
        parse_period(text, TODAY)
    for word in words:
        assert word in exc.value.message
    assert "Exemple" in exc.value.message


def test_constructors_and_helpers():
    assert quarter_period(2026, 1).slug == "2026-T1" and semester_period(2026, 2).slug == "2026-S2"
    assert month_period(2026, 12).end == date(2026, 12, 31) and year_period(2026).slug == "2026"
    assert current_quarter(date(2026, 3, 31)) == quarter_period(2026, 1)
    assert current_quarter(date(2026, 4, 1)) == quarter_period(2026, 2)
    p = range_period(date(2025, 11, 15), date(2026, 2, 10))
    assert p.months() == [(2025, 11), (2025, 12), (2026, 1), (2026, 2)]
    assert p.slug == "2025-11-15_2026-02-10" and p.label == "du 15 novembre 2025 au 10 février 2026"
    assert p.contains(date(2025, 11, 15)) and p.contains(date(2026, 2, 10)) and not p.contains(date(2026, 2, 11))
    assert p.end_exclusive == date(2026, 2, 11)
    assert quarter_period(2026, 3).dates_text() == "du 1er juillet au 30 septembre 2026"
    assert Period(date(2026, 5, 1), date(2026, 5, 1), "x", "x").dates_text() == "le 1er mai 2026"

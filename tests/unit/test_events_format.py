"""Event cards, the .ics files (parsed back with icalendar), reminder planning and French dates typed in
commands — pure functions, no database."""

from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from icalendar import Calendar

from commands._events import (announce_tag, de_fr, event_card, find_when, ics_filename, month_number,
                              reminder_key, relative_day, when_fr)
from ess_bot.clock import Clock
from ess_bot.framework.context import UserError
from ess_bot.framework.messages import render_markdown
from ess_bot.services.events import EventService, EventView, reminder_times
from tests.support import PARIS, make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
TODAY = NOW.date()


def view(**kw):
    base = dict(id=7, title="Inauguration du Pixel", start=datetime(2027, 1, 15, 18, 0, tzinfo=PARIS),
                end=datetime(2027, 1, 15, 21, 0, tzinfo=PARIS), partner="bge-fc", organiser="BGE Franche-Comté",
                created_by="@claire:test", location="Le Pixel, Besançon", link="https://pixel.example/inscription",
                audience=("porteurs", "partenaires"), tags=("mois-ess",), rooms=("!annonces:test",))
    return EventView(**(base | kw))


@pytest.fixture
def service():
    return EventService(make_config("sqlite+aiosqlite:///:memory:"), Clock(PARIS, frozen_at=NOW))


def parse(ics: bytes):
    cal = Calendar.from_ical(ics)
    [ev] = cal.walk("VEVENT")
    return cal, ev


def test_card_has_title_french_date_place_organiser_audience_and_link():
    markdown = event_card(view(), "📅 Nouvel événement :", footer="Événement n°7")
    body, html = render_markdown(markdown)
    assert body.splitlines()[0] == "📅 Nouvel événement : Inauguration du Pixel"
    assert "- Quand : vendredi 15 janvier 2027, de 18 h à 21 h" in body
    assert "- Où : Le Pixel, Besançon" in body
    assert "- Organisé par : BGE Franche-Comté" in body
    assert "- Public : porteurs de projet, partenaires du réseau" in body
    assert "- Inscription : https://pixel.example/inscription\n" in body    # the address once
    assert "#mois-ess" in body and "Événement n°7" in body
    assert "<strong>Inauguration du Pixel</strong>" in html
    assert '<a href="https://pixel.example/inscription">https://pixel.example/inscription</a>' in html
    assert "<li><strong>Quand :</strong> vendredi 15 janvier 2027, de 18 h à 21 h</li>" in html
    assert "<p>#mois-ess</p>" in html and "<em>Événement n°7</em>" in html   # a tag line is no heading


def test_card_shows_user_text_as_typed_and_handles_multi_day_events():
    markdown = event_card(view(title="<b>Fête</b> & **co** [clic](javascript:alert(1))",
                               end=datetime(2027, 1, 16, 12, 0, tzinfo=PARIS), location=None, link=None,
                               audience=()), "📅")
    body, html = render_markdown(markdown)
    assert "&lt;b&gt;Fête&lt;/b&gt; &amp; **co** [clic](javascript:alert(1))" in html
    assert "<b>" not in html and "<a" not in html
    assert body.splitlines()[0] == "📅 <b>Fête</b> & **co** [clic](javascript:alert(1))"
    assert "du vendredi 15 janvier 2027 à 18 h au samedi 16 janvier 2027 à 12 h" in body
    assert "Où" not in body and "Public" not in body and "Inscription" not in body


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "https://matrix.to/#/@x:test"])
def test_a_card_never_makes_a_link_of_an_unsafe_address(link):
    body, html = render_markdown(event_card(view(link=link), "📅"))
    assert "<a" not in html and f"Inscription : {link}" in body


def test_ics_has_stable_uid_sequence_timezone_and_no_attendees(service):
    cal, ev = parse(service.ics(view()))
    assert str(cal["METHOD"]) == "PUBLISH" and "PRODID" in cal and str(cal["VERSION"]) == "2.0"
    assert str(ev["UID"]) == "event-7@ess-bot"
    assert int(ev["SEQUENCE"]) == 0 and str(ev["STATUS"]) == "CONFIRMED"
    assert ev["DTSTART"].params["TZID"] == "Europe/Paris"
    assert ev.decoded("DTSTART") == datetime(2027, 1, 15, 18, 0, tzinfo=PARIS)
    assert ev.decoded("DTEND") == datetime(2027, 1, 15, 21, 0, tzinfo=PARIS)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(ev["SUMMARY"]) == "Inauguration du Pixel" and str(ev["LOCATION"]) == "Le Pixel, Besançon"
    assert str(ev["URL"]) == "https://pixel.example/inscription"
    assert "Organisé par BGE Franche-Comté" in str(ev["DESCRIPTION"])
    assert "ATTENDEE" not in ev and "ORGANIZER" not in ev


def test_ics_update_increments_sequence_and_cancellation_says_cancelled(service):
    _, updated = parse(service.ics(view(sequence=1, start=datetime(2027, 1, 22, 18, 0, tzinfo=PARIS),
                                        end=datetime(2027, 1, 22, 21, 0, tzinfo=PARIS))))
    assert str(updated["UID"]) == "event-7@ess-bot" and int(updated["SEQUENCE"]) == 1
    _, cancelled = parse(service.ics(view(sequence=2, cancelled=True, cancel_reason="salle indisponible")))
    assert str(cancelled["UID"]) == "event-7@ess-bot" and int(cancelled["SEQUENCE"]) == 2
    assert str(cancelled["STATUS"]) == "CANCELLED"


def test_reminders_at_nine_on_day_j_minus_n_only_in_the_future():
    start = datetime(2027, 1, 15, 18, 0, tzinfo=PARIS)
    plan = reminder_times(start, (7, 1), NOW)
    assert plan == [(7, datetime(2027, 1, 8, 9, 0, tzinfo=PARIS)), (1, datetime(2027, 1, 14, 9, 0, tzinfo=PARIS))]
    assert reminder_times(start, (7, 1), datetime(2027, 1, 10, 12, 0, tzinfo=PARIS)) == [
        (1, datetime(2027, 1, 14, 9, 0, tzinfo=PARIS))]
    early = datetime(2027, 1, 15, 8, 30, tzinfo=PARIS)  # J-0 of an early event: one hour before
    assert reminder_times(early, (0,), NOW) == [(0, datetime(2027, 1, 15, 7, 30, tzinfo=PARIS))]


def test_when_and_relative_day_in_french():
    start = datetime(2027, 1, 15, 18, 30, tzinfo=PARIS)
    assert when_fr(start, start + timedelta(hours=2)) == "vendredi 15 janvier 2027, de 18 h 30 à 20 h 30"
    assert relative_day(start, datetime(2027, 1, 14, 9, 0, tzinfo=PARIS)) == "demain à 18 h 30"
    assert relative_day(start, datetime(2027, 1, 15, 9, 0, tzinfo=PARIS)) == "aujourd'hui à 18 h 30"
    assert relative_day(start, datetime(2027, 1, 8, 9, 0, tzinfo=PARIS)) == \
        "dans 7 jours, le vendredi 15 janvier 2027 à 18 h 30"


def test_keys_tags_and_filenames():
    assert reminder_key(3, 7, 0) == "event:3:reminder:7"
    assert reminder_key(3, 7, 2) == "event:3:reminder:7:2"
    assert announce_tag(3, "!a:test") != announce_tag(3, "!b:test") and len(announce_tag(3, "!a" * 200)) < 128
    assert ics_filename(view()) == "inauguration-du-pixel-7.ics"
    assert de_fr("URSCOP") == "d'URSCOP" and de_fr("BGE Franche-Comté") == "de BGE Franche-Comté"


CTX = SimpleNamespace(prefix="!")


@pytest.mark.parametrize("words, day, start, end, rest", [
    (["Inauguration du Pixel", "15/01/2027", "18h"], date(2027, 1, 15), time(18), None, ["Inauguration du Pixel"]),
    (["Atelier", "le", "3", "février", "2027", "à", "14h30"], date(2027, 2, 3), time(14, 30), None, ["Atelier"]),
    (["Atelier", "vendredi", "15", "janvier", "18h-21h"], date(2027, 1, 15), time(18), time(21), ["Atelier"]),
    (["Visite", "2/12", "9h"], date(2026, 12, 2), time(9), None, ["Visite"]),
    (["Visite", "20/11", "9:15"], date(2027, 11, 20), time(9, 15), None, ["Visite"]),  # past this year: next year
    (["Réunion", "demain", "10H"], date(2026, 11, 25), time(10), None, ["Réunion"]),
    (["Forum", "2027-03-04", "9h"], date(2027, 3, 4), time(9), None, ["Forum"]),
])
def test_french_dates_and_times_in_commands(words, day, start, end, rest):
    when = find_when(CTX, words, TODAY)
    assert (when.day, when.start, when.end, when.rest) == (day, start, end, rest)


@pytest.mark.parametrize("words, message", [
    (["31/02/2027"], "Cette date n'existe pas : « 31/02/2027 »"),
    (["15/01/2027", "25h"], "Heure impossible : « 25h »"),
    (["jeudi", "15", "janvier", "2027"], "Le 15 janvier 2027 est un vendredi, pas un jeudi"),
])
def test_impossible_dates_are_named(words, message):
    with pytest.raises(UserError, match=message):
        find_when(CTX, words, TODAY)


def test_month_names_with_accents_abbreviations_and_typos():
    assert month_number("décembre") == 12 and month_number("DECEMBRE") == 12 and month_number("déc.") == 12
    assert month_number("fevrier") == 2 and month_number("decmbre") == 12 and month_number("aout") == 8
    assert month_number("bonjour") is None

"""The accompaniment domain service against a real, migrated database (``db_url`` fixture)."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from random import Random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select

from ess_bot.clock import Clock
from ess_bot.config import parse_config
from ess_bot.services.accompaniments import (AccompanimentChanges, AccompanimentService, Actor, Ambiguous, Conflict,
                                             Forbidden, Invalid, NewAccompaniment, NewOutcome, NewProject, NotFound,
                                             PersonalDataRefused, Profile, ProjectChanges)
from ess_bot.storage.accompaniments import AccompanimentTheme, Project

PARIS = ZoneInfo("Europe/Paris")
CONFIG = """
[[partners]]
slug = "bge-fc"
name = "BGE Franche-Comté"
departments = ["25", "39", "70", "90"]
room = "!bge:test"

[[partners]]
slug = "urscop"
name = "URSCOP"
departments = ["21", "25", "39", "58", "70", "71", "89", "90"]
room = "!urscop:test"

[[partners]]
slug = "aldess"
name = "Aldess"
departments = ["58"]

[[members]]
user_id = "@karim:test"
partner = "bge-fc"

[[members]]
user_id = "@paul:test"
partner = "bge-fc"

[[members]]
user_id = "@claire:test"
partner = "bge-fc"
role = "coordinator"

[[members]]
user_id = "@marc:test"
partner = "urscop"

[[members]]
user_id = "@ali:test"
partner = "aldess"
"""

KARIM = Actor("@karim:test", "bge-fc")
PAUL = Actor("@paul:test", "bge-fc")
CLAIRE = Actor("@claire:test", "bge-fc", "coordinator")
MARC = Actor("@marc:test", "urscop")
ALI = Actor("@ali:test", "aldess")
TODAY = date(2026, 11, 27)


@pytest.fixture
def clock() -> Clock:
    return Clock(PARIS, frozen_at=datetime(2026, 11, 27, 10, 0))


@pytest.fixture
def svc(clock) -> AccompanimentService:
    config = parse_config(tomllib.loads(CONFIG), source="test")
    return AccompanimentService(config, clock, rng=Random(7))


@pytest.fixture
async def session(database):
    async with database.sessions.begin() as s:
        yield s


def acc(project: str, **kw) -> NewAccompaniment:
    fields = dict(project=project, date=TODAY, phase="emergence", duration_minutes=90)
    fields.update(kw)
    return NewAccompaniment(**fields)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
async def test_migration_creates_the_tables_and_indexes(database):
    async with database.engine.connect() as conn:
        def look(sync_conn):
            insp = inspect(sync_conn)
            return set(insp.get_table_names()), {i["name"] for i in insp.get_indexes("accompaniments")}
        tables, indexes = await conn.run_sync(look)
    assert {"projects", "accompaniments", "accompaniment_themes", "project_outcomes", "referrals"} <= tables
    assert {"ix_accompaniments_partner_date", "ix_accompaniments_project", "ix_accompaniments_advisor"} <= indexes


async def test_create_and_find_project(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Café culturel Pixel", department="25",
                                                            legal_form="association", collective=True))
    assert p.code.startswith("P-") and len(p.code) == 6
    assert (p.partner, p.department, p.nature, p.legal_form, p.collective, p.esus) == (
        "bge-fc", "25", "creation", "association", True, "non")
    assert p.created_at == datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    assert p.profile.is_empty() and p.outcome is None
    for ref in (p.code, p.code.lower(), p.code.replace("-", ""), "pixel", "CAFE", "café culturel pixel", "cafe pixel"):
        assert (await svc.find_project(session, KARIM, ref)).code == p.code
    # the same label within a partner is refused; another partner may use it
    with pytest.raises(Conflict):
        await svc.create_project(session, PAUL, NewProject(label="CAFÉ CULTUREL  PIXEL", department="25"))
    other = await svc.create_project(session, MARC, NewProject(label="Café culturel Pixel", department="21"))
    assert other.code != p.code
    # each partner finds its own
    assert (await svc.find_project(session, MARC, "pixel")).code == other.code
    # a coordinator sees both: ambiguous
    with pytest.raises(Ambiguous) as exc:
        await svc.find_project(session, CLAIRE, "pixel")
    assert {c.code for c in exc.value.candidates} == {p.code, other.code}


@pytest.mark.parametrize("new, word", [
    (NewProject(label="", department="25"), "vide"),
    (NewProject(label="x" * 61, department="25"), "trop long"),
    (NewProject(label="Projet de jean@example.org", department="25"), "RGPD"),
    (NewProject(label="Tel 06 12 34 56 78", department="25"), "RGPD"),
    (NewProject(label="P-7K3Q", department="25"), "code"),
    (NewProject(label="Pixel", department="75"), "75"),
    (NewProject(label="Pixel", department="25", nature="fusion"), "fusion"),
    (NewProject(label="Pixel", department="25", legal_form="sa"), "sa"),
    (NewProject(label="Pixel", department="25", esus="peut-être"), "peut-être"),
])
async def test_invalid_projects(svc, session, new, word):
    with pytest.raises(Invalid) as exc:
        await svc.create_project(session, KARIM, new)
    assert word in exc.value.message


async def test_visibility_across_partners(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    for who in (KARIM, PAUL, CLAIRE):
        assert (await svc.find_project(session, who, p.code)).code == p.code
    for who in (MARC, ALI):
        with pytest.raises(NotFound):
            await svc.find_project(session, who, p.code)
        with pytest.raises(NotFound):
            await svc.find_project(session, who, "recyclerie")
        with pytest.raises(NotFound):
            await svc.log_accompaniment(session, who, acc(p.code))
        assert await svc.list_projects(session, who) == []


async def test_log_list_and_history(svc, session, clock):
    p = await svc.create_project(session, KARIM, NewProject(label="Café culturel Pixel", department="25"))
    a1 = await svc.log_accompaniment(session, KARIM, acc("Pixel", date=date(2026, 11, 24), themes=("rh", "juridique", "rh"),
                                                         note="  premier   rendez-vous ", source_event_id="$e1"))
    assert (a1.project_code, a1.phase, a1.modality, a1.duration_minutes, a1.date) == (
        p.code, "emergence", "individuel", 90, date(2026, 11, 24))
    assert a1.themes == ("juridique", "rh") and a1.note == "premier rendez-vous"
    a2 = await svc.log_accompaniment(session, KARIM, acc(p.code, phase="financement", modality="visio",
                                                         duration_minutes=45))
    await svc.log_accompaniment(session, PAUL, acc(p.code, duration_minutes=30))
    own = await svc.list_own(session, KARIM)
    assert [v.id for v in own] == [a2.id, a1.id]
    assert [v.id for v in await svc.list_own(session, KARIM, limit=1)] == [a2.id]
    history = await svc.project_history(session, CLAIRE, p.code)
    assert [v.id for v in history.accompaniments] == [a1.id, a2.id, a2.id + 1]
    assert [(t.partner, t.sessions, t.minutes) for t in history.totals] == [("bge-fc", 3, 165)]
    summary = (await svc.list_projects(session, KARIM))[0]
    assert (summary.code, summary.sessions, summary.minutes, summary.last_date) == (p.code, 3, 165, TODAY)
    assert await session.scalar(select(func.count()).select_from(AccompanimentTheme)) == 2


@pytest.mark.parametrize("kw, word", [
    (dict(date=TODAY + timedelta(days=1)), "futur"),
    (dict(duration_minutes=0), "Durée"),
    (dict(duration_minutes=721), "Durée"),
    (dict(phase="sieste"), "sieste"),
    (dict(modality="pigeon"), "pigeon"),
    (dict(themes=("astrologie",)), "astrologie"),
    (dict(note="appeler au 0612345678"), "RGPD"),
    (dict(note="x" * 281), "trop longue"),
])
async def test_invalid_accompaniments(svc, session, kw, word):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    with pytest.raises(Invalid) as exc:
        await svc.log_accompaniment(session, KARIM, acc(p.code, **kw))
    assert word in exc.value.message


async def test_modify_and_cancel_rules(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    q = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="70"))
    a = await svc.log_accompaniment(session, KARIM, acc(p.code, themes=("rh",)))
    assert (await svc.get_accompaniment(session, PAUL, a.id)).themes == ("rh",)
    with pytest.raises(NotFound):
        await svc.get_accompaniment(session, MARC, a.id)
    with pytest.raises(Forbidden):
        await svc.update_accompaniment(session, PAUL, a.id, AccompanimentChanges(duration_minutes=120))
    with pytest.raises(Forbidden):
        await svc.cancel_accompaniment(session, PAUL, a.id)
    view, done = await svc.update_accompaniment(session, KARIM, a.id, AccompanimentChanges(
        duration_minutes=120, themes=("juridique", "financement"), project="Recyclerie", note="bilan"))
    assert (view.duration_minutes, view.project_code, view.themes, view.note) == (
        120, q.code, ("juridique", "financement"), "bilan")
    assert {c.name for c in done} == {"duration_minutes", "themes", "project", "note"}
    # nothing changes: no change reported
    assert (await svc.update_accompaniment(session, KARIM, a.id, AccompanimentChanges(duration_minutes=120)))[1] == []
    # a coordinator may change anyone's record, and clear the note
    view, done = await svc.update_accompaniment(session, CLAIRE, a.id, AccompanimentChanges(note="", themes=()))
    assert view.note is None and view.themes == ()
    with pytest.raises(NotFound):
        await svc.update_accompaniment(session, KARIM, 99999, AccompanimentChanges(duration_minutes=60))
    cancelled = await svc.cancel_accompaniment(session, CLAIRE, a.id)
    assert cancelled.cancelled and cancelled.cancelled_by == CLAIRE.user_id
    with pytest.raises(Conflict):
        await svc.cancel_accompaniment(session, KARIM, a.id)
    with pytest.raises(Conflict):
        await svc.update_accompaniment(session, KARIM, a.id, AccompanimentChanges(duration_minutes=60))
    assert await svc.list_own(session, KARIM) == []
    assert (await svc.project_history(session, KARIM, q.code)).totals == []


async def test_cancel_by_source_event(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    a = await svc.log_accompaniment(session, KARIM, acc(p.code, source_event_id="$cmd"))
    assert await svc.cancel_by_event(session, "$other", "@karim:test") is None
    view = await svc.cancel_by_event(session, "$cmd", "@karim:test")
    assert view.id == a.id and view.cancelled
    assert await svc.cancel_by_event(session, "$cmd", "@karim:test") is None


async def test_referral_accept_makes_the_project_visible(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    await svc.log_accompaniment(session, KARIM, acc(p.code))
    with pytest.raises(Invalid):
        await svc.refer(session, KARIM, p.code, "bge-fc")
    with pytest.raises(Invalid):
        await svc.refer(session, KARIM, p.code, "nowhere")
    r = await svc.refer(session, KARIM, p.code, "urscop", "passage en SCOP")
    assert (r.status, r.from_partner, r.to_partner, r.note, r.date) == ("proposee", "bge-fc", "urscop",
                                                                          "passage en SCOP", TODAY)
    with pytest.raises(Conflict):
        await svc.refer(session, PAUL, p.code, "urscop")
    assert [x.project_code for x in await svc.pending_referrals(session, MARC)] == [p.code]
    with pytest.raises(NotFound):  # not before acceptance
        await svc.find_project(session, MARC, p.code)
    with pytest.raises(NotFound):  # only the receiving partner decides
        await svc.decide_referral(session, ALI, p.code, accept=True)
    decided = await svc.decide_referral(session, MARC, "recyc", accept=True)
    assert decided.status == "acceptee" and decided.decided_by == MARC.user_id
    assert (await svc.find_project(session, MARC, "recyclerie")).code == p.code
    await svc.log_accompaniment(session, MARC, acc(p.code, phase="ante_creation", duration_minutes=60))
    history = await svc.project_history(session, KARIM, p.code)
    assert [(t.partner, t.sessions, t.minutes) for t in history.totals] == [("bge-fc", 1, 90), ("urscop", 1, 60)]
    assert [r.status for r in history.referrals] == ["acceptee"]
    with pytest.raises(Conflict):
        await svc.refer(session, KARIM, p.code, "urscop")
    with pytest.raises(NotFound):  # no longer pending
        await svc.decide_referral(session, MARC, p.code, accept=False)
    # the receiving partner may not pass it on (the third partner would see its whole history): only the
    # holder, or the coordination, refers a project
    with pytest.raises(Forbidden) as exc:
        await svc.refer(session, MARC, p.code, "aldess")
    assert (f"Le projet {p.code} est porté par BGE Franche-Comté : seule cette structure (ou la coordination du "
            "réseau) peut l'orienter") in exc.value.message
    assert await svc.pending_referrals(session, ALI) == []
    with pytest.raises(NotFound):
        await svc.find_project(session, ALI, p.code)
    assert [s.code for s in await svc.list_projects(session, MARC)] == [p.code]
    sophie = Actor("@sophie:test", "urscop", "coordinator")  # a coordinator of another partner may
    onwards = await svc.refer(session, sophie, p.code, "aldess")
    assert (onwards.from_partner, onwards.project_partner) == ("urscop", "bge-fc")
    assert [x.project_code for x in await svc.pending_referrals(session, ALI)] == [p.code]


async def test_referral_refused(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    await svc.refer(session, KARIM, p.code, "urscop")
    refused = await svc.decide_referral(session, MARC, p.code, accept=False, reason="hors territoire")
    assert refused.status == "refusee" and refused.reason == "hors territoire"
    with pytest.raises(NotFound):
        await svc.find_project(session, MARC, p.code)
    again = await svc.refer(session, KARIM, p.code, "urscop")  # may be proposed again later
    assert again.status == "proposee"


async def test_profile(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    view, done = await svc.set_profile(session, KARIM, p.code, Profile(gender="femme", age_band="26_49",
                                                                       employment_status="de_longue_duree",
                                                                       minima="rsa", qpv="non"))
    assert view.profile == Profile("femme", "26_49", "de_longue_duree", "rsa", "non", None)
    assert len(done) == 5
    view, done = await svc.set_profile(session, KARIM, p.code, Profile(frr="oui", gender="femme"))
    assert view.profile.frr == "oui" and [c.name for c in done] == ["frr"]
    with pytest.raises(Invalid):
        await svc.set_profile(session, KARIM, p.code, Profile(age_band="40"))
    with pytest.raises(NotFound):
        await svc.set_profile(session, MARC, p.code, Profile(gender="homme"))


async def test_update_project(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    view, done = await svc.update_project(session, PAUL, p.code, ProjectChanges(legal_form="scic", collective=True,
                                                                               label="Café Pixel"))
    assert (view.legal_form, view.collective, view.label) == ("scic", True, "Café Pixel")
    assert {c.name for c in done} == {"legal_form", "collective", "label"}
    with pytest.raises(Conflict):
        await svc.update_project(session, KARIM, p.code, ProjectChanges(label="recyclerie"))
    with pytest.raises(NotFound):
        await svc.update_project(session, MARC, p.code, ProjectChanges(esus="obtenu"))
    row = await session.scalar(select(Project).where(Project.code == p.code))
    assert row.label_key == "cafe pixel" and row.updated_by == PAUL.user_id


async def test_outcome(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    first = await svc.record_outcome(session, KARIM, p.code, NewOutcome("report", date(2026, 6, 1)))
    assert first.previous is None and first.project.outcome.outcome == "report" and first.changes == []
    result = await svc.record_outcome(session, KARIM, p.code, NewOutcome(
        "creation", TODAY, legal_form="scop", jobs_fte=Decimal("2.5")))
    out = result.outcome
    assert result.previous.outcome == "report"
    assert {c.name for c in result.changes} == {"outcome", "date", "legal_form", "jobs_fte"}
    assert (out.outcome, out.legal_form, out.jobs_fte, out.partner) == ("creation", "scop", Decimal("2.50"), "bge-fc")
    assert (await svc.find_project(session, CLAIRE, p.code)).outcome.jobs_fte == Decimal("2.50")
    with pytest.raises(Invalid):
        await svc.record_outcome(session, KARIM, p.code, NewOutcome("abandon", TODAY, jobs_fte=Decimal(1)))
    with pytest.raises(Invalid):
        await svc.record_outcome(session, KARIM, p.code, NewOutcome("creation", TODAY + timedelta(days=1)))
    assert (await svc.list_projects(session, KARIM))[0].outcome == "creation"


async def test_label_search_escapes_like_wildcards(svc, session):
    await svc.create_project(session, KARIM, NewProject(label="Atelier 100% vélo", department="25"))
    await svc.create_project(session, KARIM, NewProject(label="Atelier bois", department="25"))
    assert (await svc.find_project(session, KARIM, "100%")).label == "Atelier 100% vélo"
    with pytest.raises(NotFound):
        await svc.find_project(session, KARIM, "_")
    with pytest.raises(Ambiguous):
        await svc.find_project(session, KARIM, "atelier")


# -- review fixes ------------------------------------------------------------------------------

SOPHIE = Actor("@sophie:test", "urscop", "coordinator")


async def test_only_the_holding_partner_and_coordinators_change_a_project(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    await svc.refer(session, KARIM, p.code, "urscop")
    await svc.decide_referral(session, MARC, p.code, accept=True)
    for call in (svc.update_project(session, MARC, p.code, ProjectChanges(legal_form="scic")),
                 svc.set_profile(session, MARC, p.code, Profile(gender="homme")),
                 svc.record_outcome(session, MARC, p.code, NewOutcome("abandon", TODAY))):
        with pytest.raises(Forbidden) as exc:
            await call
        assert f"{p.code} est porté par BGE Franche-Comté" in exc.value.message
    assert (await svc.log_accompaniment(session, MARC, acc(p.code))).partner == "urscop"  # but logs records
    view, done = await svc.update_project(session, SOPHIE, p.code, ProjectChanges(legal_form="scic"))
    assert view.legal_form == "scic" and [c.name for c in done] == ["legal_form"]
    assert (await svc.set_profile(session, PAUL, p.code, Profile(gender="femme")))[0].profile.gender == "femme"


async def test_a_coordinator_logs_only_on_projects_her_partner_follows(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Recyclerie", department="25"))
    with pytest.raises(Forbidden) as exc:
        await svc.log_accompaniment(session, SOPHIE, acc(p.code))
    assert "compterait pour URSCOP" in exc.value.message
    assert await svc.partner_sees(session, "bge-fc", p.code)
    assert not await svc.partner_sees(session, "urscop", p.code)
    a = await svc.log_accompaniment(session, CLAIRE, acc(p.code))          # her own partner's project
    assert (await svc.cancel_accompaniment(session, SOPHIE, a.id)).cancelled  # may cancel any record
    q = await svc.create_project(session, MARC, NewProject(label="Scop bois", department="21"))
    b = await svc.log_accompaniment(session, KARIM, acc(p.code))
    with pytest.raises(Forbidden):  # a BGE record cannot be moved onto a project BGE does not follow
        await svc.update_accompaniment(session, CLAIRE, b.id, AccompanimentChanges(project=q.code))
    await svc.refer(session, KARIM, p.code, "urscop")
    await svc.decide_referral(session, MARC, p.code, accept=True)
    assert await svc.partner_sees(session, "urscop", p.code)
    assert (await svc.log_accompaniment(session, SOPHIE, acc(p.code))).partner == "urscop"


async def test_outcome_keeps_what_is_not_given(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25", legal_form="scop"))
    first = await svc.record_outcome(session, KARIM, p.code, NewOutcome("creation", date(2026, 11, 2),
                                                                        jobs_fte=Decimal("1.5")))
    assert first.form_from_project and first.outcome.legal_form == "scop" and first.changes == []
    again = await svc.record_outcome(session, KARIM, p.code, NewOutcome("creation"))
    assert (again.outcome.jobs_fte, again.outcome.legal_form, again.outcome.date) == (
        Decimal("1.50"), "scop", date(2026, 11, 2))
    assert again.changes == [] and set(again.kept) == {"date", "legal_form", "jobs_fte"}
    changed = await svc.record_outcome(session, KARIM, p.code, NewOutcome("creation", legal_form="scic"))
    assert [(c.name, c.before, c.after) for c in changed.changes] == [("legal_form", "scop", "scic")]
    assert changed.outcome.jobs_fte == Decimal("1.50")
    ended = await svc.record_outcome(session, KARIM, p.code, NewOutcome("abandon"))
    assert (ended.outcome.date, ended.outcome.legal_form, ended.outcome.jobs_fte) == (TODAY, None, None)
    assert {c.name for c in ended.changes} == {"outcome", "date", "legal_form", "jobs_fte"}
    with pytest.raises(Invalid) as exc:
        await svc.record_outcome(session, KARIM, p.code, NewOutcome("abandon", legal_form="scop"))
    assert "création" in exc.value.message


async def test_history_limit_and_totals_in_sql(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    ids = [(await svc.log_accompaniment(session, KARIM, acc(p.code, date=TODAY - timedelta(days=d),
                                                            duration_minutes=30 + d))).id for d in range(20)]
    await svc.cancel_accompaniment(session, KARIM, ids[0])
    history = await svc.project_history(session, KARIM, p.code, limit=5)
    assert [v.id for v in history.accompaniments] == list(reversed(ids[1:6]))  # the 5 latest, oldest first
    assert (history.sessions, history.minutes, history.older) == (19, sum(30 + d for d in range(1, 20)), 14)
    assert history.last_date == TODAY - timedelta(days=1)
    assert len((await svc.project_history(session, KARIM, p.code)).accompaniments) == 19
    own = await svc.own_records(session, KARIM, limit=3)
    assert [v.id for v in own.records] == ids[1:4] and own.minutes == 31 + 32 + 33
    assert (await svc.own_records(session, KARIM, limit=3, audience="urscop")).records == []
    assert [v.id for v in await svc.list_own(session, KARIM, limit=2)] == ids[1:3]
    assert await svc.list_projects(session, CLAIRE, audience="urscop") == []
    assert [s.code for s in await svc.list_projects(session, CLAIRE, audience="bge-fc")] == [p.code]


async def test_earlier_duplicate(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    a = await svc.log_accompaniment(session, KARIM, acc(p.code))
    assert await svc.earlier_duplicate(session, a) is None
    b = await svc.log_accompaniment(session, KARIM, acc(p.code, modality="visio"))
    assert await svc.earlier_duplicate(session, b) == a.id
    c = await svc.log_accompaniment(session, PAUL, acc(p.code))
    assert await svc.earlier_duplicate(session, c) is None
    await svc.cancel_accompaniment(session, KARIM, a.id)
    await svc.cancel_accompaniment(session, KARIM, b.id)
    d = await svc.log_accompaniment(session, KARIM, acc(p.code))
    assert await svc.earlier_duplicate(session, d) is None


async def test_retention_and_health_data_in_the_service(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    with pytest.raises(Invalid) as exc:
        await svc.log_accompaniment(session, KARIM, acc(p.code, date=date(2023, 11, 26)))
    assert "plus de 3 ans" in exc.value.message and "RGPD" in exc.value.message
    assert (await svc.log_accompaniment(session, KARIM, acc(p.code, date=date(2023, 11, 27)))).id
    with pytest.raises(PersonalDataRefused) as exc:
        await svc.log_accompaniment(session, KARIM, acc(p.code, note="dossier MDPH"))
    assert exc.value.kind == "health" and "« MDPH »" in exc.value.message
    with pytest.raises(PersonalDataRefused):
        await svc.create_project(session, KARIM, NewProject(label="Pixel, porteur en ALD", department="25"))
    assert (await svc.create_project(session, KARIM, NewProject(label="Maison de santé", department="25"))).code


async def test_refer_twice_wording(svc, session):
    p = await svc.create_project(session, KARIM, NewProject(label="Pixel", department="25"))
    await svc.refer(session, KARIM, p.code, "urscop")
    with pytest.raises(Conflict) as exc:
        await svc.refer(session, KARIM, p.code, "urscop")
    assert f"Le projet {p.code} a déjà été proposé à URSCOP" in exc.value.message
    await svc.decide_referral(session, MARC, p.code, accept=True)
    with pytest.raises(Conflict) as exc:
        await svc.refer(session, KARIM, p.code, "urscop")
    assert "a déjà été orienté vers URSCOP, qui l'a accepté" in exc.value.message


# -- project references are bounded (one condition per word in the label search) -------------------

@pytest.mark.parametrize("words", [1000, 13])
async def test_a_long_project_reference_is_refused_in_french(svc, session, words):
    """About 1,000 words used to exceed SQLite's expression depth (one OR per word): refused before
    any query, naming the limit and an example."""
    await svc.create_project(session, KARIM, NewProject(label="Café culturel Pixel", department="25"))
    ref = " ".join(["café"] * words)
    calls = (lambda: svc.find_project(session, KARIM, ref), lambda: svc.project_history(session, CLAIRE, ref),
             lambda: svc.log_accompaniment(session, KARIM, acc(ref)), lambda: svc.refer(session, KARIM, ref, "urscop"),
             lambda: svc.decide_referral(session, MARC, ref, accept=True))
    for call in calls:
        with pytest.raises(Invalid) as exc:
            await call()
        message = exc.value.message
        assert "Référence de projet trop longue" in message and "au plus 12 mots et 80 caractères" in message
        assert "P-7K3Q" in message and "« Pixel »" in message
    if words == 1000:
        assert "(1\u202f000 mots et 4\u202f999 caractères ;" in message
    else:
        assert "(13 mots ;" in message


async def test_a_reference_at_the_limits_is_searched(svc, session):
    """12 words, or 80 characters: searched on both databases, without an error."""
    p = await svc.create_project(session, KARIM, NewProject(label="Café culturel Pixel", department="25"))
    assert (await svc.find_project(session, KARIM, " ".join(["cafe", "pixel"] * 6))).code == p.code
    with pytest.raises(NotFound):
        await svc.find_project(session, KARIM, " ".join(["cafe"] * 11 + ["zzzz"]))
    with pytest.raises(NotFound):
        await svc.find_project(session, KARIM, "x" * 80)
    with pytest.raises(Invalid) as exc:
        await svc.find_project(session, KARIM, "x" * 81)
    assert "(81 caractères ;" in exc.value.message

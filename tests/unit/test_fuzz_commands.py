"""The grammar-aware fuzz of the command lines (tests/fuzz_commands.py), sampled inside ``make test``:
every family and sub-command of the registry, arguments shuffled, truncated, repeated, replaced by huge
numbers, impossible dates, unicode, 10 kB lines, HTML and Markdown, typed by every role in every room
kind, with reactions, redactions, poll answers, files and the clock moving in between — through the real
dispatcher on SQLite with a frozen clock. Zero internal errors, every command answered in French.

``make fuzz`` runs the same fuzzer on 100,000 lines (bench/fuzz.py). A failure prints its seed and
line; ``ESS_FUZZ_SEED`` / ``ESS_FUZZ_LINES`` change the sample (``ESS_FUZZ_SEED=random``: a new seed,
printed).

Known failures in files their owners are still changing are listed in ``KNOWN`` below as exact
reproducers, each an ``xfail(strict=True)`` test: it turns into a failure the day it is fixed, so that
the entry is removed — never a silent skip (and in ``tests.fuzz_commands.KNOWN_FAILURES``, so that the
random runs report them apart). Both lists are empty today.

Each fix the fuzzer led to has its regression test here, named after the bad input.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import commands
from tests import fuzz_commands as fz
from tests.fuzz_commands import Fuzzer, Generator, Line, french_problems, grammar

SEED = os.environ.get("ESS_FUZZ_SEED", "20261120")
LINES = int(os.environ.get("ESS_FUZZ_LINES", "2500"))


def _seed() -> int:
    return random.SystemRandom().randrange(2**32) if SEED == "random" else int(SEED)


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def _fuzz(tmp_path, seed: int, lines: int, sanitiser=None) -> fz.Result:
    fuzzer = await Fuzzer(tmp_path, seed, sanitiser=sanitiser).start()
    try:
        return await fuzzer.run(lines)
    finally:
        await fuzzer.close()


async def _deliver(tmp_path, *lines: Line) -> list[tuple[list, list[fz.Failure]]]:
    fuzzer = await Fuzzer(tmp_path, 1).start()
    try:
        return [await fuzzer.run_line(line) for line in lines]
    finally:
        await fuzzer.close()


def message(body: str, sender: str = "@karim:test", role: str = "advisor", room: str = "!bge:test",
            kind: str = "partner", **fields) -> Line:
    return Line(0, body, sender, role, room, kind, **fields)


# -- the sample ------------------------------------------------------------------------------------------

def test_fuzzed_lines_get_french_answers_and_no_internal_error(tmp_path, sanitiser):
    seed = _seed()
    result = run(_fuzz(tmp_path, seed, LINES, sanitiser))
    print(result.summary())
    for failure in result.known:
        print("known:", failure.describe(seed))
    assert result.lines == LINES
    assert result.commands > 0.8 * LINES, result.summary()          # mostly commands, reaching the handlers
    assert not result.failures, result.summary() + "\n" + "\n".join(f.describe(seed) for f in result.failures[:20])


def test_the_grammar_covers_every_family_sub_command_and_alias():
    registry = commands.build_registry()
    families = {tuple(f.names): f for f in grammar(registry)}
    for cmd in registry.all():
        family = families[tuple(cmd.names())]
        assert family.subs == [s.names() for s in cmd.subcommands]
        assert family.argument_lists, cmd.name
    gen = Generator(7, registry)
    typed = " ".join(gen.body() for _ in range(3000))
    words = {w for b in typed.split("!") for w in b.split()[:2]}
    for cmd in registry.all():
        assert any(n in words for n in cmd.names()), cmd.name
        for sub in cmd.subcommands:
            assert any(n in words for n in sub.names()), (cmd.name, sub.name)


def test_every_role_and_room_kind_is_drawn():
    gen = Generator(3, commands.build_registry())
    lines = [gen.line() for _ in range(2000)]
    assert {line.role for line in lines} == {"advisor", "coordinator", "admin", "stranger"}
    assert {line.kind for line in lines} == {"direct", "partner", "coordination", "announcements", "other"}
    assert {line.event for line in lines} == {"message", "reaction", "redaction", "poll_response", "file", "tick"}
    bodies = [line.body for line in lines]
    assert any(len(b) >= 10_000 for b in bodies)
    assert any("<script>" in b for b in bodies) and any("](javascript:" in b for b in bodies)
    assert any(str(10**30) in b for b in bodies)
    assert any(d in b for b in bodies for d in ("31/02", "30/02/2027", "00/00/0000", "31/12/9999"))


def test_the_same_seed_gives_the_same_lines():
    registry = commands.build_registry()
    a, b = Generator(42, registry), Generator(42, registry)
    assert [a.line() for _ in range(300)] == [b.line() for _ in range(300)]


# -- the oracle can fail ---------------------------------------------------------------------------------

def test_the_oracle_sees_an_internal_error(tmp_path, monkeypatch):
    import commands.ping as ping

    async def broken(ctx, args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(ping.ping.__ess_command__, "handler", broken)
    [(outs, failures)] = run(_deliver(tmp_path, message("!ping")))
    assert [f.problem.split(":")[0] for f in failures] == ["internal error (ERROR log)"]
    assert "erreur interne" in outs[0].body


def test_the_oracle_sees_a_missing_reply_and_a_reply_to_a_non_command(tmp_path, monkeypatch):
    import commands.ping as ping

    async def silent(ctx, args):
        return None

    monkeypatch.setattr(ping.ping.__ess_command__, "handler", silent)
    [(_, silent_failures), (_, chat)] = run(_deliver(tmp_path, message("!ping"), message("bonjour")))
    assert [f.problem for f in silent_failures] == ["no reply in the room"]
    assert chat == []


@pytest.mark.parametrize("body, problem", [
    ("Traceback (most recent call last)", "English or Python words"),
    ("Le champ {name} est invalide.", "placeholder left"),
    ("Nothing here", "no French word"),
    ("", "empty reply"),
    ("Trop long : " + "é" * 40_000, "more than a Matrix event may carry"),
])
def test_the_oracle_refuses_replies_that_are_not_french(body, problem):
    from ess_bot.framework.messages import Outgoing

    problems = french_problems(Outgoing(room_id="!r", body=body), typed="!ping")
    assert any(problem in p for p in problems), problems
    assert not french_problems(Outgoing(room_id="!r", body="🏓 Pong ! Le bot répond."), typed="!ping")


def test_the_oracle_sees_what_postgresql_would_refuse(tmp_path):
    from datetime import timezone

    from ess_bot.storage.tools_events import RoomFile

    async def scenario():
        fuzzer = await Fuzzer(tmp_path, 1).start()
        try:
            async with fuzzer.harness.app.db.sessions.begin() as session:
                session.add(RoomFile(event_id="$x", room_id="!r:test", sender="@a:test", msgtype="m.file",
                                     url="mxc://" + "a" * 2000, name="a\x00b", size=2**40,
                                     ts=datetime.now(timezone.utc)))
            return fuzzer.columns.found
        finally:
            await fuzzer.close()

    found = run(scenario())
    assert any("room_files.url: 2006 characters in a VARCHAR(1000)" in f for f in found), found
    assert any("room_files.size" in f and "INTEGER" in f for f in found), found
    assert any("NUL character" in f for f in found), found


# -- hypothesis: any text at all in the arguments ----------------------------------------------------------

_REGISTRY = commands.build_registry()
_HEADS = sorted({f"!{c.name}" + (f" {s.name}" if s else "") for c in _REGISTRY.all()
                 for s in [None, *c.subcommands]})
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # no lone surrogate: not UTF-8


@pytest.fixture(scope="module")
def hypothesis_bot(tmp_path_factory):
    loop = asyncio.new_event_loop()
    fuzzer = loop.run_until_complete(Fuzzer(tmp_path_factory.mktemp("hyp"), 5).start())
    try:
        yield loop, fuzzer
    finally:
        loop.run_until_complete(fuzzer.close())
        loop.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(_HEADS), args=st.lists(st.one_of(_text, st.sampled_from(fz.WORDS + fz.DATES)),
                                                    max_size=6),
       who=st.sampled_from(fz.SENDERS), kind=st.sampled_from(list(fz.ROOMS)))
def test_any_text_after_any_command(hypothesis_bot, head, args, who, kind):
    loop, fuzzer = hypothesis_bot
    sender, role = who
    room = fz.ROOMS[kind][0].format(user=sender[1:].split(":")[0])
    body = " ".join([head, *args])
    _, failures = loop.run_until_complete(fuzzer.run_line(Line(0, body, sender, role, room, kind)))
    assert not failures, "\n".join(f.describe(5) for f in failures)


# -- regressions: what the fuzzer found, fixed ---------------------------------------------------------------

def test_a_file_announcing_a_size_of_2_to_the_63_is_remembered_without_an_internal_error(tmp_path):
    """info.size = 2**63 (and a 1,100-character mxc:// address) in a posted file: SQLite's OverflowError,
    PostgreSQL's int4 and VARCHAR(1000) — the size is now unknown, the address not kept."""
    huge = message("Grille ESUS.pdf", event="file", content={
        "msgtype": "m.file", "filename": "Grille ESUS.pdf", "url": "mxc://test/abc",
        "info": {"size": 2**63, "mimetype": "application/pdf"}})
    long_url = message("trame.docx", event="file", content={
        "msgtype": "m.file", "body": "trame.docx", "url": "mxc://test/" + "z" * 1100, "info": {"size": 3 * 2**31}})
    answers = run(_deliver(tmp_path, huge, long_url))
    assert [failures for _, failures in answers] == [[], []]


def test_file_sizes_the_database_cannot_hold_become_unknown():
    from ess_bot.services.tools import file_ref_from_content

    def size(value):
        return file_ref_from_content({"msgtype": "m.file", "url": "mxc://t/a", "info": {"size": value}}).size

    assert [size(v) for v in (0, 1234, 2**31 - 1, 2**31, 2**63, -1, True, "12")] == \
        [0, 1234, 2**31 - 1, None, None, None, None, None]
    assert file_ref_from_content({"msgtype": "m.file", "url": "mxc://t/" + "a" * 1000}) is None


# -- known failures in files being changed by others (remove an entry when it passes) ---------------------------

KNOWN: list[tuple[str, str, str, str, str]] = [
    # (why, sender, room, room kind, line)
]


@pytest.mark.parametrize("why, sender, room, kind, body", KNOWN or [pytest.param(*[""] * 5, marks=pytest.mark.skip(
    reason="no known failure left"))])
@pytest.mark.xfail(strict=True, reason="known failure in a file its owner is still changing: see the entry")
def test_known_failures(tmp_path, why, sender, room, kind, body):
    role = dict(fz.SENDERS).get(sender, "stranger")
    [(_, failures)] = run(_deliver(tmp_path, message(body, sender, role, room, kind)))
    assert not failures, why + "\n" + "\n".join(f.describe(1) for f in failures)



def test_a_second_registry_in_the_same_process_does_not_repeat_the_sub_commands():
    """Every App builds a registry from the same declarations: the sub-commands were appended to the
    shared declaration, so the second bot of a process listed each sub-command twice in !aide (and the
    hundredth, a hundred times)."""
    from ess_bot.framework.command import help_text

    first, second = commands.build_registry(), commands.build_registry()
    for registry in (first, second):
        for cmd in registry.all():
            names = [s.name for s in cmd.subcommands]
            assert len(names) == len(set(names)), (cmd.name, names)
    text = help_text(second.get("evenement"), "advisor", "!")
    assert text.count("`!evenement voir <n°>`") == 1


@pytest.mark.parametrize("name", ["x" * 70_000, "🙂" * 20_000])
def test_aide_with_a_command_name_of_tens_of_thousands_of_characters_answers_in_a_short_message(tmp_path, name):
    """``!aides xxxx…`` (70,000 characters): the unknown name was echoed whole, twice (body and HTML), a
    140 kB reply no homeserver accepts. It is cut now."""
    [(outs, failures)] = run(_deliver(tmp_path, message(f"!aides {name}")))
    assert failures == []
    [reply] = outs
    assert reply.body.startswith("Je ne connais pas la commande !" + name[:20]) and "…" in reply.body
    assert len(reply.body) < 400


def test_a_file_named_with_a_nul_character_is_remembered_under_a_clean_name(tmp_path):
    """A file whose name is ``x\\x00y`` (and whose type has a NUL): PostgreSQL refuses a NUL in a text."""
    from ess_bot.services.tools import file_ref_from_content

    ref = file_ref_from_content({"msgtype": "m.file", "body": "x\x00y", "url": "mxc://t/a",
                                 "info": {"mimetype": "application/pdf\x00"}})
    assert (ref.name, ref.mimetype) == ("x y", "application/pdf")
    assert file_ref_from_content({"msgtype": "m.file", "body": "\x00\x07", "url": "mxc://t/a"}).name == "fichier"
    nul = message("x\x00y", event="file", content={"msgtype": "m.file", "body": "x\x00y", "url": "mxc://test/abc"})
    [(_, failures)] = run(_deliver(tmp_path, nul))
    assert failures == []


def test_a_typed_word_ending_with_a_backslash_before_the_bots_full_stop_is_not_a_markdown_leftover(sanitiser):
    """``!projet ab\\`` → « … : `!projet voir ab\\`. », ``!aides \\`` → « … commande `!\\`. »: the plain
    body shows ``ab\\.``, the typed backslash and the bot's full stop — not a Markdown escape left behind
    (the sanitiser check said it was)."""
    from ess_bot.formatting import md_escape
    from ess_bot.framework.messages import Outgoing, render_markdown
    from tests.sanitiser import SanitiserCheck

    sanitiser.saw_input("!projet ab\\")
    sanitiser.saw_input("!aides\n\\")
    for markdown in ("Pour consulter un projet : `!projet voir ab\\`.", "Je ne connais pas la commande `!\\`."):
        body, html = render_markdown(markdown)
        Outgoing(room_id="!r", body=body, html=html).to_payload()
    assert sanitiser.findings == []
    fresh = SanitiserCheck()  # nobody typed a backslash: an escape in the plain body is a leftover
    fresh.saw_input("!projet voir a*b")
    fresh.check(Outgoing(room_id="!r", body="Projet " + md_escape("a*b") + ".", html="<p>Projet a*b.</p>"))
    assert len(fresh.findings) == 1


def test_an_unknown_command_of_30_kb_is_named_cut_in_a_short_reply(tmp_path):
    """``!xxxx…`` (30,000 characters): « Commande inconnue » echoed the name whole in the body and the HTML,
    a 60 kB+ reply beyond a Matrix event (the dispatcher's, cut now like every echoed value)."""
    for name, (outs, failures) in zip("xé", run(_deliver(tmp_path, message("!" + "x" * 30_000),
                                                       message("!" + "é" * 20_000)))):
        assert failures == []
        [reply] = outs
        assert reply.body.startswith("Commande inconnue : !" + name * 5) and "…" in reply.body
        assert len(reply.body) < 400


def test_a_follow_up_line_of_5000_words_is_read_at_its_ends_only():
    """``!suivi P-7K3Q accueil 1h 1 1 1 …`` (a 10 kB line, 5,000 words): every word was tried as a date,
    a duration and a phase — 0.9 s of the bot's only thread for one message. The middle of such a line is
    part of a label already too long: only its first and last 40 words are read one by one."""
    from ess_bot.parsing import RECORD_SCAN_MAX, DateParser, parse_record_line
    from ess_bot.text import tokenize_quoted
    from tests.support import PARIS

    class Counting(DateParser):
        calls = 0

        def match_reading(self, *args, **kwargs):
            Counting.calls += 1
            return super().match_reading(*args, **kwargs)

    now = datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)
    text = "P-7K3Q accueil " + " ".join(["1"] * 5000) + ' 1h hier "note"'
    line = parse_record_line(tokenize_quoted(text), now, Counting(PARIS), example="!suivi P-7K3Q accueil 1h")
    assert Counting.calls <= 2 * RECORD_SCAN_MAX
    assert (line.project_code, line.phase, line.duration, line.quoted) == ("P-7K3Q", "accueil", 60, ["note"])
    assert line.date is not None and len(line.project_words) == 5000


def test_a_backslash_then_a_zero_width_space_is_shown_as_typed(tmp_path, sanitiser):
    """``!projet 2h p \\\\\\u200b``: the dispatcher reads ``p \\\\``, the reply shows ``…voir 2h p \\\\.`` —
    what was typed, not a Markdown escape left behind (the sanitiser check compares with the text as the
    dispatcher reads it now)."""
    async def scenario():
        fuzzer = await Fuzzer(tmp_path, 1, sanitiser=sanitiser).start()
        try:
            return [await fuzzer.run_line(message("!projet 2h p " + tail)) for tail in ("\\\u200b", '\\""', "\\\x00")]
        finally:
            await fuzzer.close()

    for outs, failures in run(scenario()):
        assert failures == [] and "!projet voir 2h p \\." in outs[0].body

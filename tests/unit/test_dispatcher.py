"""The command framework through the dispatcher, on a real SQLite database."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from ess_bot.framework.command import Command
from ess_bot.framework.context import UserError
from ess_bot.storage.models import OutboxMessage, ProcessedEvent
from tests.support import PARIS, Harness

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)


@pytest.fixture
async def h(tmp_path):
    harness = await Harness(f"sqlite+aiosqlite:///{tmp_path}/t.db", NOW).start()
    yield harness
    await harness.close()


async def test_aide_lists_commands_by_role_and_replies_as_notice(h):
    [reply] = await h.say("!aide", event_id="$cmd1")
    assert reply.kind == "notice"
    assert reply.reply_to == "$cmd1" and reply.room_id == "!bge:test"
    assert "!ping" in reply.body and "Général" in reply.body
    assert "<strong>Général</strong>" in reply.html
    assert "conseiller" in reply.body  # the role is named


async def test_aide_for_one_command_gives_syntax_and_examples(h):
    [reply] = await h.say("!aide ping")
    assert "Syntaxe : !ping" in reply.body and "Exemples" in reply.body
    [reply] = await h.say("!aide pnig")
    assert "Vouliez-vous dire !aide ping" in reply.body


async def test_names_are_case_and_accent_insensitive(h):
    [reply] = await h.say("!PING")
    assert reply.body.startswith("🏓 Pong ! ess-bot")
    [reply] = await h.say("!Aïde")
    assert "commandes" in reply.body


async def test_unknown_command_suggests(h):
    [reply] = await h.say("!pign")
    assert "Commande inconnue : !pign" in reply.body and "Vouliez-vous dire !ping ?" in reply.body


async def test_stranger_gets_polite_refusal_naming_whom_to_ask(h):
    [reply] = await h.say("!aide", sender="@inconnu:test")
    assert "membres du réseau" in reply.body
    assert "@admin:test" in reply.body


async def test_role_refusal_names_the_reason(h):
    async def secret(ctx, args):
        ctx.reply("ok")
    h.app.registry.add(Command(name="secret", handler=secret, group="Test", summary="s", usage="!secret",
                               role="coordinator"))
    [reply] = await h.say("!secret", sender="@karim:test")
    assert "réservé aux coordinateur" in reply.body and "votre rôle : conseiller" in reply.body
    [reply] = await h.say("!secret", sender="@claire:test")
    assert reply.body == "ok"


async def test_room_restriction(h):
    async def log(ctx, args):
        ctx.reply("noté")
    h.app.registry.add(Command(name="noter", handler=log, group="Test", summary="s", usage="!noter",
                               where=("direct", "partner", "coordination")))
    [reply] = await h.say("!noter", room="!annonces:test")
    assert "n'est pas disponible dans un salon d'annonces" in reply.body
    [reply] = await h.say("!noter", room="!bge:test")
    assert reply.body == "noté"


async def test_same_event_twice_is_handled_once(h):
    first = await h.say("!ping", event_id="$dup")
    second = await h.say("!ping", event_id="$dup")
    assert len(first) == 1 and second == []
    async with h.app.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedEvent)) == 1


async def test_internal_error_gives_reference_and_rolls_back_effects(h, caplog):
    async def boom(ctx, args):
        ctx.session.add(OutboxMessage(room_id="!x", payload={}, created_at=ctx.clock.now(), attempts=0))
        ctx.reply("jamais envoyé")
        raise RuntimeError("kaboom")
    h.app.registry.add(Command(name="boom", handler=boom, group="Test", summary="s", usage="!boom"))
    [reply] = await h.say("!boom", event_id="$boom")
    assert "erreur interne" in reply.body and "référence" in reply.body
    assert "Traceback" not in reply.body and "kaboom" not in reply.body
    assert "kaboom" in caplog.text  # the traceback is in the logs
    async with h.app.db.sessions() as s:
        rows = (await s.scalars(select(OutboxMessage.room_id))).all()
    assert rows == ["!bge:test"]  # only the error reply, not the handler's partial effect
    assert await h.say("!boom", event_id="$boom") == []  # recorded: not retried forever


async def test_user_error_discards_partial_effects(h):
    async def half(ctx, args):
        ctx.reply("partiel")
        raise UserError("Valeur refusée : `x`. Exemple : `!half y`")
    h.app.registry.add(Command(name="half", handler=half, group="Test", summary="s", usage="!half"))
    [reply] = await h.say("!half")
    assert reply.body == "Valeur refusée : x. Exemple : !half y"


async def test_reply_stays_in_thread(h):
    [reply] = await h.say("!ping", event_id="$in-thread", thread_root="$root")
    assert reply.thread_root == "$root" and reply.reply_to == "$in-thread"


async def test_notices_plain_messages_and_unclosed_quotes(h):
    from ess_bot.transports.matrix import to_incoming
    from nio.events import Event

    notice = Event.parse_event({"type": "m.room.message", "event_id": "$n", "sender": "@karim:test",
                                "origin_server_ts": 1, "content": {"msgtype": "m.notice", "body": "!ping"}})
    assert to_incoming(notice, "!bge:test", False) is None  # a notice never reaches the dispatcher
    assert await h.say("bonjour à tous") == []
    [reply] = await h.say('!aide "ping')
    assert "guillemet fermant" in reply.body and "Exemple" in reply.body


async def test_ping_uptime_follows_the_clock(h):
    h.clock.advance(timedelta(hours=2, minutes=5))
    [reply] = await h.say("!ping")
    assert "en service depuis 2 h 05" in reply.body


async def test_a_database_constraint_error_in_a_handler_is_not_silently_dropped(h):
    from sqlalchemy import insert
    from ess_bot.storage.models import BotState

    async def clash(ctx, args):
        await ctx.session.execute(insert(BotState).values(key="k", value="1"))
        await ctx.session.execute(insert(BotState).values(key="k", value="2"))
    h.app.registry.add(Command(name="clash", handler=clash, group="Test", summary="s", usage="!clash"))
    [reply] = await h.say("!clash")
    assert "erreur interne" in reply.body


async def test_a_redaction_undoes_only_from_the_same_room_and_by_the_author_or_a_coordinator(h):
    undone = []

    async def on_redaction(ctx):
        undone.append((ctx.event.sender, ctx.event.relates_to))
    h.app.registry.on("redaction", on_redaction)
    await h.say("!ping", sender="@karim:test", room="!bge:test", event_id="$cmd")
    await h.event(kind="redaction", room_id="!urscop:test", sender="@karim:test", relates_to="$cmd")
    await h.event(kind="redaction", room_id="!bge:test", sender="@marc:test", relates_to="$cmd")
    assert undone == []  # another room; another advisor
    await h.event(kind="redaction", room_id="!bge:test", sender="@claire:test", relates_to="$cmd")
    await h.event(kind="redaction", room_id="!bge:test", sender="@karim:test", relates_to="$cmd")
    assert undone == [("@claire:test", "$cmd"), ("@karim:test", "$cmd")]


async def test_unclosed_quote_example_comes_from_the_command_used(h):
    from ess_bot.framework.command import Subcommand

    async def noop(ctx, args):
        ctx.reply("ok")
    cmd = Command(name="noter", handler=noop, group="Test", summary="s", usage="!noter",
                  examples=("!noter 1h", '!noter "Café Pixel" 1h'))
    h.app.registry.add(cmd)
    [reply] = await h.say('!noter "Café Pixel 1h')
    assert "guillemet fermant" in reply.body and '!noter "Café Pixel" 1h' in reply.body

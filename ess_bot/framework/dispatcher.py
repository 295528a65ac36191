"""From an incoming event to committed effects and queued replies — exactly once.

Every handled event is recorded in ``processed_events`` in the same transaction as the effect of the
command and the replies it queued in the outbox. A redelivered event (restart, gap paged back twice)
finds its record and is skipped; a crash before the commit leaves nothing, so the event is handled
again on the next delivery.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError

from ess_bot.config import ROLE_LABELS, ROLE_LABELS_PLURAL, Config, role_allows
from ess_bot.clock import Clock
from ess_bot.formatting import md_code, md_escape
from ess_bot.framework.command import Command, Registry, help_text, with_prefix
from ess_bot.framework.context import Context, Runtime, UserError
from ess_bot.framework.messages import Incoming, Outgoing, render_markdown
from ess_bot.framework.outbox import OutboxSignal
from ess_bot.storage.db import Database, is_unavailable
from ess_bot.storage.models import OutboxMessage, ProcessedEvent
from ess_bot.text import Token, TokenizeError, normalize, shorten, tokenize_quoted

log = logging.getLogger(__name__)

ROOM_KIND_LABELS = {
    "direct": "en message direct",
    "coordination": "dans le salon de coordination",
    "partner": "dans le salon d'un partenaire",
    "announcements": "dans un salon d'annonces",
    "other": "dans ce salon",
}


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    args: list[str]
    raw_args: str
    tokens: tuple[Token, ...] = ()  # the args with their quoting
    unclosed_quote: bool = False


def parse_command(body: str, prefix: str) -> ParsedCommand | None:
    """``"!Réunion  etat 3"`` → ParsedCommand("Réunion", ["etat", "3"]). None if not a command.

    A quote left open gives ``unclosed_quote=True`` (and no arguments).
    """
    text = normalize(body)
    if text.startswith(">"):  # an old-style reply: the quoted original comes first, then a blank line
        text = "\n".join(line for line in text.splitlines() if not line.startswith(">")).strip()
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix):]
    if not rest or not rest[0].isalpha():
        return None
    parts = rest.split(None, 1)
    name = parts[0]
    raw_args = parts[1] if len(parts) > 1 else ""
    try:
        tokens = tokenize_quoted(raw_args)
    except TokenizeError:
        return ParsedCommand(name=name, args=[], raw_args=raw_args, unclosed_quote=True)
    return ParsedCommand(name=name, args=[t.text for t in tokens], raw_args=raw_args, tokens=tuple(tokens))


class Dispatcher:
    def __init__(self, config: Config, clock: Clock, db: Database, registry: Registry, runtime: Runtime):
        self.config = config
        self.clock = clock
        self.db = db
        self.registry = registry
        self.runtime = runtime
        self.outbox_ready = OutboxSignal()
        self.on_jobs_changed: Callable[[], Awaitable[None]] | None = None
        self.watch = None  # a DatabaseWatch (ess_bot.framework.degraded): the degraded mode, when wired

    def room_kind(self, event: Incoming) -> str:
        rooms = self.config.rooms
        if event.room_id == rooms.coordination:
            return "coordination"
        if event.room_id in rooms.announcements:
            return "announcements"
        if self.config.partner_by_room(event.room_id):
            return "partner"
        if event.is_direct:
            return "direct"
        return "other"

    async def handle(self, event: Incoming) -> bool:
        """Handle one event; True if it was new and did something."""
        if self.runtime.user_id and event.sender == self.runtime.user_id:
            return False
        if self.watch is not None and event.event_id in self.watch.answered:
            return False  # answered during a database outage, not recorded yet
        if event.kind == "message":
            parsed = parse_command(event.body, self.config.bot.command_prefix)
            if parsed is None:
                return False
            return await self._run(event, parsed.name, self._command_runner(parsed))
        handlers = self.registry.event_handlers.get(event.kind, [])
        if not handlers:
            return False
        try:
            allowed = event.kind != "redaction" or await self._redaction_allowed(event)
        except Exception as exc:
            if self.watch is None or not is_unavailable(exc):
                raise
            self.watch.failed(exc, "events")
            self.watch.keep_for_later(event)
            return False
        if not allowed:
            log.info("ignoring redaction %s of %s by %s", event.event_id, event.relates_to, event.sender)
            return False

        async def run_handlers(ctx: Context) -> None:
            for handler in handlers:
                await handler(ctx)

        return await self._run(event, event.kind, run_handlers)

    async def replay_waiting(self) -> None:
        """After a database outage: the reactions, redactions and poll answers that waited, in order."""
        waiting = self.watch.replay if self.watch is not None else None
        while waiting and not self.watch.degraded:
            event = waiting.popleft()
            await self.handle(event)
            if self.watch.degraded and event in waiting:  # failed again: back to the front, in order
                waiting.remove(event)
                waiting.appendleft(event)

    async def _redaction_allowed(self, event: Incoming) -> bool:
        """A redaction undoes what the redacted event did only when it comes from the same room and from
        the event's own sender or a coordinator (a redaction naming an event of another room, or someone
        else's event, must not cancel anything)."""
        async with self.db.sessions() as session:
            target = await session.get(ProcessedEvent, event.relates_to) if event.relates_to else None
        if target is None:
            return True  # not something we acted on: handlers will find nothing to undo
        if target.room_id != event.room_id:
            return False
        member = self.config.member(event.sender)
        return target.sender == event.sender or (member is not None and role_allows(member.role, "coordinator"))

    async def _run(self, event: Incoming, label: str | None, body) -> bool:
        if self.watch is not None and self.watch.degraded:
            return await self._degraded(event, label, body)
        try:
            return await self._attempt(event, label, body)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            first = exc
        try:  # once more at once: a connection lost in a server restart is replaced by the pool
            return await self._attempt(event, label, body)
        except Exception as exc:
            if self.watch is None or not is_unavailable(exc):
                log.error("database unavailable while handling %s: %s", event.event_id, first)
                raise
            self.watch.failed(exc, "commands")
        return await self._degraded(event, label, body)

    async def _attempt(self, event: Incoming, label: str | None, body) -> bool:
        """The normal path: effect, processed-event record and replies in one transaction. A database
        that is unavailable raises (see :meth:`_run`); anything else is answered here."""
        try:
            async with self.db.sessions.begin() as session:
                if await session.get(ProcessedEvent, event.event_id) is not None:
                    return False
                ctx = self._context(event, session)
                try:
                    await body(ctx)
                except UserError as exc:
                    raise _Refused(exc.message) from None
                rows = self._record(session, event, label, ctx.outgoing)
        except _Refused as refused:
            return await self._record_only(event, label, lambda ctx: ctx.reply(refused.message))
        except IntegrityError:
            if await self._already_processed(event.event_id):
                log.info("event %s was handled concurrently; skipped", event.event_id)
                return False
            return await self._internal_error(event, label)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            return await self._internal_error(event, label)
        self.outbox_ready.offer(rows)
        if ctx.jobs_changed and self.on_jobs_changed is not None:
            try:
                await self.on_jobs_changed()
            except Exception:  # the jobs are committed: the scheduler's next run finds them
                log.exception("could not re-arm the scheduler after %s", event.event_id)
        return True

    # -- degraded mode (the database refuses writes) ---------------------------------------------
    async def _degraded(self, event: Incoming, label: str | None, body) -> bool:
        """Answer without recording: a read-only command gets its answer, one that needs a write gets
        a French reply saying nothing was recorded. Sent from memory (the outbox is a table)."""
        watch = self.watch
        if event.kind != "message":
            watch.keep_for_later(event)  # a reaction or a redaction cannot be answered: it waits
            return False
        outcome, outgoing = await self._read_only(event, body)
        if outcome == "write":
            outgoing = [self._notice(event, "⚠️ Je ne peux pas enregistrer cette demande pour l'instant : la base de "
                                            "données du bot est indisponible. **Rien n'a été enregistré.** Merci de "
                                            "renvoyer la même commande dans quelques minutes ; la coordination est "
                                            "prévenue.")]
        elif outcome == "unreachable":
            outgoing = [self._notice(event, "⚠️ Je ne peux pas traiter cette demande pour l'instant : la base de "
                                            "données du bot est injoignable. Rien n'a été enregistré. Merci de la "
                                            "renvoyer dans quelques minutes ; la coordination est prévenue.")]
        elif outcome.startswith("E-"):
            outgoing = [self._notice(event, self._internal_error_text(outcome))]
        self.outbox_ready.offer_volatile(outgoing, key=event.event_id)
        watch.remember(event, label)
        return True

    async def _read_only(self, event: Incoming, body) -> tuple[str, list[Outgoing]]:
        """Run the command in a transaction that is always rolled back, watching for writes. Returns
        ("answered", replies), ("refused", the refusal), ("write", []), ("unreachable", []) or
        (an internal error reference, [])."""
        if not self.watch.reads_ok:
            return "unreachable", []
        wrote = False

        def on_execute(state) -> None:
            nonlocal wrote
            if not state.is_select:
                wrote = True

        def on_flush(session, _context, _instances) -> None:
            nonlocal wrote
            if session.new or session.dirty or session.deleted:
                wrote = True

        try:
            async with self.db.sessions() as session:
                sa_event.listen(session.sync_session, "do_orm_execute", on_execute)
                sa_event.listen(session.sync_session, "before_flush", on_flush)
                ctx = self._context(event, session)
                try:
                    await body(ctx)
                except UserError as exc:
                    ctx.outgoing.clear()
                    ctx.reply(exc.message)
                    return "refused", ctx.outgoing
                finally:
                    try:
                        await session.rollback()
                    except Exception:
                        pass
                if wrote or ctx.jobs_changed or session.new or session.dirty or session.deleted:
                    return "write", []
                return "answered", ctx.outgoing
        except Exception as exc:
            if wrote:
                return "write", []
            if is_unavailable(exc):
                return "unreachable", []
            reference = self._reference()
            log.exception("internal error %s while handling %s in %s (degraded mode)", reference, event.event_id,
                          event.room_id)
            return reference, []

    @staticmethod
    def _notice(event: Incoming, markdown: str) -> Outgoing:
        body, html = render_markdown(markdown)
        return Outgoing(room_id=event.room_id, kind="notice", body=body, html=html, reply_to=event.event_id,
                        thread_root=event.thread_root)

    async def _already_processed(self, event_id: str) -> bool:
        async with self.db.sessions() as session:
            return await session.get(ProcessedEvent, event_id) is not None

    @staticmethod
    def _reference() -> str:
        return "E-" + secrets.token_hex(3).upper()

    @staticmethod
    def _internal_error_text(reference: str) -> str:
        return (f"😕 Désolé, une erreur interne m'empêche de traiter cette demande (référence **{reference}**). "
                "Rien n'a été enregistré. Vous pouvez réessayer dans un moment ; si cela persiste, "
                "transmettez cette référence à l'administrateur du bot.")

    async def _internal_error(self, event: Incoming, label: str | None) -> bool:
        reference = self._reference()
        log.exception("internal error %s while handling %s in %s", reference, event.event_id, event.room_id)
        if event.kind != "message":
            return await self._record_only(event, label, lambda ctx: None)
        return await self._record_only(event, label, lambda ctx: ctx.reply(self._internal_error_text(reference)))

    async def _record_only(self, event: Incoming, label: str | None, make_reply) -> bool:
        try:
            async with self.db.sessions.begin() as session:
                if await session.get(ProcessedEvent, event.event_id) is not None:
                    return False
                ctx = self._context(event, session)
                make_reply(ctx)
                rows = self._record(session, event, label, ctx.outgoing)
        except IntegrityError:
            return False
        self.outbox_ready.offer(rows)
        return True

    def _context(self, event: Incoming, session) -> Context:
        return Context(event=event, member=self.config.member(event.sender), room_kind=self.room_kind(event),
                       config=self.config, clock=self.clock, session=session, registry=self.registry,
                       runtime=self.runtime)

    def _record(self, session, event: Incoming, label: str | None, outgoing: list[Outgoing]) -> list[OutboxMessage]:
        """The event as processed and its messages in the outbox, in the command's transaction."""
        now = self.clock.now()
        session.add(ProcessedEvent(event_id=event.event_id, room_id=event.room_id, sender=event.sender,
                                   command=(label or "")[:64] or None, processed_at=now))
        rows = [OutboxMessage(room_id=out.room_id, payload=out.to_payload(), data=out.data, tag=out.tag,
                              source_event_id=event.event_id, created_at=now, attempts=0) for out in outgoing]
        session.add_all(rows)
        return rows

    # -- command routing ---------------------------------------------------------------------
    def _command_runner(self, parsed: ParsedCommand):
        async def run(ctx: Context) -> None:
            await self.route(ctx, parsed)
        return run

    async def route(self, ctx: Context, parsed: ParsedCommand) -> None:
        p = ctx.prefix
        if ctx.member is None:
            raise UserError(self._stranger_message())
        cmd = self.registry.get(parsed.name)
        if parsed.unclosed_quote:
            quoted = [e for e in (cmd.examples + tuple(x for s in cmd.subcommands for x in s.examples))
                      if '"' in e] if cmd else []
            example = with_prefix(p, quoted[0]) if quoted else f'{p}projet nouveau "Café culturel Pixel" dep=25'
            raise UserError("Il manque un guillemet fermant dans votre commande : chaque texte entre guillemets "
                            f"doit être fermé. Exemple : `{example}`")
        if cmd is None:
            suggestion = self.registry.suggest(parsed.name, ctx.role)
            hint = f" Vouliez-vous dire `{p}{suggestion}` ?" if suggestion else ""
            raise UserError(f"Commande inconnue : {md_code(shorten(p + parsed.name, 60))}.{hint} "
                            f"Tapez `{p}aide` pour la liste des commandes.")
        ctx.command = cmd
        if ctx.room_kind not in cmd.where:
            raise UserError(f"La commande `{p}{cmd.name}` n'est pas disponible "
                            f"{ROOM_KIND_LABELS[ctx.room_kind]}. Utilisez-la {self._where_text(cmd)}.")
        args = list(parsed.args)
        # a quoted first word is a value ("liste" as a label), never a subcommand
        sub = cmd.find_sub(args[0]) if args and not parsed.tokens[0].quoted else None
        ctx.tokens = list(parsed.tokens[1:] if sub else parsed.tokens)
        required = sub.role if sub else cmd.role
        if not role_allows(ctx.role, required):
            what = f"`{p}{cmd.name} {sub.name}`" if sub else f"`{p}{cmd.name}`"
            raise UserError(f"Désolé, {what} est réservé aux {ROLE_LABELS_PLURAL[required]} et plus "
                            f"(votre rôle : {ROLE_LABELS[ctx.role]}). Demandez à un·e coordinateur·rice du réseau.")
        if sub is not None:
            await sub.handler(ctx, args[1:])
        elif cmd.handler is not None:
            await cmd.handler(ctx, args)
        else:
            raise UserError(help_text(cmd, ctx.role, p))

    def _where_text(self, cmd: Command) -> str:
        labels = [ROOM_KIND_LABELS[k] for k in cmd.where if k != "other"]
        return ", ".join(labels[:-1]) + (" ou " if len(labels) > 1 else "") + labels[-1] if labels else "ailleurs"

    def _stranger_message(self) -> str:
        contacts = self.config.contacts_for_access()
        if self.config.bot.admin_contact:
            whom = md_escape(self.config.bot.admin_contact)
        elif contacts:
            whom = ", ".join(f"{md_escape(m.display)} ({md_escape(m.user_id)})" for m in contacts)
        else:
            whom = "l'administrateur du bot"
        return ("Bonjour ! Je suis l'assistant du réseau ESS de Bourgogne-Franche-Comté. Je ne vous trouve pas "
                "parmi les membres du réseau, je ne peux donc pas traiter votre demande. "
                f"Pour être ajouté·e, adressez-vous à : {whom}.")


class _Refused(Exception):
    def __init__(self, message: str):
        self.message = message

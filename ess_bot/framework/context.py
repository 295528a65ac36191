"""What a command handler gets: who asked, where, the clock, a DB session, and ways to answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.config import Config, Member
from ess_bot.clock import Clock
from ess_bot.framework.messages import Incoming, Outgoing, render_markdown
from ess_bot.text import Token

if TYPE_CHECKING:
    from ess_bot.framework.command import Command, Registry


class UserError(Exception):
    """A problem with what the user typed. The message (French, Markdown) is sent back as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Runtime:
    """Process-wide facts handed to handlers (not mutable state: set once at start)."""

    version: str
    started_monotonic: float
    transport: str  # the transport's name: "matrix", "console", "memory"…
    services: Any = None
    user_id: str = ""  # the bot's own id on the transport (set once connected): its own events are ignored


class Queue:
    """Collects the messages a handler wants sent; they go to the outbox in the handler's transaction."""

    outgoing: list[Outgoing]

    def announce(self, room_id: str, markdown: str, *, mentions: list[str] | None = None,
                 tag: str | None = None, html: str | None = None) -> Outgoing:
        """An m.text that notifies (announcements, reminders), with explicit mentions; paced as a broadcast."""
        body, rendered = render_markdown(markdown)
        out = Outgoing(room_id=room_id, kind="text", body=body, html=html or rendered,
                       mentions=list(mentions or []), tag=tag, paced=True)
        self.outgoing.append(out)
        return out

    def announce_file(self, room_id: str, filename: str, data: bytes, mimetype: str, *,
                      reply_to: str | None = None) -> Outgoing:
        """A file that goes with an announcement (an ICS, say); paced as a broadcast."""
        out = Outgoing(room_id=room_id, kind="file", body=filename, filename=filename, data=data, mimetype=mimetype,
                       reply_to=reply_to, paced=True)
        self.outgoing.append(out)
        return out

    def send(self, out: Outgoing) -> Outgoing:
        self.outgoing.append(out)
        return out


@dataclass
class Context(Queue):
    event: Incoming
    member: Member | None
    room_kind: str
    config: Config
    clock: Clock
    session: AsyncSession
    registry: "Registry"
    runtime: Runtime
    command: "Command | None" = None
    outgoing: list[Outgoing] = field(default_factory=list)
    jobs_changed: bool = False
    tokens: list[Token] = field(default_factory=list)  # the handler's args with their quoting

    def schedule(self, kind: str, run_at: datetime, payload: dict | None = None, key: str | None = None):
        """Add a scheduled job in this command's transaction."""
        from ess_bot.scheduler import schedule
        self.jobs_changed = True
        return schedule(self.session, kind, run_at, payload, key, now=self.clock.now())

    @property
    def prefix(self) -> str:
        return self.config.bot.command_prefix

    @property
    def services(self) -> Any:
        return self.runtime.services

    @property
    def role(self) -> str | None:
        return self.member.role if self.member else None

    # -- answering ---------------------------------------------------------------------------
    def _relation(self) -> dict[str, str | None]:
        return {"reply_to": self.event.event_id, "thread_root": self.event.thread_root}

    def reply(self, markdown: str, *, mentions: list[str] | None = None, html: str | None = None) -> Outgoing:
        """An m.notice answering the command (in its thread if it came from one)."""
        body, rendered = render_markdown(markdown)
        out = Outgoing(room_id=self.event.room_id, kind="notice", body=body, html=html or rendered,
                       mentions=list(mentions or []), **self._relation())
        self.outgoing.append(out)
        return out

    def reply_file(self, filename: str, data: bytes, mimetype: str, *, image: bool = False) -> Outgoing:
        out = Outgoing(room_id=self.event.room_id, kind="image" if image else "file", body=filename,
                       filename=filename, data=data, mimetype=mimetype, **self._relation())
        self.outgoing.append(out)
        return out

    def react(self, key: str) -> Outgoing:
        out = Outgoing(room_id=self.event.room_id, kind="reaction", reacts_to=self.event.event_id, key=key)
        self.outgoing.append(out)
        return out

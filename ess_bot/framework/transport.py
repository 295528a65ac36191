"""What a transport is to the bot: it connects, hands over what arrives in batches of ``Incoming``,
sends one ``Outgoing`` at a time and says what it supports. Everything a chat network is made of
(Matrix events, msgtypes, relations, polls) stays inside its adapter; the start order (database,
application, first batch, outbox sender, scheduler, HTTP feed) is the runner's (``ess_bot.runner``).

A new transport is one module implementing :class:`Transport`, and one line in the command line.
``ess_bot.transports.memory`` is the smallest one (the unit tests drive the bot through it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, Protocol

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.framework.messages import Incoming, Outgoing

if TYPE_CHECKING:
    from ess_bot.app import App


@dataclass(frozen=True)
class Capabilities:
    """What the chat network offers; commands may adapt to it (``ctx.capabilities``)."""

    threads: bool = False      # replies can go in the thread of the command
    reactions: bool = False    # the bot can react, and receives people's reactions
    polls: bool = False        # native polls (kind="poll" / "poll_end" outgoing messages)
    edits: bool = False        # messages can be edited (kind="edit")
    redactions: bool = False   # messages can be deleted (kind="redaction")
    files: bool = True         # files can be sent; received ones come with an opaque reference
    html: bool = True          # formatted bodies are shown


async def _nothing() -> None:
    return None


@dataclass
class Batch:
    """Events that arrived together — a Matrix sync round, a line typed in the terminal.

    The runner handles them in order, then calls :attr:`done` (the transport may then remember how
    far it got); if handling failed unexpectedly it calls :attr:`failed` instead, and the transport
    gives the same events again (their processed-event records keep any handled one from being
    applied twice)."""

    events: list[Incoming] = field(default_factory=list)
    first: bool = False          # the first batch after connecting
    settle: bool | None = None   # wait for the replies before the next batch (None: only after a quiet one)
    done: Callable[[], Awaitable[None]] = _nothing
    failed: Callable[[], Awaitable[None]] = _nothing


@dataclass
class StartContext:
    """What a transport gets while it connects, before the application is loaded (the runner loads
    it in a thread meanwhile): the configuration, the clock, whether the database is new, and the
    values of the bot-state keys it asked for (``Transport.start_keys``), once the database is ready."""

    config: Config
    clock: Clock
    fresh_database: bool
    state: "asyncio.Future[dict[str, str | None]]"


class Transport(Protocol):
    name: str                     # "matrix", "console", "memory"… (shown by !ping)
    capabilities: Capabilities
    start_keys: tuple[str, ...]   # bot-state keys read for it while the application loads
    pace_seconds: float           # between two broadcasts (announcements in several rooms)
    parallel_rooms: int           # rooms sent to at the same time (each room's messages in order)
    scheduler_grace: float        # seconds after the first batch before the scheduler may start anyway

    @property
    def user_id(self) -> str:
        """The bot's own id on this network ("" when it has none): its own messages are ignored."""

    async def connect(self, start: StartContext) -> None:
        """Log in; may prepare its first batch. Raises ``ess_bot.errors.FatalError`` (French) when
        retrying cannot help."""

    def batches(self, app: "App") -> AsyncIterator[Batch]:
        """What arrives, batch by batch, until the transport ends (the terminal at end of input) or
        the runner stops."""

    async def send(self, out: Outgoing, txn_id: str) -> str:
        """Send one message; returns its id on the network. ``txn_id`` is stable across retries.
        Raises ``SendError`` (``transient`` or not)."""

    async def close(self) -> None:
        """Release the connection."""

"""The smallest transport: events are put in by a program, the bot's messages are kept in a list.

It shows what a transport is (``ess_bot.framework.transport``) and lets the unit tests run the whole
bot — the runner's start order, the outbox sender, the scheduler — without a homeserver.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, AsyncIterator

from ess_bot.framework.messages import Incoming, Outgoing, SendError
from ess_bot.framework.transport import Batch, Capabilities, StartContext

if TYPE_CHECKING:
    from ess_bot.app import App


class MemoryTransport:
    name = "memory"
    capabilities = Capabilities(threads=True, reactions=True, polls=True, edits=True, redactions=True, files=True,
                                html=True)
    start_keys = ()
    pace_seconds = 0.0
    parallel_rooms = 1
    scheduler_grace = 0.0

    def __init__(self, user_id: str = "@bot:memory"):
        self.user_id = user_id
        self.sent: list[Outgoing] = []
        self.txn_ids: list[str] = []
        self.fail_sends = 0  # the next N sends fail (transiently), as a homeserver outage would
        self._queue: asyncio.Queue[tuple[list[Incoming] | None, asyncio.Future]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self.connected = False

    async def connect(self, start: StartContext) -> None:
        self.connected = True

    async def put(self, *events: Incoming) -> None:
        """Deliver ``events`` as one batch; returns once the bot has handled them and, the batch being
        quiet, sent its replies."""
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((list(events), done))
        await done

    async def end(self) -> None:
        """No more events: the runner's ``run()`` returns."""
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((None, done))

    async def batches(self, app: "App") -> AsyncIterator[Batch]:
        yield Batch(first=True)
        while True:
            events, done = await self._queue.get()
            if events is None:
                done.set_result(None)
                return
            try:
                yield Batch(events=events)
            finally:
                if not done.done():
                    done.set_result(None)

    async def send(self, out: Outgoing, txn_id: str) -> str:
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise SendError("memory transport: failing on purpose", transient=True)
        if txn_id in self.txn_ids:  # as a homeserver does: the same transaction is the same message
            return f"$memory-{self.txn_ids.index(txn_id) + 1}"
        self.sent.append(out)
        self.txn_ids.append(txn_id)
        return f"$memory-{len(self.sent)}"

    async def close(self) -> None:
        self.connected = False

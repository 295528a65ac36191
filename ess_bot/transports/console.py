"""The terminal backend: the same bot, without a homeserver.

Interactive on a TTY; otherwise one command per line from stdin, exiting at EOF (scriptable).
``/as USER``, ``/room ROOM``, ``/now ISO8601`` switch sender, room and (frozen) time; ``/quit`` ends.
With ``json_output`` every bot output is one JSON object per line.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from typing import TYPE_CHECKING, AsyncIterator

from ess_bot.config import Config
from ess_bot.files import private_dir, write_private
from ess_bot.framework.messages import Incoming, Outgoing
from ess_bot.framework.transport import Batch, Capabilities, StartContext

if TYPE_CHECKING:
    from ess_bot.app import App

HELP = """Commandes du terminal :
  /as @utilisateur:serveur   parler au nom d'un autre membre
  /room SALON                changer de salon (clé de la configuration, identifiant, ou "direct")
  /now 2026-11-24T10:00      figer l'horloge à cette date (format ISO 8601)
  /qui                       rappeler l'expéditeur, le salon et l'heure
  /quit                      quitter
Tout le reste est envoyé au bot comme un message (par exemple : !aide)."""


class ConsoleTransport:
    """The terminal as a transport: each line is a batch of one message (or a terminal command such
    as ``/as``); the bot's outputs are printed as they are sent. Lines come from ``stdin`` — or, when
    ``stdin`` is None, from :meth:`type` (a program driving a session, such as the recorded README
    session)."""

    name = "console"
    capabilities = Capabilities(threads=False, reactions=True, polls=True, edits=False, redactions=True,
                                files=True, html=False)
    start_keys = ()
    pace_seconds = 0.0
    parallel_rooms = 1      # one sequence: the outbox's order, as printed
    scheduler_grace = 0.0   # what is due (a frozen --now) is said before the first prompt
    user_id = ""

    def __init__(self, config: Config, sender: str, room: str, *, json_output: bool = False,
                 files_dir: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr, session_id: str | None = None,
                 stdin: TextIO | None = sys.stdin):
        """``session_id``: part of every event id (default: random, so that sessions sharing a database
        never collide); a recorded session passes a fixed one."""
        self.config = config
        self.sender = sender
        self.room = room
        self.json_output = json_output
        self.files_dir = files_dir
        self.out = out
        self.err = err
        self.stdin = stdin
        self._ids = itertools.count(1)
        self._session = session_id or uuid.uuid4().hex[:12]  # event ids unique across sessions sharing a database
        self._room_labels = {room_id: key for key, room_id in config.room_keys().items()}
        self._typed: asyncio.Queue[tuple[str, asyncio.Future]] | None = None
        self._app: "App | None" = None

    async def connect(self, start: StartContext) -> None:
        return None  # nothing to log in to

    async def close(self) -> None:
        return None

    # -- sending ---------------------------------------------------------------------------------
    async def send(self, out: Outgoing, txn_id: str) -> str:
        event_id = f"$out-{txn_id}"
        filename = None
        if out.data is not None:
            private_dir(self.files_dir)
            safe = re.sub(r"[^\w.\-]+", "_", out.filename or "fichier")
            path = self.files_dir / safe
            write_private(path, out.data)
            filename = str(path)
        link = stored_file_link(out)
        if self.json_output:
            record = {"room": out.room_id, "kind": out.kind, "body": out.body, "html": out.html,
                      "reply_to": out.reply_to or out.reacts_to, "mentions": out.mentions, "filename": filename,
                      "url": link, "thread_root": out.thread_root, "key": out.key, "event_id": event_id}
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self.out.write(self._human(out, filename) + "\n")
        self.out.flush()
        return event_id

    def _human(self, out: Outgoing, filename: str | None) -> str:
        where = "" if out.room_id == self.room else f"[{self._room_labels.get(out.room_id, out.room_id)}] "
        if out.kind == "reaction":
            return f"{where}🤖 (réaction {out.key})"
        if filename:
            return f"{where}🤖 📎 {out.body} → {filename}"
        if stored_file_link(out):
            return f"{where}🤖 📎 {out.body} → {stored_file_link(out)}"
        prefix = "🔔 " if out.kind == "text" else ""
        body = out.body.replace("\n", "\n   ")
        return f"{where}🤖 {prefix}{body}"

    # -- receiving -------------------------------------------------------------------------------
    def incoming(self, line: str, clock) -> Incoming:
        return Incoming(event_id=f"$console-{self._session}-{next(self._ids)}", room_id=self.room,
                        sender=self.sender, body=line, timestamp=clock.now(),
                        is_direct=self.room.startswith("!direct-"))

    async def type(self, line: str) -> None:
        """Type ``line`` (``stdin=None`` only); returns once the bot has handled it and its replies
        are printed."""
        if self._typed is None:
            self._typed = asyncio.Queue()
        done = asyncio.get_running_loop().create_future()
        await self._typed.put((line, done))
        await done

    async def end(self) -> None:
        """End a typed session (as the end of input would)."""
        await self.type("/quit")

    async def batches(self, app: "App") -> AsyncIterator[Batch]:
        self._app = app
        yield Batch(first=True, settle=True)  # the session starts: what is due is said first
        interactive = self.stdin is not None and self.stdin.isatty()
        if interactive:
            self._note("ess-bot — mode terminal. Tapez !aide pour commencer, /aide pour les commandes du "
                       "terminal, /quit pour sortir.")
            self._note(f"(vous êtes {self.sender} dans {self._room_labels.get(self.room, self.room)})")
        while True:
            line, typed = await self._next_line(interactive)
            if line is None:
                return
            try:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                if line.startswith("/"):
                    go_on, note = await self._slash(line.strip(), app)
                    if not go_on:
                        return
                    yield Batch(settle=True)  # what a moved clock made due is printed first
                    if note:
                        self._note(note)
                    continue
                yield Batch(events=[self.incoming(line, app.clock)], settle=True)
            finally:
                if typed is not None and not typed.done():
                    typed.set_result(None)

    async def _next_line(self, interactive: bool) -> tuple[str | None, asyncio.Future | None]:
        if self.stdin is None:
            if self._typed is None:
                self._typed = asyncio.Queue()
            line, typed = await self._typed.get()
            return line, typed
        loop = asyncio.get_running_loop()
        if interactive:
            try:
                return await loop.run_in_executor(None, input, "> "), None
            except EOFError:
                return None, None
        line = await loop.run_in_executor(None, self.stdin.readline)
        return (line or None), None

    async def _slash(self, line: str, app: "App") -> tuple[bool, str | None]:
        """A terminal command: (go on, the line to print once what it caused is printed)."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in ("/quit", "/exit", "/q"):
            return False, None
        if word == "/as" and rest:
            self.sender = resolve_sender(self.config, rest, self._note)
        elif word == "/room" and rest:
            room = resolve_console_room(self.config, rest, self.sender)
            if room is None:
                return True, (f"⚠️ Salon inconnu : {rest}. Salons connus : {', '.join(self.config.room_keys())}, "
                              "direct.")
            self.room = room
        elif word == "/now" and rest:
            try:
                at = datetime.fromisoformat(rest)
            except ValueError:
                return True, f"⚠️ Date illisible : {rest}. Exemple : /now 2026-11-24T10:00"
            app.clock.set(at)
            await app.scheduler.run_due()
        elif word not in ("/qui", "/whoami"):
            return True, HELP
        return True, (f"(vous êtes {self.sender} dans {self._room_labels.get(self.room, self.room)}, "
                      f"le {app.clock.now():%d/%m/%Y à %H:%M})")

    def _note(self, text: str) -> None:
        if not self.json_output:
            self.out.write(text + "\n")
            self.out.flush()
        else:
            self.err.write(text + "\n")


def resolve_sender(config, text: str, note) -> str:
    """``karim`` or ``@karim`` → ``@karim:example.org`` when that member is unique; otherwise as typed, with a
    warning when nobody in the configuration has that id."""
    member = config.find_member(text)
    if member is not None:
        return member.user_id
    note(f"⚠️ {text} n'est pas membre dans la configuration (le bot le traitera comme un inconnu). "
         f"Membres : {', '.join(m.user_id for m in config.members)}.")
    return text


def stored_file_link(out: Outgoing) -> str | None:
    """The media address of a file re-sent from the media repository (no bytes in the message)."""
    if out.kind not in ("file", "image") or out.data is not None:
        return None
    return out.extra.get("url") or (out.extra.get("file") or {}).get("url")


def resolve_console_room(config: Config, key: str, sender: str) -> str | None:
    if key in ("direct", "dm", "prive", "privé"):
        return f"!direct-{sender.lstrip('@').split(':')[0]}:console"
    return config.resolve_room(key)

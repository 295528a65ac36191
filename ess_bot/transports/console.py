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

from ess_bot.app import App
from ess_bot.files import private_dir, write_private
from ess_bot.framework.messages import Incoming, Outgoing
from ess_bot.http import start_http, stop_http

HELP = """Commandes du terminal :
  /as @utilisateur:serveur   parler au nom d'un autre membre
  /room SALON                changer de salon (clé de la configuration, identifiant, ou "direct")
  /now 2026-11-24T10:00      figer l'horloge à cette date (format ISO 8601)
  /qui                       rappeler l'expéditeur, le salon et l'heure
  /quit                      quitter
Tout le reste est envoyé au bot comme un message (par exemple : !aide)."""


class ConsoleTransport:
    def __init__(self, app: App, sender: str, room: str, *, json_output: bool = False,
                 files_dir: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr, session_id: str | None = None):
        """``session_id``: part of every event id (default: random, so that sessions sharing a database
        never collide); a recorded session passes a fixed one."""
        self.app = app
        self.sender = sender
        self.room = room
        self.json_output = json_output
        self.files_dir = files_dir
        self.out = out
        self.err = err
        self._ids = itertools.count(1)
        self._session = session_id or uuid.uuid4().hex[:12]  # event ids unique across sessions sharing a database
        self.sender_outbox = app.outbox_sender(self._send)
        labels = {room_id: key for key, room_id in app.config.room_keys().items()}
        self._room_labels = labels

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, out: Outgoing, txn_id: str) -> str:
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
    def incoming(self, line: str) -> Incoming:
        return Incoming(event_id=f"$console-{self._session}-{next(self._ids)}", room_id=self.room,
                        sender=self.sender, body=line, timestamp=self.app.clock.now(),
                        is_direct=self.room.startswith("!direct-"))

    async def handle_line(self, line: str) -> bool:
        """Process one input line; False when the session should end."""
        line = line.rstrip("\n")
        if not line.strip():
            return True
        if line.startswith("/"):
            return await self._slash(line.strip())
        await self.app.handle(self.incoming(line))
        await self.sender_outbox.drain()
        return True

    async def _slash(self, line: str) -> bool:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in ("/quit", "/exit", "/q"):
            return False
        if word == "/as" and rest:
            self.sender = resolve_sender(self.app.config, rest, self._note)
        elif word == "/room" and rest:
            room = resolve_console_room(self.app, rest, self.sender)
            if room is None:
                self._note(f"⚠️ Salon inconnu : {rest}. Salons connus : {', '.join(self.app.config.room_keys())}, direct.")
                return True
            self.room = room
        elif word == "/now" and rest:
            try:
                at = datetime.fromisoformat(rest)
            except ValueError:
                self._note(f"⚠️ Date illisible : {rest}. Exemple : /now 2026-11-24T10:00")
                return True
            self.app.clock.set(at)
            await self.app.scheduler.run_due()
            await self.sender_outbox.drain()
        elif word in ("/qui", "/whoami"):
            pass
        else:
            self._note(HELP)
            return True
        self._note(f"(vous êtes {self.sender} dans {self._room_labels.get(self.room, self.room)}, "
                   f"le {self.app.clock.now():%d/%m/%Y à %H:%M})")
        return True

    def _note(self, text: str) -> None:
        if not self.json_output:
            self.out.write(text + "\n")
            self.out.flush()
        else:
            self.err.write(text + "\n")

    async def run(self, stdin: TextIO = sys.stdin) -> None:
        await self.app.prepare()
        http_runner = await start_http(self.app.config, self.app)  # the calendar feed, when configured
        await self.app.scheduler.start()  # the console "first sync" is the session start
        await self.sender_outbox.drain()
        interactive = stdin.isatty()
        if interactive:
            self._note("ess-bot — mode terminal. Tapez !aide pour commencer, /aide pour les commandes du "
                       "terminal, /quit pour sortir.")
            self._note(f"(vous êtes {self.sender} dans {self._room_labels.get(self.room, self.room)})")
        loop = asyncio.get_running_loop()
        background = loop.create_task(self.sender_outbox.run())  # scheduled messages in a live session
        try:
            while True:
                if interactive:
                    try:
                        line = await loop.run_in_executor(None, input, "> ")
                    except EOFError:
                        break
                else:
                    line = await loop.run_in_executor(None, stdin.readline)
                    if not line:
                        break
                if not await self.handle_line(line):
                    break
                await self.sender_outbox.drain()
        finally:
            background.cancel()
            await self.sender_outbox.drain()
            await stop_http(http_runner)


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


def resolve_console_room(app: App, key: str, sender: str) -> str | None:
    if key in ("direct", "dm", "prive", "privé"):
        return f"!direct-{sender.lstrip('@').split(':')[0]}:console"
    return app.config.resolve_room(key)

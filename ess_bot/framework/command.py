"""Declarative commands, in the spirit of maubot plugins.

A command module declares its commands with :func:`command` and :func:`subcommand`; the decorators
only attach a :class:`Command` description to the handler. ``commands.load_all()`` collects them into
a :class:`Registry` (built at start, passed in — there is no global registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Awaitable, Callable

from ess_bot.config import role_allows
from ess_bot.text import closest, fold

if TYPE_CHECKING:
    from ess_bot.framework.context import Context

Handler = Callable[["Context", list[str]], Awaitable[None]]

# Where a command may run. "announcements" rooms are for announcements only.
ROOM_KINDS = ("direct", "coordination", "partner", "announcements", "other")
DEFAULT_WHERE = ("direct", "coordination", "partner", "other")


@dataclass
class Subcommand:
    name: str
    handler: Handler
    summary: str
    usage: str
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    role: str = "advisor"

    def names(self) -> list[str]:
        return [self.name, *self.aliases]


@dataclass
class Command:
    """A command family: ``!suivi`` with its default handler and subcommands (``!suivi liste``)."""

    name: str
    handler: Handler | None
    group: str
    summary: str
    usage: str
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    role: str = "advisor"
    where: tuple[str, ...] = DEFAULT_WHERE
    details: str = ""
    subcommands: list[Subcommand] = field(default_factory=list)

    def names(self) -> list[str]:
        return [self.name, *self.aliases]

    def find_sub(self, word: str) -> Subcommand | None:
        key = fold(word)
        for sub in self.subcommands:
            if key in (fold(n) for n in sub.names()):
                return sub
        return None

    def allowed(self, role: str | None) -> bool:
        return role_allows(role, self.role)


def command(name: str, *, group: str, summary: str, usage: str, examples: tuple[str, ...] | list[str] = (),
            aliases: tuple[str, ...] | list[str] = (), role: str = "advisor",
            where: tuple[str, ...] = DEFAULT_WHERE, details: str = "") -> Callable[[Handler], Handler]:
    """Declare a top-level command. The decorated coroutine gets ``(ctx, args)``."""

    def decorate(fn: Handler) -> Handler:
        fn.__ess_command__ = Command(name=name, handler=fn, group=group, summary=summary, usage=usage,
                                     examples=tuple(examples), aliases=tuple(aliases), role=role,
                                     where=tuple(where), details=details)
        return fn

    return decorate


def subcommand(parent: str, name: str, *, summary: str, usage: str, examples: tuple[str, ...] | list[str] = (),
               aliases: tuple[str, ...] | list[str] = (), role: str = "advisor") -> Callable[[Handler], Handler]:
    """Declare ``!parent name …``. The handler gets the arguments after ``name``."""

    def decorate(fn: Handler) -> Handler:
        fn.__ess_subcommand__ = (parent, Subcommand(name=name, handler=fn, summary=summary, usage=usage,
                                                    examples=tuple(examples), aliases=tuple(aliases), role=role))
        return fn

    return decorate


class Registry:
    """The commands of one bot instance, looked up case- and accent-insensitively."""

    def __init__(self) -> None:
        self._commands: list[Command] = []
        self._by_name: dict[str, Command] = {}
        self.event_handlers: dict[str, list[Callable]] = {}

    def add(self, cmd: Command) -> None:
        for n in cmd.names():
            key = fold(n)
            if key in self._by_name and self._by_name[key] is not cmd:
                raise ValueError(f"command name {n!r} declared twice")
            self._by_name[key] = cmd
        self._commands.append(cmd)

    def add_sub(self, parent: str, sub: Subcommand) -> None:
        cmd = self._by_name.get(fold(parent))
        if cmd is None:
            raise ValueError(f"subcommand {sub.name!r} for unknown command {parent!r}")
        cmd.subcommands.append(sub)

    def on(self, kind: str, handler: Callable) -> None:
        """Register a handler for non-command events (reaction, redaction, poll_response…)."""
        self.event_handlers.setdefault(kind, []).append(handler)

    def load_module(self, module) -> None:
        items = list(vars(module).values())
        for obj in items:
            cmd = getattr(obj, "__ess_command__", None)
            if isinstance(cmd, Command):
                # a copy: the declaration is shared by every registry of the process, its subcommands are not
                self.add(replace(cmd, subcommands=[]))
        for obj in items:
            sub = getattr(obj, "__ess_subcommand__", None)
            if sub is not None:
                self.add_sub(*sub)
        for kind, handler in getattr(module, "EVENT_HANDLERS", {}).items():
            self.on(kind, handler)

    def get(self, name: str) -> Command | None:
        return self._by_name.get(fold(name))

    def all(self) -> list[Command]:
        return list(self._commands)

    def suggest(self, name: str, role: str | None = None) -> str | None:
        names = [n for c in self._commands if role is None or c.allowed(role) for n in c.names()]
        match = closest(name, names)
        if match is None:
            return None
        return self.get(match).name


def with_prefix(prefix: str, usage: str) -> str:
    """Usages and examples are written with "!"; show them with the configured prefix."""
    return prefix + usage[1:] if usage.startswith("!") else usage


def example_for(ctx_or_prefix, example: str) -> str:
    """An example written with "!" shown with the configured prefix (takes a Context or the prefix)."""
    prefix = ctx_or_prefix if isinstance(ctx_or_prefix, str) else ctx_or_prefix.prefix
    return with_prefix(prefix, example)


def help_text(cmd: Command, role: str | None, prefix: str) -> str:
    """Syntax, sub-commands the role may use, and examples of one command (Markdown, French)."""
    lines = [f"**{prefix}{cmd.name}** — {cmd.summary}", f"Syntaxe : `{with_prefix(prefix, cmd.usage)}`"]
    if cmd.aliases:
        lines.append("Autres noms : " + ", ".join(f"`{prefix}{a}`" for a in cmd.aliases))
    if cmd.details:
        lines.append(cmd.details)
    subs = [s for s in cmd.subcommands if role_allows(role, s.role)]
    if subs:
        lines.append("Sous-commandes :")
        lines += [f"- `{with_prefix(prefix, s.usage)}` — {s.summary}" for s in subs]
    examples = list(cmd.examples) + [e for s in subs for e in s.examples]
    if examples:
        lines.append("Exemples :")
        lines += [f"- `{with_prefix(prefix, e)}`" for e in examples]
    return "\n".join(lines)

"""The test-wide check of what the bot sends: every outgoing message's HTML must come out of a strict
allow-list sanitiser (nh3, with the tags and attributes the Matrix specification allows) unchanged,
and its plain body must not show a Markdown backslash escape that nobody typed.

``tests/conftest.py`` installs :class:`SanitiserCheck` around every test (``sanitiser`` fixture): it
wraps :meth:`ess_bot.framework.messages.Outgoing.to_payload` — every outbox row, replies, announcements
and scheduled messages alike, the integration bot's included since it runs in the same process — and
records findings; the test fails at teardown if there is any. Nothing is raised inside the hook: the
dispatcher would turn an exception into an internal-error reply and hide it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Iterable

import nh3

from ess_bot.text import normalize

# The HTML the Matrix specification lets clients show (client-server API, "m.room.message msgtypes",
# formatted_body), minus <img>: its only allowed source is mxc://, and the bot never sends one inline.
MATRIX_TAGS = frozenset({
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub", "li",
    "b", "i", "u", "strong", "em", "s", "strike", "code", "hr", "br", "div", "table", "thead", "tbody", "tr",
    "th", "td", "caption", "pre", "span", "details", "summary",
})
MATRIX_ATTRIBUTES = {
    "font": {"data-mx-bg-color", "data-mx-color", "color"},
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler"},
    "a": {"name", "target", "href"},
    "ol": {"start"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
MATRIX_TO = "https://matrix.to/#/"
PILL_SCHEME = "mxpill:"
_USER_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?$")
_VOID = frozenset({"br", "hr", "img", "wbr", "input", "meta", "link", "area", "base", "col", "embed", "param",
                   "source", "track"})
TEXT_KINDS = ("notice", "text", "poll", "poll_end", "event")
# a Markdown backslash escape (what ess_bot.formatting.md_escape writes): it must never reach a plain body
_ESCAPE = re.compile(r"\\[\\`*_{}\[\]()>#+\-.!]")
_BARE_BACKSLASH = re.compile(r"\\(?:\s|$)")  # a backslash typed at the end of a word


def sanitise(html: str) -> str:
    return nh3.clean(html, tags=set(MATRIX_TAGS), attributes={k: set(v) for k, v in MATRIX_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel=None, strip_comments=True)


class _Tree(HTMLParser):
    """A fragment as a stream of (kind, tag, sorted attributes | text): ``<br />`` and ``<br>`` alike,
    entities decoded, adjacent text merged."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.items.append(("start", tag, tuple(sorted((k, v or "") for k, v in attrs))))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag not in _VOID:
            self.items.append(("end", tag))

    def handle_data(self, data):
        if self.items and self.items[-1][0] == "text":
            self.items[-1] = ("text", self.items[-1][1] + data)
        else:
            self.items.append(("text", data))

    def handle_comment(self, data):
        self.items.append(("comment", data))

    def handle_decl(self, decl):
        self.items.append(("decl", decl))

    def handle_pi(self, data):
        self.items.append(("pi", data))

    def unknown_decl(self, data):
        self.items.append(("decl", data))


def tree(html: str) -> list[tuple]:
    parser = _Tree()
    parser.feed(html)
    parser.close()
    return parser.items


def tree_difference(html: str) -> str | None:
    """None when the sanitiser leaves ``html`` as it is; else where the two first differ."""
    mine, clean = tree(html), tree(sanitise(html))
    if mine == clean:
        return None
    for i, (a, b) in enumerate(zip(mine, clean)):
        if a != b:
            return f"at item {i}: bot {a!r}, sanitised {b!r}"
    longer, which = (mine, "bot") if len(mine) > len(clean) else (clean, "sanitised")
    return f"{which} has more, from {longer[min(len(mine), len(clean))]!r}"


def hrefs(html: str) -> list[str]:
    return [dict(item[2]).get("href", "") for item in tree(html) if item[0] == "start" and item[1] == "a"]


def _strings(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


@dataclass
class SanitiserCheck:
    """Collects findings about outgoing messages during one test."""

    findings: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)       # bodies of the incoming messages (what people typed)
    pills: set[str] = field(default_factory=set)         # matrix.to links the renderer made from the bot's pills
    checked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what the hooks call -------------------------------------------------------------------
    def saw_input(self, body: str) -> None:
        with self._lock:
            self.typed.append(body or "")

    def saw_pills(self, targets: Iterable[str]) -> None:
        with self._lock:
            self.pills.update(MATRIX_TO + t[len(PILL_SCHEME):] for t in targets)

    def check(self, out) -> None:
        """One outgoing message: never raises (a finding is recorded instead)."""
        try:
            self._check(out)
        except Exception as exc:  # noqa: BLE001 - the checker itself must not break the bot under test
            self._found(out, f"checker error: {exc!r}")

    # -- the checks ----------------------------------------------------------------------------
    def _found(self, out, what: str) -> None:
        body = (getattr(out, "body", "") or "")[:300]
        with self._lock:
            self.findings.append(f"[{getattr(out, 'kind', '?')} to {getattr(out, 'room_id', '?')}] {what}\n"
                                 f"    body: {body!r}")

    def _check(self, out) -> None:
        with self._lock:
            self.checked += 1
        html_parts = [("html", out.html)] if out.html else []
        html_parts += [(p, v) for p, v in _strings(out.extra or {}) if p.endswith("formatted_body")]
        for where, html in html_parts:
            diff = tree_difference(html)
            if diff is not None:
                self._found(out, f"{where} changed by the sanitiser ({diff})\n    html: {html[:500]!r}")
            for href in hrefs(html):
                if href.lower().startswith(("https://matrix.to", "http://matrix.to")):
                    if href not in self.pills:
                        self._found(out, f"{where}: a matrix.to link the bot did not make as a pill: {href!r}")
                    elif not _USER_ID.match(href[len(MATRIX_TO):]):
                        self._found(out, f"{where}: a pill to something that is not a user id: {href!r}")
        if out.kind not in TEXT_KINDS:
            return  # a file's body is its name, a reaction's key: not text the bot wrote
        plains = [("body", out.body or "")]
        plains += [(p, v) for p, v in _strings(out.extra or {}) if not p.endswith("formatted_body")]
        for where, text in plains:
            for m in _ESCAPE.finditer(text):
                # typed as is, or a typed word ending with a backslash, then the bot's own text ("ab\\" + "."),
                # as the dispatcher reads it (a zero-width space, a NUL or an empty "" after the backslash)
                if not any(m.group(0) in typed or _BARE_BACKSLASH.search(normalize(typed).replace('"', " "))
                           for typed in reversed(self.typed)):  # the latest first: usually the line answered
                    self._found(out, f"{where}: a Markdown escape {m.group(0)!r} left in the plain text "
                                     f"(…{text[max(0, m.start() - 40):m.end() + 40]!r}…)")
                    break

    def report(self) -> str:
        return f"{len(self.findings)} unsafe outgoing message(s):\n" + "\n".join(self.findings)


def install(monkeypatch, check: SanitiserCheck) -> None:
    """Wrap the places every outgoing message and every incoming command pass."""
    from ess_bot.framework import dispatcher as dispatcher_module
    from ess_bot.framework import messages

    original_payload = messages.Outgoing.to_payload

    def to_payload(self):
        check.check(self)
        return original_payload(self)

    monkeypatch.setattr(messages.Outgoing, "to_payload", to_payload)

    original_guard = messages._LinkGuard.run

    def guard(self, root):
        check.saw_pills((a.get("href") or "").strip() for a in root.iter("a")
                        if (a.get("href") or "").strip().startswith(PILL_SCHEME))
        return original_guard(self, root)

    monkeypatch.setattr(messages._LinkGuard, "run", guard)

    original_handle = dispatcher_module.Dispatcher.handle

    async def handle(self, event):
        check.saw_input(event.body)
        return await original_handle(self, event)

    monkeypatch.setattr(dispatcher_module.Dispatcher, "handle", handle)

"""Transport-neutral messages: what arrives (Incoming) and what the bot sends (Outgoing)."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import markdown as _markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

KINDS = ("notice", "text", "reaction", "file", "image", "poll", "poll_end", "redaction", "event")


@dataclass(frozen=True)
class Incoming:
    """One event from a room, already decrypted. ``kind`` says which fields matter."""

    event_id: str
    room_id: str
    sender: str
    kind: str = "message"          # message | reaction | redaction | poll_response | poll_end
    body: str = ""
    msgtype: str = "m.text"
    timestamp: datetime | None = None
    thread_root: str | None = None
    reply_to: str | None = None     # the event this message replies to (m.in_reply_to)
    relates_to: str | None = None   # reactions, poll responses: the target event; redactions: the redacted event
    key: str | None = None          # reaction key
    answers: tuple[str, ...] = ()   # poll response answer ids
    is_direct: bool = False         # a direct chat (two members)
    content: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outgoing:
    """One message to send. ``kind`` is notice/text (with HTML), reaction, file/image, poll…"""

    room_id: str
    kind: str = "notice"
    body: str = ""
    html: str | None = None
    reply_to: str | None = None
    thread_root: str | None = None
    mentions: list[str] = field(default_factory=list)
    mention_room: bool = False
    filename: str | None = None
    mimetype: str | None = None
    data: bytes | None = None
    reacts_to: str | None = None
    key: str | None = None
    event_type: str | None = None      # for kind="event"/"poll": the raw Matrix event type
    extra: dict[str, Any] = field(default_factory=dict)  # raw content for polls and custom events
    tag: str | None = None             # lets domain code find the sent event id later
    paced: bool = False                # broadcasts: spaced out so the homeserver never rate-limits them

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outgoing kind {self.kind!r}")

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe dict for the outbox (file bytes are stored apart)."""
        d = asdict(self)
        d.pop("data")
        d.pop("tag")
        return d

    @classmethod
    def from_payload(cls, payload: dict[str, Any], data: bytes | None, tag: str | None) -> "Outgoing":
        return cls(**payload, data=data, tag=tag)


_converters = threading.local()  # a Markdown instance is costly to build and not thread-safe: one per thread

SAFE_SCHEMES = ("http", "https", "mailto")
PILL_SCHEME = "mxpill:"            # a mention pill made by the bot (ess_bot.formatting.pill)
MATRIX_TO = "https://matrix.to/#/"
# what the plain body keeps as written, left to right: Markdown's backslash escapes (md_escape), and inline
# code spans (md_code) — the content of a code span is literal: no emphasis, link or escape inside it
_LITERAL = re.compile(r"\\([\\`*_{}\[\]()>#+\-.!])|(?<!`)(`+)(?!`) ?(.+?) ?(?<!`)\2(?!`)")


class _LinkGuard(Treeprocessor):
    """Every link of a rendered message: ``http``, ``https`` and ``mailto`` stay; the bot's own pills
    (``mxpill:``) become matrix.to links; anything else — ``javascript:``, ``data:``, a matrix.to link
    written by hand, which would draw a fake mention — is shown as plain text."""

    def run(self, root):
        for element in root.iter("a"):
            href = (element.get("href") or "").strip()
            if href.startswith(PILL_SCHEME):
                element.set("href", MATRIX_TO + href[len(PILL_SCHEME):])
                continue
            scheme = href.split(":", 1)[0].lower() if ":" in href else ""
            if scheme in SAFE_SCHEMES and not href.lower().startswith(("https://matrix.to", "http://matrix.to")):
                continue
            element.tag = "span"
            element.attrib.clear()


class _Hardened(Extension):
    """No raw HTML, no entities, no autolinks, images or reference links: what a message says is shown
    as text; the only markup is what the bot's Markdown makes (emphasis, lists, code, checked links)."""

    def extendMarkdown(self, md):
        md.preprocessors.deregister("html_block")
        for name in ("html", "entity", "autolink", "automail", "reference", "image_link", "image_reference",
                     "short_reference", "short_image_ref"):
            md.inlinePatterns.deregister(name)
        md.parser.blockprocessors.deregister("reference")
        md.treeprocessors.register(_LinkGuard(md), "link_guard", 1)


def render_markdown(text: str) -> tuple[str, str]:
    """Markdown → (plain body, HTML). The plain body keeps the text readable without markup.

    User text must go in through :func:`ess_bot.formatting.md_escape` (or ``md_code``, ``md_link``);
    whatever gets through anyway cannot become HTML, an image or a dangerous link (see ``_Hardened``)."""
    converter = getattr(_converters, "md", None)
    if converter is None:
        converter = _converters.md = _markdown.Markdown(extensions=["sane_lists", "nl2br", _Hardened()],
                                                        output_format="html")
    html = converter.reset().convert(text)
    # the plain body: escaped characters set aside (private-use placeholders), markup removed, then put back
    kept: list[str] = []

    def keep(m: re.Match) -> str:
        kept.append(m.group(1) if m.group(1) is not None else m.group(3))
        return f"\ue000{len(kept) - 1}\ue001"

    plain = _LITERAL.sub(keep, text)
    plain = re.sub(r"\*\*(.+?)\*\*", r"\1", plain)
    plain = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", plain)

    def restore(t: str) -> str:
        return re.sub("\ue000(\\d+)\ue001", lambda m: kept[int(m[1])], t)

    def link(m: re.Match) -> str:  # "text (address)", or the address once when it is the text
        shown, href = restore(m[1]), _plain_href(m[2])
        return shown if shown == href else f"{shown} ({href})"

    plain = restore(re.sub(r"\[([^\]]+)\]\(([^)]+)\)", link, plain))
    return plain, html


def _plain_href(href: str) -> str:
    return MATRIX_TO + href[len(PILL_SCHEME):] if href.startswith(PILL_SCHEME) else href


class SendError(Exception):
    """A send that failed. ``transient`` errors are retried later, in order; others are given up at once."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient

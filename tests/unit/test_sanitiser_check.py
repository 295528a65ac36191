"""The test-wide sanitiser check (tests/sanitiser.py) reports what it must, and only that."""

from __future__ import annotations

from datetime import datetime

import pytest

from ess_bot.formatting import md_escape, pill
from ess_bot.framework.messages import Outgoing, render_markdown
from tests.sanitiser import sanitise, tree, tree_difference
from tests.support import PARIS, started_harness


def send(text: str | None = None, *, html: str | None = None, body: str | None = None, **kw) -> Outgoing:
    if text is not None:
        body, html = render_markdown(text)
    out = Outgoing(room_id="!r:test", kind=kw.pop("kind", "notice"), body=body or "", html=html, **kw)
    out.to_payload()    # what the dispatcher does for every outbox row
    return out


UNSAFE_HTML = [
    "<p>hi<script>alert(1)</script></p>",
    '<p><img src="x" onerror="alert(1)"></p>',
    '<p><a href="javascript:alert(1)">clic</a></p>',
    '<p><a href="data:text/html,x">clic</a></p>',
    '<p onclick="x()">hi</p>',
    '<p><iframe src="https://evil.example"></iframe></p>',
    "<style>p{}</style><p>x</p>",
    "<p>x<!-- a comment --></p>",
    '<p><a href="https://matrix.to/#/@x:test">@x</a></p>',   # a fake pill
]


@pytest.mark.parametrize("html", UNSAFE_HTML)
def test_unsafe_html_is_reported(sanitiser, html):
    send(html=html, body="hi")
    assert len(sanitiser.findings) == 1, sanitiser.findings
    sanitiser.findings.clear()


def test_an_unsafe_poll_formatted_body_is_reported(sanitiser):
    send(body="q", kind="poll", event_type="x", extra={"question": {"formatted_body": "<b onmouseover=x>q</b>"}})
    assert len(sanitiser.findings) == 1 and "question.formatted_body" in sanitiser.findings[0]
    sanitiser.findings.clear()


def test_a_backslash_escape_left_in_the_plain_body_is_reported(sanitiser):
    send(body="Titre : \\*gras\\*", html="<p>Titre : *gras*</p>")
    assert len(sanitiser.findings) == 1 and "Markdown escape" in sanitiser.findings[0]
    sanitiser.findings.clear()
    # a double escape (md_escape twice) shows in the plain body too
    send(md_escape(md_escape("a*b")))
    assert len(sanitiser.findings) == 1
    sanitiser.findings.clear()


def test_safe_messages_pass(sanitiser):
    send("**Gras** _it_ `code` [lien](https://example.org) " + pill("@claire:test", "Claire") + "\n- a\n- b")
    sanitiser.saw_input("un \\* tapé")
    send(md_escape("<script>alert(1)</script> [clic](javascript:alert(1)) **x** \\* `y`"))
    send(html="<p>a<br />b</p>", body="a\nb")       # <br /> and <br> are the same tree
    send(body="plain, no html")
    assert sanitiser.findings == [] and sanitiser.checked == 4


def test_a_typed_backslash_may_come_back(tmp_path):
    """A backslash escape the person typed is not a leftover: the plain body shows it as typed."""
    async def run():
        async with started_harness(tmp_path, datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)) as h:
            return await h.say("!outil \\*rien\\*")
    import asyncio
    out = asyncio.run(run())
    assert "\\*rien\\*" in out[0].body


def test_tree_normalisation():
    assert tree("<p>a<br />b</p>") == tree("<p>a<br>b</p>")
    assert tree("<p>&lt;b&gt; &#39;</p>") == tree("<p>&lt;b&gt; '</p>")
    assert tree_difference('<p><a href="https://example.org">x</a></p>') is None
    assert "rel" not in sanitise('<a href="https://example.org">x</a>')

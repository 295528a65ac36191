"""Conversion between nio events and the bot's Incoming/Outgoing (no server needed)."""

from nio import Event

from ess_bot.framework.messages import Outgoing
from ess_bot.transports.matrix import build_content, to_incoming


def parse(source):
    return Event.parse_event(source)


def base(etype, content, **extra):
    return {"type": etype, "content": content, "event_id": "$ev", "sender": "@alice:hs", "origin_server_ts": 1_700_000_000_000,
            "room_id": "!r:hs", **extra}


def test_text_thread_reply_and_edit():
    inc = to_incoming(parse(base("m.room.message", {"msgtype": "m.text", "body": "!ping", "m.relates_to": {
        "rel_type": "m.thread", "event_id": "$root", "m.in_reply_to": {"event_id": "$prev"}}})), "!r:hs", False)
    assert inc.kind == "message" and inc.body == "!ping" and inc.thread_root == "$root" and inc.reply_to == "$prev"
    edit = base("m.room.message", {"msgtype": "m.text", "body": "* !ping", "m.new_content": {"body": "!ping"},
                                   "m.relates_to": {"rel_type": "m.replace", "event_id": "$ev0"}})
    assert to_incoming(parse(edit), "!r:hs", False) is None


def test_files_reactions_redactions_and_polls():
    f = to_incoming(parse(base("m.room.message", {"msgtype": "m.file", "body": "trame.docx", "url": "mxc://hs/abc",
                                                  "info": {"size": 10, "mimetype": "application/msword"}})), "!r", False)
    assert f.kind == "file" and f.content["url"] == "mxc://hs/abc"
    r = to_incoming(parse(base("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p",
                                                               "key": "✅"}})), "!r", False)
    assert (r.kind, r.relates_to, r.key) == ("reaction", "$p", "✅")
    red = to_incoming(parse(base("m.room.redaction", {"redacts": "$x"}, redacts="$x")), "!r", False)
    assert (red.kind, red.relates_to) == ("redaction", "$x")
    for etype, content in [("org.matrix.msc3381.poll.response",
                            {"org.matrix.msc3381.poll.response": {"answers": ["a2"]}}),
                           ("m.poll.response", {"m.selections": ["a2"]})]:
        content["m.relates_to"] = {"rel_type": "m.reference", "event_id": "$poll"}
        p = to_incoming(parse(base(etype, content)), "!r", False)
        assert (p.kind, p.relates_to, p.answers) == ("poll_response", "$poll", ("a2",))
    end = to_incoming(parse(base("m.poll.end", {"m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"}})),
                      "!r", False)
    assert (end.kind, end.relates_to) == ("poll_end", "$poll")


def test_outgoing_content_shapes():
    etype, c = build_content(Outgoing(room_id="!r", kind="notice", body="ok", html="<b>ok</b>", reply_to="$cmd"))
    assert etype == "m.room.message" and c["msgtype"] == "m.notice" and c["m.mentions"] == {}
    assert c["format"] == "org.matrix.custom.html" and c["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    _, c = build_content(Outgoing(room_id="!r", kind="text", body="Rappel", mentions=["@a:hs"]))
    assert c["msgtype"] == "m.text" and c["m.mentions"] == {"user_ids": ["@a:hs"]}
    etype, c = build_content(Outgoing(room_id="!r", kind="reaction", reacts_to="$p", key="🤔"))
    assert etype == "m.reaction" and c == {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "🤔"}}


def test_console_shows_the_link_of_a_file_resent_from_the_media_repository():
    from ess_bot.transports.console import stored_file_link
    assert stored_file_link(Outgoing(room_id="!r", kind="file", body="trame.docx",
                                     extra={"url": "mxc://hs/abc"})) == "mxc://hs/abc"
    assert stored_file_link(Outgoing(room_id="!r", kind="file", body="x", extra={"file": {"url": "mxc://hs/e"}})) \
        == "mxc://hs/e"
    assert stored_file_link(Outgoing(room_id="!r", kind="file", body="x", data=b"1")) is None

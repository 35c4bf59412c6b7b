"""protocol.py and stanzas.py: text and payloads in, replies out. Pure: no server needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.xmpp.protocol import (
    COMMAND_NS,
    UPDATE_NS,
    LocalQuery,
    ParseError,
    Request,
    UpdatesSetting,
    make_command,
    parse_payload,
    parse_text,
    read_left,
    read_seen,
)
from pipeline.xmpp.stanzas import entity_line, message, refused, update


def payload(**attrs: str) -> ET.Element:
    return ET.Element(f"{{{COMMAND_NS}}}command", attrs)


def test_text_commands():
    assert parse_text("move 1 -1") == Request("move", {"dx": 1, "dy": -1})
    assert parse_text("NE") == Request("move", {"dx": 1, "dy": -1})
    assert parse_text("attack 17") == Request("attack", {"target": 17})
    assert parse_text("transfer 5 100") == Request("transfer", {"to": 5, "amount": 100})
    assert parse_text("travel 2") == Request("travel", {"zone": 2})
    assert parse_text("travel") == ParseError("usage: travel ZONE")
    assert parse_text("  say  hello   there ") == Request("say", {"text": "hello   there"})
    assert parse_text("use") == Request("use", {})
    assert parse_text("join") == Request("join", {}) and parse_text("join 2") == Request("join", {"zone": 2})
    assert parse_text("look") == LocalQuery("look") and parse_text("help") == LocalQuery("help")


def test_text_errors_name_the_problem():
    assert parse_text("fly") == ParseError("unknown command 'fly'; send `help` for the commands")
    assert parse_text("move 1") == ParseError("usage: move DX DY")
    assert parse_text("attack rat") == ParseError("attack: target must be a whole number, got 'rat'")
    assert parse_text("say") == ParseError("say what? `say TEXT`")
    assert parse_text("x" * 3000).reason.startswith("too large")   # type: ignore[union-attr]


def test_payloads_carry_their_seq_and_may_name_a_player():
    assert parse_payload(payload(op="move", seq="7", dx="1", dy="0")) == Request("move", {"dx": 1, "dy": 0}, seq=7)
    said = payload(op="say", seq="8")
    said.text = "hi"
    assert parse_payload(said) == Request("say", {"text": "hi"}, seq=8)
    other = parse_payload(payload(op="use", seq="9", player="3"))
    assert make_command(other, player=1, seq=99) == {"player": 3, "seq": 9, "op": "use"}
    assert make_command(Request("use", {}), player=1, seq=4) == {"player": 1, "seq": 4, "op": "use"}


def test_payload_errors():
    assert parse_payload(payload(op="fly", seq="1")).reason.startswith("payload: op must be one of")
    assert parse_payload(payload(op="use")) == ParseError("payload: seq is required")
    assert parse_payload(payload(op="use", seq="1", dx="1")) == ParseError("payload: unknown attribute 'dx' for use")
    assert parse_payload(payload(op="move", seq="x", dx="1", dy="0")) == \
        ParseError("payload: seq must be an integer, got 'x'")


def test_updates_setting():
    assert parse_text("updates 5") == UpdatesSetting("hz", 5.0)
    assert [parse_text(f"updates {m}") for m in ("live", "Digest", "off")] == \
        [UpdatesSetting("live"), UpdatesSetting("digest"), UpdatesSetting("off")]
    assert parse_payload(payload(op="updates", hz="2.5")) == UpdatesSetting("hz", 2.5)
    assert parse_text("updates") == ParseError("usage: updates digest|live|off|HZ")
    assert parse_text("updates 0").reason.startswith("updates: HZ must be above 0")     # type: ignore[union-attr]
    assert parse_text("updates nan").reason.startswith("updates: HZ must be above 0")   # type: ignore[union-attr]


def test_refusal_and_one_update_with_everything():
    body, element = refused("rate limited: ...", {"player": 1, "seq": 5, "op": "move"})
    parsed = ET.fromstring(element)
    assert body == "refused: rate limited: ..." and parsed.get("seq") == "5" and parsed.get("op") == "move"
    rat = entity_line(dict(id=4, kind=1, x=3, y=4, name="r<a t;", hp=20, max_hp=20, gold=1, respawn_tick=0,
                           potions=0, online=0, item_type=0, amount=0))
    body, xml = update(12, None, [(5, "move", "bad_step")], [(2, "bob", "hi <3 & \x01bye")],
                       [(4, True, rat, "rat#4 20/20hp at 3,4")], [9])
    assert body.splitlines() == ["move rejected: bad_step", "bob#2: hi <3 & \x01bye",
                                 "tick 12: +rat#4 20/20hp at 3,4; -#9"]
    parsed = ET.fromstring(xml)
    assert parsed.tag == f"{{{UPDATE_NS}}}update" and parsed.get("tick") == "12"
    assert [child.tag.split("}")[1] for child in parsed] == ["rejected", "chat", "seen", "left"]
    assert read_seen(parsed[2].text) == [dict(id=4, kind="npc", x=3, y=4, hp=20, max_hp=20, gold=1, dead=0,
                                              potions=0, online=0, item="none", amount=0, name="r<a t;")]
    assert read_left(parsed[3].text) == [9]
    assert parsed[1].text == "hi <3 & bye"           # escaped, and the control character XML forbids dropped
    stanza = ET.fromstring(message("ada@x", "world.x", body, xml))
    assert stanza.find("body").text == body.replace("\x01", "") and stanza.get("to") == "ada@x"


def test_an_update_acks_the_players_highest_seq_even_when_nothing_else_happened():
    body, xml = update(12, 9, [], [], [], [])
    assert body == "" and ET.fromstring(xml).get("acked") == "9" and len(ET.fromstring(xml)) == 0
    assert ET.fromstring(update(12, None, [], [], [], [])[1]).get("acked") is None

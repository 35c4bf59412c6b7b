"""protocol.py: text and payloads in, replies out. Pure: no server needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.xmpp.protocol import (
    COMMAND_NS,
    UPDATE_NS,
    LocalQuery,
    ParseError,
    PlayerReport,
    Request,
    make_command,
    parse_payload,
    parse_text,
    refusal,
)


def payload(**attrs: str) -> ET.Element:
    return ET.Element(f"{{{COMMAND_NS}}}command", attrs)


def test_text_commands():
    assert parse_text("move 1 -1") == Request("move", {"dx": 1, "dy": -1})
    assert parse_text("NE") == Request("move", {"dx": 1, "dy": -1})
    assert parse_text("attack 17") == Request("attack", {"target": 17})
    assert parse_text("transfer 5 100") == Request("transfer", {"to": 5, "amount": 100})
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


def test_refusal_and_one_report_per_tick():
    body, element = refusal("rate limited: ...", {"player": 1, "seq": 5, "op": "move"})
    assert body == "refused: rate limited: ..." and element.get("seq") == "5" and element.get("op") == "move"
    report = PlayerReport(12, rejected=[(5, "move", "bad_step")], chat=[(2, "bob", "hi")], left=[9])
    report.seen.append(dict(id=4, kind=1, x=3, y=4, name="rat", hp=20, max_hp=20, gold=1, respawn_tick=0,
                            item_type=0, amount=0))
    report.entered.add(4)
    body, update = report.render()
    assert body.splitlines() == ["move rejected: bad_step", "bob#2: hi", "tick 12: +rat#4 20/20hp at 3,4; -#9"]
    assert update.tag == f"{{{UPDATE_NS}}}update" and update.get("tick") == "12"
    assert [child.tag.split("}")[1] for child in update] == ["rejected", "chat", "entity", "left"]


def test_a_report_acks_the_players_highest_seq_even_when_nothing_else_happened():
    body, update = PlayerReport(12, acked=9).render()
    assert body == "" and update.get("acked") == "9" and len(update) == 0
    assert PlayerReport(12).render()[1].get("acked") is None

"""Command batches: JSON Lines in and out, shape checks with located errors, SeqGuard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.formats import batches
from pipeline.formats.batches import OP_FIELDS, SeqGuard, batch_commands_json, read_batches, write_batches
from pipeline.formats.jsoninput import Bad
from pipeline.formats.worldfile import load_world
from tests.support import player, world
from vocabulary.errors import InputError
from vocabulary.records import pack_commands
from vocabulary.types import Batch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EVERY_OP = [
    {"player": 9, "seq": 1, "op": "join", "zone": 1, "name": "zoë"},
    {"player": 9, "seq": 2, "op": "move", "dx": -1, "dy": 1},
    {"player": 9, "seq": 3, "op": "attack", "target": 2**64 - 1},
    {"player": 9, "seq": 4, "op": "pickup", "item": 12},
    {"player": 9, "seq": 5, "op": "use"},
    {"player": 9, "seq": 6, "op": "transfer", "to": 1, "amount": -(2**63)},
    {"player": 9, "seq": 7, "op": "say", "text": "hi ☃ \"quoted\"\n"},
    {"player": 9, "seq": 8, "op": "travel", "zone": 2**32 - 1},
    {"player": 2**62 - 1, "seq": 2**62, "op": "leave"},
]

# Line numbers matter: the malformed cases below name them.
BASE = [
    '{"tick": 1, "commands": [{"player": 1, "seq": 1, "op": "move", "dx": 1, "dy": 0}, '
    '{"player": 1, "seq": 2, "op": "say", "text": "hi"}]}',
    "",
    '{"tick": 3, "commands": []}',
    '{"tick": 7, "commands": [{"player": 2, "seq": 1, "op": "join", "zone": 1, "name": "bo"}, '
    '{"player": 2, "seq": 2, "op": "transfer", "to": 1, "amount": 5}, {"player": 2, "seq": 3, "op": "leave"}]}',
]


def write(tmp_path: Path, lines: list[str] | str | bytes) -> Path:
    path = tmp_path / "b.jsonl"
    if isinstance(lines, list):
        lines = "\n".join(lines) + "\n"
    path.write_bytes(lines.encode() if isinstance(lines, str) else lines)
    return path


def edit(line: int, old: str, new: str) -> list[str]:
    lines = list(BASE)
    assert lines[line - 1].count(old) == 1, f"{old!r} must occur once on line {line}"
    lines[line - 1] = lines[line - 1].replace(old, new)
    return lines


def batch(tick: int, commands: list[dict]) -> Batch:
    packed, text = pack_commands(commands)
    return Batch(tick=tick, commands=packed, text=text)


def same(a: Batch, b: Batch) -> bool:
    return (a.tick, a.commands, a.text) == (b.tick, b.commands, b.text)


# ------------------------------------------------------------ good files

def test_reads_base_with_sources_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, BASE)
    batches = list(read_batches(path, after_tick=0))
    assert [(b.tick, b.source) for b in batches] == [(1, f"{path}:1"), (3, f"{path}:3"), (7, f"{path}:4")]
    assert batch_commands_json(batches[0]) == json.loads(BASE[0])["commands"]
    assert batch_commands_json(batches[1]) == []
    assert same(batches[2], batch(7, json.loads(BASE[3])["commands"]))


def test_every_op_round_trips_exactly(tmp_path):
    original = [batch(2**62 - 2, EVERY_OP), batch(2**62 - 1, []), batch(2**62, EVERY_OP[:2])]   # up to the last tick
    path = tmp_path / "out.jsonl"
    write_batches(path, original)
    back = list(read_batches(path, after_tick=2**62 - 3))
    assert all(same(a, b) for a, b in zip(original, back)) and len(back) == 3
    assert batch_commands_json(back[0]) == EVERY_OP
    assert [list(c) for c in batch_commands_json(back[0])][1] == ["player", "seq", "op", "dx", "dy"]
    first = path.read_bytes()
    write_batches(path, back)
    assert path.read_bytes() == first
    assert "zoë" in first.decode("utf-8")


def test_well_typed_values_outside_rule_ranges_are_not_errors_here(tmp_path):
    # The reducers reject these with reason codes (bad_step, bad_amount, bad_text, bad_name).
    commands = [{"player": 1, "seq": 1, "op": "move", "dx": 2, "dy": -(2**63)},
                {"player": 1, "seq": 2, "op": "transfer", "to": 1, "amount": -3},
                {"player": 1, "seq": 3, "op": "say", "text": ""},
                {"player": 1, "seq": 4, "op": "join", "zone": 0, "name": "n" * 40}]
    path = write(tmp_path, [json.dumps({"tick": 1, "commands": commands})])
    [b] = read_batches(path, after_tick=0)
    assert batch_commands_json(b) == commands


def test_reading_is_streamed_errors_come_when_their_line_is_reached(tmp_path):
    path = write(tmp_path, edit(4, '"op": "leave"', '"op": "fly"'))
    batches = read_batches(path, after_tick=0)
    assert next(batches).tick == 1 and next(batches).tick == 3
    with pytest.raises(InputError) as info:
        next(batches)
    assert info.value.line == 4


def test_examples_load_validate_and_are_their_own_output(tmp_path):
    w = load_world(EXAMPLES / "tiny.world.json")
    guard = SeqGuard.for_world(w)
    batches = list(read_batches(EXAMPLES / "tiny.batches.jsonl", after_tick=w.tick))
    for b in batches:
        guard.check(b)
    ops = {c["op"] for b in batches for c in batch_commands_json(b)}
    assert ops == {"join", "leave", "move", "attack", "pickup", "use", "transfer", "say", "travel"}
    assert len(batches) >= 25
    write_batches(tmp_path / "again.jsonl", batches)
    assert (tmp_path / "again.jsonl").read_bytes() == (EXAMPLES / "tiny.batches.jsonl").read_bytes()


# ------------------------------------------------------------ malformed files

MALFORMED = [
    # (what, lines, after_tick, line, field, message fragment)
    ("tick not increasing", edit(3, '"tick": 3', '"tick": 1'), 0, 3, "tick",
     "tick 1 is not above the previous batch's tick 1 (line 1)"),
    ("tick not above the world's", BASE, 1, 1, "tick", "tick 1 is not above the world's tick 1"),
    ("tick not an integer", edit(3, '"tick": 3', '"tick": 3.0'), 0, 3, "tick", "tick must be an integer, got 3.0"),
    ("unknown op", edit(1, '"op": "say"', '"op": "shout"'), 0, 1, "commands[1].op",
     'op is "shout"; allowed: join, leave, move, attack, pickup, use, transfer, say'),
    ("missing op", edit(4, '"op": "leave"', '"x": 1'), 0, 4, "commands[2].op", "op is missing"),
    ("missing field", edit(1, ', "dy": 0', ""), 0, 1, "commands[0].dy", 'missing field "dy"'),
    ("missing join name", edit(4, ', "name": "bo"', ""), 0, 4, "commands[0].name", 'missing field "name"'),
    ("extra field", edit(4, '"op": "leave"', '"op": "leave", "dx": 1'), 0, 4, "commands[2].dx",
     'unknown field "dx"; a leave command has exactly: player, seq, op'),
    ("field of another op", edit(1, '"text": "hi"', '"text": "hi", "target": 3'), 0, 1, "commands[1].target",
     "unknown field"),
    ("non-integer dx", edit(1, '"dx": 1', '"dx": 1.5'), 0, 1, "commands[0].dx", "dx must be an integer, got 1.5"),
    ("string dx", edit(1, '"dx": 1', '"dx": "1"'), 0, 1, "commands[0].dx", 'got "1"'),
    ("bool dy", edit(1, '"dy": 0', '"dy": false'), 0, 1, "commands[0].dy", "got false"),
    ("dx beyond i64", edit(1, '"dx": 1', f'"dx": {2**63}'), 0, 1, "commands[0].dx", "out of range -2^63..2^63-1"),
    ("player 0", edit(1, '"player": 1, "seq": 1', '"player": 0, "seq": 1'), 0, 1, "commands[0].player",
     "player 0 is out of range 1..2^62-1"),
    ("seq 0", edit(1, '"seq": 1,', '"seq": 0,'), 0, 1, "commands[0].seq", "seq 0 is out of range 1..2^62"),
    ("seq beyond u64", edit(1, '"seq": 1,', f'"seq": {2**64},'), 0, 1, "commands[0].seq", "out of range"),
    ("negative target", edit(4, '"to": 1', '"to": -1'), 0, 4, "commands[1].to", "to -1 is out of range"),
    ("zone beyond u32", edit(4, '"zone": 1', f'"zone": {2**32}'), 0, 4, "commands[0].zone", "0..2^32-1"),
    ("name not a string", edit(4, '"name": "bo"', '"name": null'), 0, 4, "commands[0].name",
     "name must be a string, got null"),
    ("lone surrogate", edit(1, '"text": "hi"', '"text": "\\udc00"'), 0, 1, "commands[1].text", "surrogate"),
    ("command not an object", edit(3, "[]", "[7]"), 0, 3, "commands[0]", "a command must be a JSON object, got 7"),
    ("commands not an array", edit(3, "[]", "{}"), 0, 3, "commands", "commands must be an array"),
    ("missing commands", edit(3, ', "commands": []', ""), 0, 3, "commands", 'missing field "commands"'),
    ("extra top-level field", edit(3, '"tick": 3,', '"tick": 3, "note": "x",'), 0, 3, "note", "unknown field"),
    ("duplicate key", edit(1, '"dx": 1,', '"dx": 1, "dx": 0,'), 0, 1, "commands[0].dx", "appears more than once"),
    ("not an object", edit(3, '{"tick": 3, "commands": []}', "[3, []]"), 0, 3, None,
     "a batch line must be a JSON object"),
    ("bad JSON", edit(4, '"leave"}]}', '"leave"}]'), 0, 4, None, "invalid JSON"),
    ("two objects on a line", edit(3, "[]}", "[]}{}"), 0, 3, None, "invalid JSON: Extra data"),
    ("a gap of 2^62 ticks", edit(4, '"tick": 7,', '"tick": 4611686018427387904,'), 0, 4, "tick",
     "4,611,686,018,427,387,901 ticks after the previous batch's tick 3 (line 3)"),
    ("NUL in a join's name", edit(4, '"name": "bo"', '"name": "b\\u0000o"'), 0, 4, "commands[0].name",
     "name holds the control character U+0000"),
    ("nested a thousand deep", edit(3, "[]}", "[" + "[" * 1000 + "]" * 1001 + "}"), 0, 3, None,
     "invalid JSON: arrays and objects nested more than 64 deep (column 88)"),
]


@pytest.mark.parametrize("what,lines,after,line,field,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_batches_name_file_line_and_field(tmp_path, what, lines, after, line, field, message):
    path = write(tmp_path, lines)
    with pytest.raises(InputError) as info:
        list(read_batches(path, after_tick=after))
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert message in err.reason


def test_not_utf8_line(tmp_path):
    path = write(tmp_path, "\n".join(BASE).encode().replace(b'"hi"', b'"h\xc3"'))
    with pytest.raises(InputError) as info:
        list(read_batches(path, after_tick=0))
    assert info.value.line == 1 and "UTF-8" in info.value.reason


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        list(read_batches(tmp_path / "nope.jsonl", after_tick=0))
    assert info.value.file == str(tmp_path / "nope.jsonl")


# ------------------------------------------------------------ SeqGuard

def guard_for(**last_seqs: int) -> SeqGuard:
    w = world(*(player(int(k[1:]), last_seq=v) for k, v in last_seqs.items()))
    return SeqGuard.for_world(w)


def sourced(tick: int, commands: list[tuple[int, int]], source: str) -> Batch:
    b = batch(tick, [{"player": p, "seq": s, "op": "use"} for p, s in commands])
    return Batch(tick=b.tick, commands=b.commands, text=b.text, source=source)


def test_seq_guard_accepts_rising_seqs_and_unknown_players():
    guard = guard_for(p7=5, p8=0)
    guard.check(sourced(1, [(7, 6), (8, 1), (7, 9), (42, 1)], "b.jsonl:1"))
    guard.check(sourced(2, [(7, 10), (42, 2), (8, 2)], "b.jsonl:2"))


@pytest.mark.parametrize("batches,line,field,message", [
    ([[(7, 5)]], 1, "commands[0].seq", "seq 5 is not above player 7's last seq 5 (its last_seq in the world)"),
    ([[(7, 6), (8, 1), (7, 6)]], 1, "commands[2].seq",
     "seq 6 is not above player 7's last seq 6 (commands[0] on this line)"),
    ([[(7, 6)], [(8, 1)], [(7, 3)]], 3, "commands[0].seq", "seq 3 is not above player 7's last seq 6 (line 1)"),
    ([[(42, 4)], [(42, 4)]], 2, "commands[0].seq", "seq 4 is not above player 42's last seq 4 (line 1)"),
])
def test_seq_guard_rejects_stale_or_repeated_seqs(batches, line, field, message):
    guard = guard_for(p7=5, p8=0)
    with pytest.raises(InputError) as info:
        for i, commands in enumerate(batches, 1):
            guard.check(sourced(i, commands, f"b.jsonl:{i}"))
    err = info.value
    assert (err.file, err.line, err.field, err.reason) == ("b.jsonl", line, field, message)


def test_seq_guard_takes_any_lookup_and_a_failed_batch_leaves_no_trace():
    guard = SeqGuard(lambda player: {1: 10}.get(player))
    with pytest.raises(InputError) as info:
        guard.check(sourced(1, [(2, 5), (1, 3)], "x"))
    assert (info.value.file, info.value.line) == ("x", None)
    guard.check(sourced(1, [(2, 5), (1, 11)], "x"))  # the failed batch's seq 5 for player 2 was not kept


def test_player_ids_and_seqs_keep_to_the_world_files_range(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(f'{{"tick": 1, "commands": [{{"player": {2**62}, "seq": 1, "op": "leave"}}]}}\n')
    with pytest.raises(InputError, match=r"commands\[0\].player"):
        list(read_batches(path, after_tick=0))


_VALUES = st.one_of(st.integers(-(2**64), 2**64 + 5), st.sampled_from([0, 1, 2**62, 2**62 - 1, 2**63 - 1, -(2**63),
                                                                       2**64 - 1, 2**32, 1.0, True, None, "7"]))


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """A batch line as a program might write it: mostly right, sometimes a field wrong, missing,
    extra or repeated, a text with quotes, colons or a lone surrogate, or odd spacing."""
    commands = []
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(sorted(OP_FIELDS)))
        c: dict = {"player": draw(st.integers(1, 9)), "seq": draw(st.integers(1, 9)), "op": op}
        for field in OP_FIELDS[op]:
            c[field] = draw(st.sampled_from(['say ":" "hi"', "zoë", "\ud800", "", "x"])) \
                if field in ("name", "text") else draw(st.integers(-3, 3))
        if draw(st.integers(0, 3)) == 0:
            c[draw(st.sampled_from(["player", "seq", "dx", "to", "zone", "target"]))] = draw(_VALUES)
        if draw(st.integers(0, 9)) == 0:
            del c[draw(st.sampled_from(sorted(c)))]
        commands.append(c)
    text = json.dumps({"tick": draw(st.sampled_from([1, 2, 2**62, 2**62 + 1, 0])), "commands": commands},
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")])))
    if draw(st.integers(0, 7)) == 0 and '"seq":' in text:
        text = text.replace('"seq":', '"seq": 3, "seq":', 1)        # a repeated key
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(raw=_lines())
def test_the_fast_path_reads_a_line_exactly_as_the_checked_path_or_leaves_it_to_it(raw):
    fast = batches._fast_line(raw)
    try:
        tick, commands = batches.parse_batch_line(raw, (-1, 0))     # tick order is read_batches' to check
    except Bad:
        assert fast is None
        return
    assert fast is None or fast == (tick, *pack_commands(commands))

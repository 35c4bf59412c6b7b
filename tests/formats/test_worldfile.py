"""World files: strict loading with located errors, deterministic dumps, hashing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from pipeline.formats.worldfile import dump_world, load_world, world_json
from tests.support import canonical, item, npc, player, world
from vocabulary.errors import InputError
from vocabulary.hashing import canonical_bytes, world_from_canonical, world_hash
from vocabulary.records import ItemType, Kind, pack_entity, pack_zone
from vocabulary.types import WorldData

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny.world.json"

# Line numbers matter: the malformed cases below name them.
BASE = """\
{
  "format": "fluxworld.world/1",
  "seed": 42, "tick": 0, "next_id": 1000,
  "zones": [{"id": 1, "width": 64, "height": 64, "spawn_x": 32, "spawn_y": 32},
            {"id": 2, "width": 8, "height": 8, "spawn_x": 0, "spawn_y": 0}],
  "entities": [
    {"id": 1, "kind": "player", "zone": 1, "x": 3, "y": 4, "hp": 100, "max_hp": 100,
     "attack": 10, "defense": 2, "gold": 50, "potions": 0, "next_action_tick": 0,
     "respawn_tick": 0, "online": true, "name": "ada", "last_seq": 0},
    {"id": 2, "kind": "npc", "zone": 1, "x": 9, "y": 9, "hp": 30, "max_hp": 30,
     "attack": 6, "defense": 1, "gold": 5, "potions": 0, "next_action_tick": 0,
     "respawn_tick": 0, "name": "rat", "home_x": 9, "home_y": 9},
    {"id": 3, "kind": "item", "zone": 1, "x": 5, "y": 5, "item_type": "gold", "amount": 7},
    {"id": 4, "kind": "item", "zone": 2, "x": 7, "y": 7, "item_type": "potion", "amount": 1}
  ]
}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "w.json") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"{old!r} must occur once in BASE"
    return BASE.replace(old, new)


# ------------------------------------------------------------ good files

def test_base_loads_into_the_records_pack_entity_builds(tmp_path):
    expected = WorldData(
        seed=42, tick=0, next_id=1000,
        zones=pack_zone(1, 64, 64, 32, 32) + pack_zone(2, 8, 8, 0, 0),
        entities=b"".join([
            pack_entity(id=1, kind=Kind.player, zone=1, x=3, y=4, hp=100, max_hp=100, attack=10,
                        defense=2, gold=50, online=1, name="ada"),
            pack_entity(id=2, kind=Kind.npc, zone=1, x=9, y=9, hp=30, max_hp=30, attack=6, defense=1,
                        gold=5, name="rat", home_x=9, home_y=9),
            pack_entity(id=3, kind=Kind.item, zone=1, x=5, y=5, item_type=ItemType.gold, amount=7),
            pack_entity(id=4, kind=Kind.item, zone=2, x=7, y=7, item_type=ItemType.potion, amount=1),
        ]))
    assert load_world(write(tmp_path, BASE)) == expected


def test_example_world_is_its_own_dump():
    w = load_world(EXAMPLE)
    assert world_json(w) == EXAMPLE.read_text(encoding="utf-8")


def rich_world() -> WorldData:
    big = 2**62
    return world(
        player(9, 1, 2, name="zoë ☃", gold=big - 3000, last_seq=big, next_action_tick=big, potions=10**6),
        player(3, 63, 63, hp=0, respawn_tick=17, online=0, name="x" * 32),
        npc(5, 4, 4, home_x=60, home_y=1, max_hp=10**6, hp=1, attack=0, defense=10**6),
        npc(7, 0, 0, hp=0, respawn_tick=3, gold=999),
        item(2, 5, 5, gold=1000), item(4, 6, 6), item(12, 0, 1, zone=7, gold=1),
        zones=[dict(id=7, width=1, height=2, spawn_x=0, spawn_y=1),
               dict(id=1, width=64, height=64, spawn_x=0, spawn_y=63),
               dict(id=2**32 - 1, width=65535, height=65535, spawn_x=65534, spawn_y=65534)],
        seed=big, tick=big, next_id=big)


def test_dump_then_load_round_trips_exactly(tmp_path):
    w = rich_world()
    path = tmp_path / "out.json"
    dump_world(w, path)
    assert load_world(path) == w
    first = path.read_bytes()
    dump_world(load_world(path), path)
    assert path.read_bytes() == first
    assert "zoë ☃" in first.decode("utf-8")  # names stay readable, not \u-escaped


def test_dump_sorts_zones_and_entities_by_id_whatever_the_file_order(tmp_path):
    doc = json.loads(BASE)
    doc["entities"].reverse()
    doc["zones"].reverse()
    w = load_world(write(tmp_path, json.dumps(doc)))
    assert w == load_world(write(tmp_path, BASE, "base.json"))
    text = world_json(w)
    ids = [json.loads(line.rstrip(","))["id"] for line in text.splitlines() if line.startswith('    {"id"')]
    assert ids == [1, 2, 1, 2, 3, 4]  # zones, then entities


def test_dump_has_one_zone_or_entity_per_line_and_empty_lists_inline():
    text = world_json(world(zones=[dict(id=1, width=4, height=4, spawn_x=0, spawn_y=0)], seed=5))
    assert text == ('{\n  "format": "fluxworld.world/2",\n  "seed": 5, "tick": 0, "next_id": 1,\n'
                    '  "zones": [\n    {"id": 1, "width": 4, "height": 4, "spawn_x": 0, "spawn_y": 0, '
                    f'"next_id": {2**62 + 2**30}}}\n  ],\n'
                    '  "entities": [],\n  "transit": []\n}\n')


def test_dump_refuses_records_it_could_not_load_back():
    for bad in (pack_entity(id=1, kind=Kind.item, item_type=ItemType.gold, amount=3, hp=5),
                pack_entity(id=1, kind=Kind.player, hp=1, max_hp=1, name="a", amount=2),
                pack_entity(id=1, kind=9)):
        with pytest.raises(ValueError, match="entity 1"):
            world_json(WorldData(seed=0, tick=0, next_id=2, zones=pack_zone(0, 1, 1, 0, 0), entities=bad))


def test_canonical_encoding_and_hash():
    w = rich_world()
    data = canonical_bytes(w)
    assert data == canonical(w)
    assert world_hash(w) == hashlib.sha256(data).hexdigest()
    assert world_from_canonical(data) == w
    assert world_from_canonical(memoryview(data)) == w
    with pytest.raises(ValueError):
        world_from_canonical(data[:-1])
    with pytest.raises(ValueError):
        world_from_canonical(data[:20])


def test_a_large_world_loads_fast(tmp_path):
    n = 100_000
    entities = [player(i, i % 64, i // 64 % 64) if i % 2 else npc(i, 5, 5) for i in range(1, n + 1)]
    w = world(*entities, next_id=n + 1)
    path = tmp_path / "big.json"
    dump_world(w, path)
    start = time.perf_counter()
    assert load_world(path) == w
    # ~0.8 s on the 2-core reference machine; the bound only catches a lost fast path.
    assert time.perf_counter() - start < 5


# ------------------------------------------------------------ malformed files

MALFORMED = [
    # (what, file text, line, field, message fragment)
    ("missing field", edit('"defense": 1, "gold": 5, "potions": 0, ', '"defense": 1, "gold": 5, '),
     10, "entities[1].potions", 'missing field "potions"'),
    ("missing player field", edit('"name": "ada", "last_seq": 0}', '"name": "ada"}'),
     7, "entities[0].last_seq", 'missing field "last_seq"'),
    ("missing kind", edit('{"id": 3, "kind": "item", ', '{"id": 3, '), 13, "entities[2].kind", "kind is missing"),
    ("unknown field", edit('"amount": 7}', '"amount": 7, "color": "red"}'),
     13, "entities[2].color", 'unknown field "color"'),
    ("player field on an npc", edit('"home_y": 9}', '"home_y": 9, "online": true}'),
     12, "entities[1].online", 'unknown field "online"'),
    ("unknown top-level field", edit('"next_id": 1000,', '"next_id": 1000, "extra": 1,'), 3, "extra", "unknown field"),
    ("wrong type", edit('"name": "ada"', '"name": 7'), 9, "entities[0].name", "name must be a string, got 7"),
    ("bool as int", edit('"hp": 30,', '"hp": true,'), 10, "entities[1].hp", "hp must be an integer, got true"),
    ("float as int", edit('"amount": 7}', '"amount": 7.0}'), 13, "entities[2].amount", "got 7.0"),
    ("string as int", edit('"seed": 42', '"seed": "42"'), 3, "seed", 'seed must be an integer, got "42"'),
    ("NaN", edit('"seed": 42', '"seed": NaN'), 3, "seed", "got NaN"),
    ("int as bool", edit('"online": true', '"online": 1'), 9, "entities[0].online", "true or false, got 1"),
    ("negative", edit('"seed": 42', '"seed": -1'), 3, "seed", "seed -1 is out of range 0..2^62"),
    ("tick above 2^62", edit('"tick": 0', f'"tick": {2**62 + 1}'), 3, "tick", "out of range 0..2^62"),
    ("stat above 10^6", edit('"attack": 10,', '"attack": 1000001,'), 8, "entities[0].attack",
     "attack 1000001 is out of range 0..1000000"),
    ("max_hp 0", edit('"max_hp": 30,', '"max_hp": 0,'), 10, "entities[1].max_hp", "out of range 1..1000000"),
    ("hp above max_hp", edit('"hp": 30,', '"hp": 31,'), 10, "entities[1].hp", "hp 31 is above max_hp 30"),
    ("living with hp 0", edit('"hp": 100,', '"hp": 0,'), 7, "entities[0].hp", "living entity"),
    ("dead with hp", edit('"respawn_tick": 0, "online"', '"respawn_tick": 5, "online"'), 7, "entities[0].hp",
     "a dead entity (respawn_tick > 0) has hp 0"),
    ("id 0", edit('{"id": 1, "kind"', '{"id": 0, "kind"'), 7, "entities[0].id", "id 0 is out of range 1..2^63-2"),
    ("duplicate id", edit('{"id": 3, "kind"', '{"id": 2, "kind"'), 13, "entities[2].id",
     "id 2 is used twice (also by entities[1])"),
    ("id not below next_id", edit('"next_id": 1000', '"next_id": 4'), 14, "entities[3].id",
     "id 4 is not below next_id 4"),
    ("zone does not exist", edit('"zone": 2, "x": 7', '"zone": 5, "x": 7'), 14, "entities[3].zone",
     "zone 5 does not exist (zones: 1, 2)"),
    ("x outside zone", edit('"x": 7, "y": 7', '"x": 8, "y": 7'), 14, "entities[3].x",
     "x 8 is outside zone 2: width 8, so x is 0..7"),
    ("y outside any zone", edit('"x": 7, "y": 7', '"x": 7, "y": 70000'), 14, "entities[3].y", "out of range"),
    ("home outside zone", edit('"home_y": 9}', '"home_y": 64}'), 12, "entities[1].home_y", "outside zone 1"),
    ("zone width 0", edit('"width": 64', '"width": 0'), 4, "zones[0].width", "width 0 is out of range 1..65535"),
    ("spawn outside its zone", edit('"spawn_x": 0,', '"spawn_x": 8,'), 5, "zones[1].spawn_x", "outside the zone"),
    ("duplicate zone id", edit('{"id": 2, "width"', '{"id": 1, "width"'), 5, "zones[1].id", "used twice"),
    ("zone id above u32", edit('{"id": 2, "width"', f'{{"id": {2**32}, "width"'), 5, "zones[1].id",
     "out of range 0..2^32-1"),
    ("missing zone field", edit(', "spawn_y": 32}', "}"), 4, "zones[0].spawn_y", "missing field"),
    ("name too long", edit('"name": "ada"', '"name": "' + "é" * 17 + '"'), 9, "entities[0].name",
     "name is 34 bytes of UTF-8; allowed 1..32"),
    ("empty name", edit('"name": "rat"', '"name": ""'), 12, "entities[1].name", "name is 0 bytes"),
    ("lone surrogate in name", edit('"name": "ada"', '"name": "a\\ud800"'), 9, "entities[0].name", "surrogate"),
    ("potion amount", edit('"potion", "amount": 1', '"potion", "amount": 2'), 14, "entities[3].amount",
     "a potion's amount is 1, got 2"),
    ("gold item amount 0", edit('"amount": 7}', '"amount": 0}'), 13, "entities[2].amount", "got 0"),
    ("unknown item type", edit('"item_type": "gold"', '"item_type": "sword"'), 13, "entities[2].item_type",
     'item_type must be "gold" or "potion", got "sword"'),
    ("unknown kind", edit('"kind": "npc"', '"kind": "dragon"'), 10, "entities[1].kind",
     'kind is "dragon"; allowed: "player", "npc", "item"'),
    ("unhashable kind", edit('"kind": "npc"', '"kind": ["npc"]'), 10, "entities[1].kind", "kind is an array"),
    ("total gold above 2^62", edit('"gold": 5,', f'"gold": {2**62},'), 11, "entities[1].gold",
     "total gold reaches 4611686018427387954, above 2^62"),
    ("duplicate key", edit('"defense": 2,', '"defense": 2, "defense": 3,'), 8, "entities[0].defense",
     'field "defense" appears more than once'),
    ("wrong format", edit("fluxworld.world/1", "fluxworld.world/3"), 2, "format",
     '"format" is "fluxworld.world/3"; a world file starts with "format": "fluxworld.world/2" '
     '(or the older "fluxworld.world/1")'),
    ("next_id from play", edit('"next_id": 1000', f'"next_id": {2**62 + 1}'), 3, "next_id",
     "out of range 0..2^62"),
    ("no format", edit('  "format": "fluxworld.world/1",\n', ""), 1, "format", '"format" is missing'),
    ("entity not an object", edit('{"id": 4, "kind": "item", "zone": 2, "x": 7, "y": 7, "item_type": "potion", '
                                  '"amount": 1}', "[4]"), 14, "entities[3]", "an entity must be a JSON object"),
    ("zones not an array", edit('"zones": [', '"zones": {"a": [').replace('"spawn_y": 0}],', '"spawn_y": 0}]},'),
     4, "zones", "zones must be an array, got an object"),
    ("zone not an object", edit('"zones": [', '"zones": [[').replace('"spawn_y": 0}],', '"spawn_y": 0}]],'),
     4, "zones[0]", "a zone must be a JSON object, got an array"),
    ("missing comma", edit('"home_y": 9},', '"home_y": 9}'), 13, None, "invalid JSON: Expecting ',' delimiter"),
    ("trailing comma", edit('"amount": 1}\n', '"amount": 1},\n'), 15, None, "invalid JSON"),
    ("top level not an object", "[1, 2]\n", 1, None, "a world file must be a JSON object, got an array"),
    ("empty file", "", 1, None, "invalid JSON"),
    ("control character in a name", edit('"rat"', '"rat\\u0001"'), 12, "entities[1].name",
     "name holds the control character U+0001 (at character 4)"),
    ("control character in a key", edit('"home_y": 9}', '"home_y": 9, "\\u0007x": 1}'), 12, 'entities[1]."\\u0007x"',
     'unknown field "\\u0007x"'),
    ("nested a thousand deep", edit('"amount": 1}\n', '"amount": 1, "x": ' + "[" * 1000 + "]" * 1000 + "}\n"), 14,
     None, "invalid JSON: arrays and objects nested more than 64 deep"),
]


@pytest.mark.parametrize("what,text,line,field,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_world_files_name_file_line_and_field(tmp_path, what, text, line, field, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_world(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert message in err.reason
    assert str(err).startswith(f"{path}:{line}: " + (f"{field}: " if field else ""))


def test_not_utf8_names_its_line(tmp_path):
    path = write(tmp_path, BASE.encode().replace(b'"rat"', b'"r\xffat"'))
    with pytest.raises(InputError) as info:
        load_world(path)
    assert (info.value.line, info.value.field) == (12, None)
    assert "UTF-8" in info.value.reason


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        load_world(tmp_path / "nope.json")
    assert info.value.file == str(tmp_path / "nope.json") and info.value.line is None


def test_a_huge_integer_is_input_error_with_its_line(tmp_path):
    with pytest.raises(InputError, match="more than 4300 digits") as info:
        load_world(write(tmp_path, edit('"amount": 7}', '"amount": 1' + "0" * 5000 + "}")))
    assert info.value.line == 13


def test_duplicate_key_found_even_when_keys_are_spaced_oddly(tmp_path):
    # `"key" :` defeats the cheap key count, so the full duplicate scan runs.
    spaced = BASE.replace('": ', '" : ')
    load_world(write(tmp_path, spaced))
    with pytest.raises(InputError) as info:
        load_world(write(tmp_path, spaced.replace('"seed" : 42,', '"seed" : 42, "seed" : 43,')))
    assert (info.value.line, info.value.field) == (3, "seed")


def test_duplicate_key_found_when_spaced_and_plain_keys_mix(tmp_path):
    text = edit('"seed": 42,', '"seed" : 42, "seed": 43,')
    with pytest.raises(InputError) as info:
        load_world(write(tmp_path, text))
    assert (info.value.line, info.value.field) == (3, "seed")


def test_escaped_quotes_in_names_do_not_hide_or_invent_duplicates(tmp_path):
    load_world(write(tmp_path, edit('"name": "ada"', r'"name": "a\": b"')))
    with pytest.raises(InputError, match="appears more than once"):
        load_world(write(tmp_path, edit('"name": "ada"', r'"name": "a\": b", "name": "c"')))

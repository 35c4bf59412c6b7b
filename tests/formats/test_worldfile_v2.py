"""World files, version 2: zones' next_id and what is in flight; version 1 still read (docs/rules.md "World files")."""

from __future__ import annotations

import pytest

from pipeline.formats.worldfile import dump_world, load_world, world_json
from schema._generated.layout import TransitKind
from tests.formats.test_worldfile import BASE, write
from tests.support import item, npc, player, world
from vocabulary.errors import InputError
from vocabulary.hashing import canonical_bytes, world_from_canonical
from vocabulary.ids import zone_first_id, zone_id_end
from vocabulary.records import pack_entity, pack_transit, pack_zone

Z2 = zone_first_id(2)

V2 = f"""\
{{
  "format": "fluxworld.world/2",
  "seed": 42, "tick": 6, "next_id": 1000,
  "zones": [
    {{"id": 1, "width": 64, "height": 64, "spawn_x": 32, "spawn_y": 32, "next_id": {zone_first_id(1)}}},
    {{"id": 2, "width": 8, "height": 8, "spawn_x": 0, "spawn_y": 0, "next_id": {Z2 + 2}}}
  ],
  "entities": [
    {{"id": 1, "kind": "player", "zone": 1, "x": 3, "y": 4, "hp": 100, "max_hp": 100, "attack": 10, "defense": 2, "gold": 50, "potions": 0, "next_action_tick": 0, "respawn_tick": 0, "online": true, "name": "ada", "last_seq": 0}},
    {{"id": {Z2 + 1}, "kind": "item", "zone": 2, "x": 7, "y": 7, "item_type": "gold", "amount": 7}}
  ],
  "transit": [
    {{"kind": "traveller", "arrive_tick": 7, "entity": {{"id": 5, "kind": "player", "zone": 2, "x": 0, "y": 0, "hp": 90, "max_hp": 100, "attack": 10, "defense": 2, "gold": 3, "potions": 1, "next_action_tick": 6, "respawn_tick": 0, "online": true, "name": "bo", "last_seq": 9}}}},
    {{"kind": "credit", "arrive_tick": 7, "from": 1, "to": 77, "amount": 4}},
    {{"kind": "refund", "arrive_tick": 7, "from": 99, "to": 5, "amount": 2}}
  ]
}}
"""  # noqa: E501  (one entity a line, as dumps write them)


def edit(old: str, new: str) -> str:
    assert V2.count(old) == 1, f"{old!r} must occur once in V2"
    return V2.replace(old, new)


def test_version_2_loads_zones_next_id_and_transit_in_order(tmp_path):
    w = load_world(write(tmp_path, V2))
    assert w.zones == pack_zone(1, 64, 64, 32, 32) + pack_zone(2, 8, 8, 0, 0, Z2 + 2)
    traveller = pack_entity(id=5, kind=0, zone=2, hp=90, max_hp=100, attack=10, defense=2, gold=3, potions=1,
                            next_action_tick=6, online=1, name="bo", last_seq=9)
    assert w.transit == b"".join([
        pack_transit(TransitKind.traveller, 7, to_id=5, record=traveller),
        pack_transit(TransitKind.credit, 7, from_id=1, to_id=77, amount=4),
        pack_transit(TransitKind.refund, 7, from_id=99, to_id=5, amount=2)])


def test_version_2_round_trips_and_dumps_itself(tmp_path):
    w = load_world(write(tmp_path, V2))
    assert world_json(w) == V2
    path = tmp_path / "out.json"
    dump_world(w, path)
    assert load_world(path) == w
    assert world_from_canonical(canonical_bytes(w)) == w


def test_version_1_reads_as_zones_that_created_nothing_and_nothing_in_flight(tmp_path):
    w = load_world(write(tmp_path, BASE))
    assert w.zones == pack_zone(1, 64, 64, 32, 32, zone_first_id(1)) + pack_zone(2, 8, 8, 0, 0, Z2)
    assert w.transit == b""
    assert world_json(w).startswith('{\n  "format": "fluxworld.world/2",')


def test_a_built_world_with_everything_round_trips(tmp_path):
    last = 2**32 - 1
    w = world(player(1, gold=5), npc(2, 1, 1), item(zone_id_end(last) - 1, 0, 0, zone=last, gold=3),
              zones=[dict(id=1, width=4, height=4, spawn_x=0, spawn_y=0),
                     dict(id=last, width=2, height=2, spawn_x=1, spawn_y=1, next_id=zone_id_end(last))],
              tick=2**62, transit=pack_transit(TransitKind.credit, 2**62 + 1, from_id=1, to_id=2**64 - 1, amount=1))
    path = tmp_path / "w.json"
    dump_world(w, path)
    assert load_world(path) == w


MALFORMED = [
    ("zone next_id below its range", edit(f'"next_id": {zone_first_id(1)}}}', '"next_id": 5}'), 5,
     "zones[0].next_id", "next_id 5 is out of range"),
    ("an id from play past its zone's next_id", edit(f'{{"id": {Z2 + 1}, "kind"', f'{{"id": {Z2 + 2}, "kind"'), 10,
     "entities[1].id", f"not below zone 2's next_id {Z2 + 2}"),
    ("an id from play in no zone's range", edit(f'{{"id": {Z2 + 1}, "kind"', f'{{"id": {zone_first_id(9)}, "kind"'),
     10, "entities[1].id", "zone 9, which does not exist"),
    ("arrive_tick not the next tick", edit('"credit", "arrive_tick": 7', '"credit", "arrive_tick": 8'), 14,
     "transit[1].arrive_tick", "not the world's tick + 1 (7)"),
    ("a traveller after the gold", edit('"refund", "arrive_tick": 7, "from": 99, "to": 5, "amount": 2}',
                                        '"traveller", "arrive_tick": 7, "entity": {}}'), 15, "transit[2].entity",
     "travellers come first"),
    ("a traveller away from the spawn point",
     edit('"zone": 2, "x": 0, "y": 0, "hp": 90', '"zone": 2, "x": 1, "y": 0, "hp": 90'), 13,
     "transit[0].entity.x", "spawn point, 0,0, not 1,0"),
    ("an offline traveller", edit('"online": true, "name": "bo"', '"online": false, "name": "bo"'), 13,
     "transit[0].entity.online", "online and alive"),
    ("a traveller also in the world", edit('"entity": {"id": 5,', '"entity": {"id": 1,'), 13,
     "transit[0].entity.id", "id 1 is used twice (also by entities[0])"),
    ("a credit from no player", edit('"from": 1, "to": 77', '"from": 3, "to": 77'), 14, "transit[1].from",
     "from 3 is no player of the world"),
    ("a refund to no player", edit('"from": 99, "to": 5', '"from": 99, "to": 6'), 15, "transit[2].to",
     "to 6 is no player of the world"),
    ("an unknown kind", edit('"kind": "credit"', '"kind": "gift"'), 14, "transit[1].kind",
     'kind is "gift"; allowed: "credit", "refund", "traveller"'),
    ("an amount of 0", edit('"to": 77, "amount": 4', '"to": 77, "amount": 0'), 14, "transit[1].amount",
     "out of range 1..2^62"),
    ("gold in flight past 2^62", edit('"to": 77, "amount": 4', f'"to": 77, "amount": {2**62}'), 14,
     "transit[1].amount", "total gold reaches"),
    ("no transit in version 2", edit('  ],\n  "transit": [', '  ],\n  "transfers": ['),
     12, "transfers", 'unknown field "transfers"'),
]


@pytest.mark.parametrize("what,text,line,field,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_version_2_names_file_line_and_field(tmp_path, what, text, line, field, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_world(path)
    e = err.value
    assert (e.file, e.line, e.field) == (str(path), line, field), str(e)
    assert message in e.reason, e.reason


def test_version_1_ids_from_play_are_refused(tmp_path):
    text = BASE.replace('"next_id": 1000', f'"next_id": {2**62}')
    text = text.replace('{"id": 3, "kind"', f'{{"id": {2**62 + 5}, "kind"')
    with pytest.raises(InputError, match="zone 0"):
        load_world(write(tmp_path, text))


def test_the_seq_guard_knows_the_last_seq_of_a_traveller(tmp_path):
    from pipeline.formats.batches import SeqGuard
    from vocabulary.records import pack_commands
    from vocabulary.types import Batch

    guard = SeqGuard.for_world(load_world(write(tmp_path, V2)))
    stale, fresh = ([{"player": 5, "seq": seq, "op": "use"}] for seq in (9, 10))
    with pytest.raises(InputError, match="seq"):
        guard.check(Batch(7, *pack_commands(stale)))
    guard.check(Batch(7, *pack_commands(fresh)))

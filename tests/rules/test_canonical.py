"""The canonical encoding the world hash is taken over (docs/rules.md, "World hash")."""

import struct

from pipeline.engines.frames import WORLD_FRAME
from tests.rules.kit import cmd
from tests.support import ZONE, Session, canonical, item, npc, player, world, world_frame
from vocabulary.ids import zone_first_id
from vocabulary.records import pack_entity

ZONE2 = dict(id=2, width=20, height=10, spawn_x=3, spawn_y=4)
ZONE0 = dict(id=0, width=5, height=5, spawn_x=0, spawn_y=0)


def test_a_loaded_world_encodes_as_the_reference_says(make_engine):
    w = world(player(1, 5, 5, gold=3), npc(4, 9, 9), item(2, 1, 1, gold=6), item(3, 2, 2),
              zones=[ZONE2, ZONE, ZONE0], seed=2**62, tick=17, next_id=90)
    s = Session(make_engine(), w)
    assert bytes(s.engine.canonical()) == canonical(w)


def test_an_empty_world(make_engine):
    w = world(zones=[ZONE], seed=5)
    s = Session(make_engine(), w)
    assert bytes(s.engine.canonical()) == struct.pack("<QQQI", 5, 0, 1, 1) + w.zones + struct.pack("<II", 0, 0)


def test_the_encoding_follows_the_ticks(start):
    s = start(player(1, 5, 5), player(2, 6, 5, hp=4, gold=9), item(3, 50, 50), zones=[ZONE, ZONE2],
              seed=11, next_id=10)
    s.step(cmd(1, 1, "attack", target=2), cmd(5, 1, "join", zone=2, name="eve"))
    s.step(cmd(1, 2, "pickup", item=zone_first_id(1)), cmd(1, 3, "move", dx=-1, dy=1))
    expected = world(
        player(1, 4, 6, gold=9, last_seq=3, next_action_tick=3),
        player(2, 6, 5, hp=0, respawn_tick=11, gold=0),
        item(3, 50, 50),
        player(5, 3, 4, zone=2, name="eve", last_seq=1),
        zones=[dict(ZONE, next_id=zone_first_id(1) + 1), ZONE2], seed=11, tick=2, next_id=10)
    assert bytes(s.engine.canonical()) == canonical(expected)


def test_project_without_replace_upserts_entities_and_keeps_header_and_zones(start):
    s = start(player(1, 5, 5), player(7, 9, 9), seed=3, tick=4, next_id=20)
    upsert = WORLD_FRAME.encode({
        "seed": 99, "tick": 99, "next_id": 99, "replace": 0, "zones": b"",
        "entities": pack_entity(**player(7, 1, 2, gold=5)) + pack_entity(**item(2, 3, 3))})
    s.engine.project(upsert)
    expected = world(player(1, 5, 5), item(2, 3, 3), player(7, 1, 2, gold=5),
                     seed=3, tick=4, next_id=20)
    assert bytes(s.engine.canonical()) == canonical(expected)
    # and the upserted entities are indexed: the new item can be picked up where it is
    result, effects = s.step(cmd(7, 1, "move", dx=1, dy=1), cmd(7, 2, "pickup", item=2))
    assert [e["type"] for e in effects if e["type"] == "rejected"] == []
    assert s.entities()[7]["potions"] == 1


def test_project_with_replace_discards_the_old_world(make_engine):
    engine = make_engine()
    engine.project(world_frame(world(player(1), player(2), tick=5)))
    w = world(npc(3, 4, 4), zones=[ZONE2], seed=8, tick=1)
    engine.project(world_frame(w))
    assert bytes(engine.canonical()) == canonical(w)


def test_same_inputs_give_same_bytes_in_any_engine_instance(make_engine):
    w = world(player(1, 5, 5), npc(2, 8, 8, gold=3), player(3, 7, 5, hp=9, gold=4), item(4, 6, 6))
    outputs = []
    for _ in range(2):
        s = Session(make_engine(), w)
        results = [s.step(cmd(1, 1, "attack", target=3))[0], s.step(cmd(1, 2, "say", text="x"))[0],
                   s.step()[0]]
        outputs.append((results, bytes(s.engine.canonical())))
    assert outputs[0] == outputs[1]

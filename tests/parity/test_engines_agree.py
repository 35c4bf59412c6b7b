"""Both engines, random worlds and batches: identical results, and the invariants hold.

Runs the two engines whatever FLUXWORLD_ENGINE says: parity needs both.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.engines.engine import create_engine
from pipeline.view import WorldView
from schema._generated.layout import ENTITY_SIZE, ZONE_SIZE
from tests.parity.strategies import batches, worlds
from tests.rules import oracle
from tests.rules.kit import sightings
from tests.support import Session
from vocabulary.hashing import canonical_bytes, world_from_canonical
from vocabulary.records import TRANSIT, ItemType, Kind, TransitKind, unpack_entity, unpack_transit, unpack_zone
from vocabulary.types import WorldData

EXAMPLES = int(os.environ.get("FLUXWORLD_PARITY_EXAMPLES", "200"))
CROWD_EXAMPLES = max(1, EXAMPLES // 4)


class Decoded:
    """A world's canonical encoding, decoded: entities by id, zones, and transit in order."""

    def __init__(self, canonical: bytes) -> None:
        w: WorldData = world_from_canonical(canonical)
        ents = [unpack_entity(w.entities[i:i + ENTITY_SIZE]) for i in range(0, len(w.entities), ENTITY_SIZE)]
        ids = [e["id"] for e in ents]
        assert ids == sorted(set(ids)), "ids unique and ascending"
        self.entities = {e["id"]: e for e in ents}
        self.zones = [unpack_zone(w.zones[i:i + ZONE_SIZE]) for i in range(0, len(w.zones), ZONE_SIZE)]
        self.transit = [unpack_transit(w.transit[i:i + TRANSIT.size]) for i in range(0, len(w.transit), TRANSIT.size)]
        self.flying = {t["to_id"]: t["record"] for t in self.transit if t["kind"] == TransitKind.traveller}


def total_gold(world: Decoded) -> int:
    """Gold where it is: players, npcs, gold items, and in flight."""
    return sum(e["amount"] if e["kind"] == Kind.item and e["item_type"] == ItemType.gold else e["gold"]
               for e in world.entities.values()) + sum(t["amount"] for t in world.transit) \
        + sum(e["gold"] for e in world.flying.values())


def check_invariants(world: Decoded, gold: int) -> None:
    entities = world.entities
    by_zone = {z["id"]: z for z in world.zones}
    assert total_gold(world) == gold, "gold is conserved, counting what is in flight"
    for e in entities.values():
        z = by_zone[e["zone"]]
        assert 0 <= e["x"] < z["width"] and 0 <= e["y"] < z["height"], f"entity {e['id']} inside its zone"
        assert 0 <= e["hp"] <= e["max_hp"] or e["kind"] == Kind.item, f"entity {e['id']} hp in range"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_engines_agree_and_invariants_hold(data):
    world = data.draw(worlds())
    run_both(world, data.draw(batches(world, ticks=data.draw(st.integers(1, 14)))))


@settings(max_examples=CROWD_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_engines_agree_in_crowds(data):
    world = data.draw(worlds(crowd=True))
    run_both(world, data.draw(batches(world, ticks=data.draw(st.integers(1, 6)), most=40)))


def run_both(world, ticks):
    """Both engines through the ticks: identical results, the rule's sightings, invariants."""
    wasm, python = Session(create_engine("wasm"), world), Session(create_engine("python"), world)
    view = WorldView.from_world(world)
    now = Decoded(canonical_bytes(world))
    gold = total_gold(now)
    ever_created = set(now.entities) | set(now.flying)
    for number, commands in enumerate(ticks, start=1):
        before = now
        a, a_effects = wasm.step(*commands)
        b, b_effects = python.step(*commands)
        assert a_effects == b_effects, f"tick {number}: effects differ"
        assert a == b, f"tick {number}: results differ"
        world_a, world_b = bytes(wasm.engine.canonical()), bytes(python.engine.canonical())
        assert world_a == world_b, f"tick {number}: worlds differ"
        view = view.apply(a)
        assert canonical_bytes(view.to_world()) == world_a, f"tick {number}: the view drifted from the engine"
        now = Decoded(world_a)
        assert sightings(a_effects) == oracle.sightings(before.entities, now.entities, before.flying, now.flying), \
            f"tick {number}: not the rule's sightings"
        check_invariants(now, gold)
        created = {e for e in now.entities if e not in ever_created}
        for e in created:
            assert now.entities[e]["kind"] == Kind.player or e >= world.next_id, "rule-created ids are fresh"
        ever_created |= created


def test_engines_agree_where_a_campaign_once_parted_them():
    """Issue 13's two disagreements, as fixed cases: an id taken again on the same spot within a tick
    (player 2 picks up item 1, then a join creates player 1 there: `enter`, as the rules say), and a
    long jump (a dead player respawning 65,534 cells away), which once cost fuel by the area between."""
    from tests.support import item, player, world

    one_cell = [dict(id=1, width=1, height=1, spawn_x=0, spawn_y=0)]
    reclaimed = world(item(1, 0, 0, gold=5), player(2, 0, 0), zones=one_cell, next_id=3)
    run_both(reclaimed, [[{"player": 2, "seq": 1, "op": "pickup", "item": 1},
                          {"player": 1, "seq": 1, "op": "join", "zone": 1, "name": "new"}], []])
    huge = [dict(id=1, width=65535, height=65535, spawn_x=0, spawn_y=0)]
    jump = world(player(1, 65534, 65534, hp=0, respawn_tick=1), player(2, 3, 3), player(3, 65533, 65534, online=0,
                 hp=0, respawn_tick=1), zones=huge)
    run_both(jump, [[], [{"player": 2, "seq": 1, "op": "move", "dx": -1, "dy": -1}]])

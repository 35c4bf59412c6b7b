"""Random ticks checked against the definitions, computed by brute force.

The area of interest, TickResult.changed/removed and the invariants are
recomputed from whole snapshots of the world before and after each tick, as
docs/rules.md defines them, with none of the engine's bookkeeping.
"""

import random

import pytest

from schema._generated.layout import Kind
from tests.rules.kit import changed, cmd, removed, sightings
from tests.support import item, npc, player

ZONES = [dict(id=1, width=24, height=20, spawn_x=12, spawn_y=10),
         dict(id=2, width=40, height=8, spawn_x=0, spawn_y=7)]
PLAYERS = range(1, 8)
NEW_PLAYERS = range(40, 44)   # ids only ever used by joins
SIGHT = 10


def random_world(rng):
    def place(zone):
        z = ZONES[zone - 1]
        return rng.randrange(z["width"]), rng.randrange(z["height"])

    entities = []
    for id in PLAYERS:
        zone = rng.choice([1, 1, 2])
        x, y = place(zone)
        dead = rng.random() < 0.15
        entities.append(player(id, x, y, zone=zone, online=int(rng.random() < 0.8),
                               hp=0 if dead else rng.randint(1, 100),
                               respawn_tick=rng.randint(1, 12) if dead else 0,
                               gold=rng.randint(0, 30), potions=rng.randint(0, 2),
                               attack=rng.randint(5, 40)))
    for id in range(10, 18):
        zone = rng.choice([1, 2])
        x, y = place(zone)
        entities.append(npc(id, x, y, zone=zone, gold=rng.randint(0, 5), hp=rng.randint(1, 30)))
    for id in range(20, 30):
        zone = rng.choice([1, 2])
        x, y = place(zone)
        entities.append(item(id, x, y, zone=zone, gold=rng.choice([0, 1, 7, 20])))
    return entities


def random_commands(rng, seqs, known_ids):
    commands = []
    for _ in range(rng.randint(0, 8)):
        op = rng.choice(["join", "leave", "move", "move", "move", "attack", "attack", "pickup",
                         "use", "transfer", "say"])
        who = rng.choice([*PLAYERS, *PLAYERS, *NEW_PLAYERS, 10, 99]) if op == "join" \
            else rng.choice([*PLAYERS, *PLAYERS, 10, 99])
        seqs[who] = seqs.get(who, 0) + 1
        other = rng.choice(known_ids + [99])
        fields = {
            "join": lambda: dict(zone=rng.choice([1, 1, 2, 3]), name=rng.choice(["a", "bo", "", "x" * 33])),
            "leave": dict,
            "move": lambda: dict(dx=rng.choice([-1, 0, 1, 1, 2]), dy=rng.choice([-1, 0, 1, -2])),
            "attack": lambda: dict(target=other),
            "pickup": lambda: dict(item=other),
            "use": dict,
            "transfer": lambda: dict(to=other, amount=rng.choice([-1, 0, 1, 5, 100])),
            "say": lambda: dict(text=rng.choice(["hi", "", "é" * 100, "y" * 201])),
        }[op]()
        commands.append(cmd(who, seqs[who], op, **fields))
    return commands


def sees(observer, e):
    return (e["zone"] == observer["zone"]
            and max(abs(e["x"] - observer["x"]), abs(e["y"] - observer["y"])) <= SIGHT
            and not (e["kind"] == Kind.player and not e["online"]))


def expected_sightings(before, after):
    def differs_apart_from_last_seq(a, b):
        return {**a, "last_seq": 0} != {**b, "last_seq": 0}

    out = []
    for pid in sorted(after):
        p = after[pid]
        if p["kind"] != Kind.player or not p["online"]:
            continue
        was = before.get(pid)
        old_view = {id for id, e in before.items() if sees(was, e)} if was and was["online"] else set()
        new_view = {id for id, e in after.items() if sees(p, e)}
        for id in sorted(old_view | new_view):
            if id not in old_view:
                out.append(("enter", pid, id))
            elif id not in new_view:
                out.append(("leave", pid, id))
            elif differs_apart_from_last_seq(before[id], after[id]):
                out.append(("update", pid, id))
    return out


def total_gold(entities, transit=()):
    """Gold counted where it is: players, npcs, gold items, and what is in flight."""
    return sum(e["gold"] + (e["amount"] if e["kind"] == Kind.item and e["item_type"] == 1 else 0)
               for e in entities.values()) + sum(t["amount"] + (t["record"] or {}).get("gold", 0) for t in transit)


@pytest.mark.parametrize("seed", range(12))
def test_random_ticks_match_the_definitions(start, seed):
    rng = random.Random(seed)
    s = start(*random_world(rng), zones=ZONES, next_id=30, tick=rng.randrange(5))
    seqs = {}
    ever_used = set()
    before = s.entities()
    gold = total_gold(before)
    for _ in range(60):
        result, effects = s.step(*random_commands(rng, seqs, sorted(before)))
        after = s.entities()

        assert sightings(effects) == expected_sightings(before, after)
        assert changed(result) == {id: e for id, e in after.items() if before.get(id) != e}
        assert removed(result) == sorted(set(before) - set(after))
        assert result.next_id > max((id for id in after if id < 2**62), default=0)

        assert total_gold(after, s.transit()) == gold, "gold is conserved, counting what is in flight"
        for e in after.values():
            zone = ZONES[e["zone"] - 1]
            assert 0 <= e["x"] < zone["width"] and 0 <= e["y"] < zone["height"]
            if e["kind"] != Kind.item:
                assert 0 <= e["hp"] <= e["max_hp"]
                assert (e["hp"] == 0) == (e["respawn_tick"] != 0)
        created = set(after) - set(before)
        assert not created & ever_used, "ids are never reused"
        ever_used |= set(before)
        before = after

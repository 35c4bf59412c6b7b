"""Deterministic worlds for persistence tests: every kind, every field, extreme values."""

from __future__ import annotations

import random

from vocabulary.records import ItemType, Kind, pack_entity, pack_zone
from vocabulary.types import WorldData

U62 = 2**62
NAMES = ["ada", "Zoë", "狼", "x" * 32, "é" * 16, "a b", "🐀🐀🐀", "q"]


def generated_world(entities: int, seed: int = 3) -> WorldData:
    """`entities` entities over three zones: players (online, offline, dead), npcs and
    both item types, with values up to each field's limit (docs/rules.md)."""
    rng = random.Random(seed)
    zones = [(1, 65535, 65535), (7, 16, 16), (2**32 - 1, 300, 200)]
    records = []
    next_id = 1
    for n in range(entities):
        next_id += rng.choice((1, 1, 1, 5, 1000))
        eid = next_id
        zone, width, height = rng.choice(zones)
        x, y = rng.randrange(width), rng.randrange(height)
        roll = n % 5
        if roll <= 2:
            max_hp = rng.randint(1, 1_000_000)
            dead = rng.random() < 0.1
            common = dict(id=eid, zone=zone, x=x, y=y, max_hp=max_hp, hp=0 if dead else rng.randint(1, max_hp),
                          attack=rng.randint(0, 1_000_000), defense=rng.randint(0, 1_000_000),
                          gold=rng.choice((0, 1, U62 // entities)), potions=rng.randint(0, 1_000_000),
                          next_action_tick=rng.choice((0, U62)), respawn_tick=rng.randint(1, U62) if dead else 0,
                          name=rng.choice(NAMES))
            if roll <= 1:
                records.append(pack_entity(kind=Kind.player, online=rng.randint(0, 1),
                                           last_seq=rng.choice((0, 7, U62)), **common))
            else:
                records.append(pack_entity(kind=Kind.npc, home_x=rng.randrange(width), home_y=rng.randrange(height),
                                           **common))
        elif roll == 3:
            records.append(pack_entity(id=eid, kind=Kind.item, zone=zone, x=x, y=y, item_type=ItemType.gold,
                                       amount=rng.choice((1, U62 // entities))))
        else:
            records.append(pack_entity(id=eid, kind=Kind.item, zone=zone, x=x, y=y, item_type=ItemType.potion,
                                       amount=1))
    return WorldData(seed=rng.randrange(U62), tick=rng.randrange(1000), next_id=next_id + 1,
                     zones=b"".join(pack_zone(z, w, h, w // 2, h // 2) for z, w, h in zones),
                     entities=b"".join(records))

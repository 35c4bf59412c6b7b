"""The world a fresh server starts with when its database holds none."""

from __future__ import annotations

import random

from schema._generated.layout import ItemType, Kind
from vocabulary.records import pack_entity, pack_zone
from vocabulary.types import WorldData

SIDE = 128


def starter_world(seed: int = 1) -> WorldData:
    """One 128x128 meadow with rats, wolves, gold and potions; players join it."""
    rng = random.Random(seed)
    records = []
    next_id = 1
    for name, count, hp, attack, defense in (("rat", 60, 20, 4, 0), ("wolf", 20, 45, 9, 2)):
        for _ in range(count):
            x, y = rng.randrange(SIDE), rng.randrange(SIDE)
            records.append(pack_entity(id=next_id, kind=Kind.npc, zone=1, x=x, y=y, hp=hp, max_hp=hp, attack=attack,
                                       defense=defense, gold=rng.randrange(1, 15), name=name, home_x=x, home_y=y))
            next_id += 1
    for _ in range(80):
        gold = rng.random() < 0.6
        records.append(pack_entity(id=next_id, kind=Kind.item, zone=1, x=rng.randrange(SIDE), y=rng.randrange(SIDE),
                                   item_type=ItemType.gold if gold else ItemType.potion,
                                   amount=rng.randrange(5, 40) if gold else 1))
        next_id += 1
    # Player ids start well above the starter entities so the two never meet.
    return WorldData(seed=seed, tick=0, next_id=1000, zones=pack_zone(1, SIDE, SIDE, SIDE // 2, SIDE // 2),
                     entities=b"".join(records))

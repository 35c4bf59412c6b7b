"""A world of two zones with players in both, and a drive that crosses them (the shard tests and campaign).

Players start offline with gold, half in each zone; the drive joins them
at tick 1, then every tick each moves, fights, talks, travels to the other
zone, or sends gold: to another player (often across zones), to an npc, or
to an id that is nobody (a credit that comes back as a refund).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

from pipeline.starter import starter_world
from schema._generated.layout import Kind
from vocabulary.records import pack_entity, pack_zone
from vocabulary.types import WorldData

FIRST_PLAYER = 1000
SECOND_ZONE = (2, 48, 48, 24, 24)      # id, width, height, spawn


def two_zone_world(players: int, seed: int = 1) -> WorldData:
    """The starter meadow (zone 1), a second zone with a few rats, and `players` players with gold."""
    rng = random.Random(seed)
    base = starter_world(seed)
    zone, width, height, _, _ = SECOND_ZONE
    rats = [pack_entity(id=900 + i, kind=Kind.npc, zone=zone, x=rng.randrange(width), y=rng.randrange(height),
                        hp=20, max_hp=20, attack=4, gold=rng.randrange(1, 15), name="rat") for i in range(20)]
    people = [pack_entity(id=FIRST_PLAYER + i, kind=Kind.player, zone=1 + i % 2, x=rng.randrange(width),
                          y=rng.randrange(height), hp=100, max_hp=100, attack=10, defense=2, gold=50,
                          name=f"p{FIRST_PLAYER + i}") for i in range(players)]
    return replace(base, zones=base.zones + pack_zone(*SECOND_ZONE), entities=base.entities + b"".join(rats + people),
                   next_id=FIRST_PLAYER + players)


def write_two_zone_drive(path: Path, players: int, ticks: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    ids = range(FIRST_PLAYER, FIRST_PLAYER + players)
    lines = [json.dumps({"tick": 1, "commands": [{"player": p, "seq": 1, "op": "join", "zone": 1, "name": f"p{p}"}
                                                 for p in ids]})]
    for tick in range(2, ticks + 1):
        commands = []
        for p in ids:
            roll = rng.random()
            c: dict[str, object] = {"player": p, "seq": tick}
            if roll < 0.6:
                c.update(op="move", dx=rng.randint(-1, 1), dy=rng.randint(-1, 1))
            elif roll < 0.7:
                c.update(op="attack", target=rng.choice([rng.randrange(1, 81), rng.randrange(900, 920)]))
            elif roll < 0.78:
                c.update(op="travel", zone=rng.randint(1, 2))
            elif roll < 0.93:
                to = rng.choice([rng.choice(ids), rng.choice(ids), rng.randrange(1, 81), 777_777])
                c.update(op="transfer", to=to, amount=rng.randint(1, 5))
            else:
                c.update(op="say", text=f"tick {tick}")
            commands.append(c)
        lines.append(json.dumps({"tick": tick, "commands": commands}))
    path.write_text("\n".join(lines) + "\n")

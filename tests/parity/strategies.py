"""Hypothesis strategies: small crowded worlds and batches that make rules meet.

Worlds are small (a zone of at most 24x24 cells) so that players, npcs and
items are within reach of each other and every rule and reason code fires.
Ids in commands come from a small pool that includes missing ids, items and
npcs, so rejections are as common as successes.

`worlds(crowd=True)` packs up to 160 entities onto a few cells, so that
areas of interest are full (31 others), ties at equal distance abound, and
every move pushes someone in or out of someone's nearest 32. Their ids are
spread thin at times (one every 2^16 + 1, or 2^33 + 1), so orders by id
span more than 16 bits.

Worlds have up to three zones, some near the end of their range of ids,
and may start with players in flight and gold on its way between zones;
batches travel and transfer across zones.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from schema._generated.layout import ENTITY_SIZE, TransitKind
from vocabulary.ids import zone_first_id, zone_id_end
from vocabulary.records import (
    TRANSIT,
    ItemType,
    Kind,
    entity_ids,
    pack_entity,
    pack_transit,
    pack_zone,
    unpack_transit,
)
from vocabulary.types import WorldData

KIND_OFFSET = 80

OPS = ["join", "leave", "move", "attack", "pickup", "use", "transfer", "say", "travel"]


@st.composite
def worlds(draw: st.DrawFn, crowd: bool = False) -> WorldData:
    zone_count = draw(st.integers(1, 3))
    zones = []
    for zid in range(1, zone_count + 1):
        w, h = draw(st.sampled_from([1, 2, 3, 5, 8, 24])), draw(st.sampled_from([1, 2, 3, 5, 8, 24]))
        # Most zones have created nothing yet; some have one drop left, or none.
        next_id = draw(st.sampled_from([zone_first_id(zid)] * 3 + [zone_id_end(zid) - 1, zone_id_end(zid)]))
        zones.append((zid, w, h, draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)), next_id))
    count = draw(st.integers(40, 160) if crowd else st.integers(0, 30))
    stride = draw(st.sampled_from([1, 1, (1 << 16) + 1, (1 << 33) + 1])) if crowd else 1
    # A crowd stands in a square of side 1..4 (clipped to its zone) somewhere in each zone.
    side = draw(st.integers(1, 4)) if crowd else 24
    corner = {zid: (draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))) for zid, w, h, _, _, _ in zones}
    records, travellers, total_gold = [], [], 0
    for number in range(count):
        eid = 1 + number * stride
        zid, w, h, spawn_x, spawn_y, _ = draw(st.sampled_from(zones))
        if crowd:
            cx, cy = corner[zid]
            x, y = draw(st.integers(cx, min(w, cx + side) - 1)), draw(st.integers(cy, min(h, cy + side) - 1))
        else:
            x, y = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        kind = draw(st.sampled_from([Kind.player, Kind.player, Kind.npc, Kind.item]))
        if kind == Kind.item:
            gold = draw(st.booleans())
            amount = draw(st.integers(1, 50)) if gold else 1
            total_gold += amount if gold else 0
            records.append(pack_entity(id=eid, kind=kind, zone=zid, x=x, y=y,
                                       item_type=ItemType.gold if gold else ItemType.potion, amount=amount))
            continue
        max_hp = draw(st.integers(1, 60))
        dead = draw(st.integers(0, 5)) == 0
        fields: dict[str, Any] = dict(
            id=eid, kind=kind, zone=zid, x=x, y=y, max_hp=max_hp,
            hp=0 if dead else draw(st.integers(1, max_hp)),
            respawn_tick=draw(st.integers(1, 12)) if dead else 0,
            attack=draw(st.integers(0, 15)), defense=draw(st.integers(0, 8)),
            gold=draw(st.integers(0, 40)), potions=draw(st.integers(0, 2)),
            next_action_tick=draw(st.integers(0, 3)), name=f"e{eid}")
        if kind == Kind.player:
            fields.update(online=int(draw(st.booleans())), last_seq=0)
            if not dead and fields["online"] and draw(st.integers(0, 7)) == 0:
                # In flight, due at the start of tick 1 at its zone's spawn point.
                fields.update(x=spawn_x, y=spawn_y)
                travellers.append(pack_transit(TransitKind.traveller, 1, to_id=eid, record=pack_entity(**fields)))
                continue
        else:
            fields.update(home_x=draw(st.integers(0, w - 1)), home_y=draw(st.integers(0, h - 1)))
        records.append(pack_entity(**fields))
    players = [eid for eid, r in zip(entity_ids(b"".join(records)), records) if r[KIND_OFFSET] == Kind.player]
    gold_ways = []
    for _ in range(draw(st.integers(0, 3)) if players else 0):
        kind = draw(st.sampled_from([TransitKind.credit, TransitKind.refund]))
        player, other = draw(st.sampled_from(players)), draw(st.integers(1, count * stride + 2))
        from_id, to_id = (player, other) if kind == TransitKind.credit else (other, player)
        gold_ways.append(pack_transit(kind, 1, from_id=from_id, to_id=to_id, amount=draw(st.integers(1, 30))))
    return WorldData(seed=draw(st.integers(0, 2**32)), tick=0, next_id=1 + count * stride,
                     zones=b"".join(pack_zone(*z) for z in zones), entities=b"".join(records),
                     transit=b"".join(travellers + gold_ways))


@st.composite
def batches(draw: st.DrawFn, world: WorldData, ticks: int, most: int = 8) -> list[list[dict[str, Any]]]:
    """Per tick a list of commands. Seqs rise per player, as negotiate guarantees."""
    items = [unpack_transit(world.transit[i:i + TRANSIT.size]) for i in range(0, len(world.transit), TRANSIT.size)]
    flying = [t["to_id"] for t in items if t["kind"] == TransitKind.traveller]
    ids = entity_ids(world.entities) + flying
    # Existing ids mostly, and a few that do not exist yet (or do once a zone drops gold).
    existing = st.sampled_from(ids) if ids else st.nothing()
    pool = st.one_of(existing, existing, existing, st.integers(world.next_id, world.next_id + 2),
                     st.sampled_from([zone_first_id(1), zone_first_id(2)]))
    players = [eid for i, eid in enumerate(entity_ids(world.entities))
               if world.entities[i * ENTITY_SIZE + KIND_OFFSET] == Kind.player] + flying
    issuers = st.one_of(st.sampled_from(players), pool) if players else pool
    seq: dict[int, int] = {}
    out = []
    for _ in range(ticks):
        tick_commands = []
        for _ in range(draw(st.integers(0, most))):
            player = draw(issuers)
            seq[player] = seq.get(player, 0) + draw(st.integers(1, 2))
            op = draw(st.sampled_from(OPS + ["attack", "attack", "move"]))
            c: dict[str, Any] = {"player": player, "seq": seq[player], "op": op}
            if op == "join":
                c.update(zone=draw(st.integers(0, 3)), name=draw(st.sampled_from(["ada", "", "x" * 33, "zoë"])))
            elif op == "move":
                c.update(dx=draw(st.integers(-2, 2)), dy=draw(st.integers(-1, 1)))
            elif op == "attack":
                c.update(target=draw(pool))
            elif op == "pickup":
                c.update(item=draw(pool))
            elif op == "transfer":
                c.update(to=draw(pool), amount=draw(st.integers(-2, 30)))
            elif op == "say":
                c.update(text=draw(st.sampled_from(["hi", "", "long" * 60, "ça va"])))
            elif op == "travel":
                c.update(zone=draw(st.integers(0, 4)))
            tick_commands.append(c)
        out.append(tick_commands)
    return out

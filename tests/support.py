"""Small builders for tests: worlds, entities, ticks, in a few lines each."""

from __future__ import annotations

from typing import Any

from pipeline.effects import effects_json
from pipeline.engines.frames import COMMAND_FRAME, WORLD_FRAME
from schema._generated.layout import ENTITY_SIZE, ZONE_SIZE
from vocabulary.hashing import canonical_bytes as canonical  # noqa: F401  (the reference encoding)
from vocabulary.hashing import world_from_canonical
from vocabulary.records import (
    TRANSIT,
    ItemType,
    Kind,
    pack_commands,
    pack_entity,
    pack_zone,
    unpack_entity,
    unpack_transit,
    unpack_zone,
)
from vocabulary.types import TickResult, WorldData

ZONE = dict(id=1, width=64, height=64, spawn_x=32, spawn_y=32)


def player(id: int, x: int = 0, y: int = 0, **kw: Any) -> dict[str, Any]:
    base = dict(id=id, kind=Kind.player, zone=1, x=x, y=y, hp=100, max_hp=100, attack=10,
                defense=2, online=1, name=f"p{id}")
    return base | kw


def npc(id: int, x: int = 0, y: int = 0, **kw: Any) -> dict[str, Any]:
    base = dict(id=id, kind=Kind.npc, zone=1, x=x, y=y, hp=30, max_hp=30, attack=6, defense=1,
                name=f"n{id}", home_x=x, home_y=y)
    return base | kw


def item(id: int, x: int = 0, y: int = 0, gold: int = 0, **kw: Any) -> dict[str, Any]:
    base = dict(id=id, kind=Kind.item, zone=1, x=x, y=y,
                item_type=ItemType.gold if gold else ItemType.potion, amount=gold or 1)
    return base | kw


def world(*entities: dict[str, Any], zones: list[dict[str, int]] | None = None,
          seed: int = 1, tick: int = 0, next_id: int | None = None, transit: bytes = b"") -> WorldData:
    """A world of these entities; zones without a next_id have created nothing yet."""
    zones = zones or [ZONE]
    ents = sorted(entities, key=lambda e: e["id"])
    return WorldData(
        seed=seed, tick=tick,
        next_id=next_id if next_id is not None else max([e["id"] for e in ents if e["id"] < 2**62], default=0) + 1,
        zones=b"".join(pack_zone(**z) for z in sorted(zones, key=lambda z: z["id"])),
        entities=b"".join(pack_entity(**e) for e in ents), transit=transit)


def world_frame(w: WorldData) -> bytes:
    return WORLD_FRAME.encode({"seed": w.seed, "tick": w.tick, "next_id": w.next_id, "replace": 1,
                               "zones": w.zones, "entities": w.entities, "transit": w.transit})


def command_frame(tick: int, commands: list[dict[str, Any]], *, sights: bool = True) -> tuple[bytes, bytes]:
    packed, text = pack_commands(commands)
    return COMMAND_FRAME.encode({"tick": tick, "commands": packed, "text": text,
                                 "skip_area_of_interest": int(not sights)}), text


class Session:
    """One engine with a loaded world, stepping ticks and decoding results."""

    def __init__(self, engine: Any, w: WorldData) -> None:
        self.engine = engine
        self.tick = w.tick
        engine.project(world_frame(w))

    def step(self, *commands: dict[str, Any], sights: bool = True) -> tuple[TickResult, list[dict[str, Any]]]:
        """One tick; sights=False asks the engine to skip the area-of-interest effects."""
        self.tick += 1
        frame, text = command_frame(self.tick, list(commands), sights=sights)
        result = self.engine.transform(frame)
        if sights:
            result = result.with_sightings(self.engine.sightings())
        return result, list(effects_json(result, text))

    def world(self) -> WorldData:
        """The engine's world, from its canonical encoding."""
        return world_from_canonical(bytes(self.engine.canonical()))

    def entities(self) -> dict[int, dict[str, Any]]:
        """Every entity of the engine's world, decoded."""
        data = self.world().entities
        out = {}
        for i in range(0, len(data), ENTITY_SIZE):
            e = unpack_entity(data[i:i + ENTITY_SIZE])
            out[e["id"]] = e
        return out

    def zones(self) -> dict[int, dict[str, int]]:
        zones = self.world().zones
        return {z["id"]: z for z in (unpack_zone(zones[i:i + ZONE_SIZE]) for i in range(0, len(zones), ZONE_SIZE))}

    def transit(self) -> list[dict[str, Any]]:
        """What is in flight, in order (unpack_transit: a traveller's record decoded)."""
        data = self.world().transit
        return [unpack_transit(data[i:i + TRANSIT.size]) for i in range(0, len(data), TRANSIT.size)]

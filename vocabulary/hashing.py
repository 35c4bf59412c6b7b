"""The world's canonical encoding and its hash (docs/rules.md, "World hash").

What replay prints per tick, what the command log stores beside each tick,
and what recovery checks: both engines' canonical() output must equal
`canonical_bytes` of the same world byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Iterable

import numpy as np

from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE, TRANSIT_SIZE, ZONE_DTYPE, ZONE_SIZE

from .types import WorldData

_HEADER = struct.Struct("<QQQI")
_ZONE_HEADER = struct.Struct("<QQI")
_COUNT = struct.Struct("<I")


def canonical_bytes(world: WorldData) -> bytes:
    """docs/rules.md "World hash": header, zones, entities, transit, as WorldData already holds them."""
    if len(world.zones) % ZONE_SIZE or len(world.entities) % ENTITY_SIZE or len(world.transit) % TRANSIT_SIZE:
        raise ValueError("zones, entities or transit is not a whole number of records")
    return b"".join((_HEADER.pack(world.seed, world.tick, world.next_id, len(world.zones) // ZONE_SIZE),
                     world.zones, _COUNT.pack(len(world.entities) // ENTITY_SIZE), world.entities,
                     _COUNT.pack(len(world.transit) // TRANSIT_SIZE), world.transit))


def world_hash(world: WorldData) -> str:
    """Hex SHA-256 of the canonical encoding: what replay prints per tick."""
    return hashlib.sha256(canonical_bytes(world)).hexdigest()


def world_from_canonical(data: bytes | memoryview) -> WorldData:
    """The WorldData an engine's canonical() encoding describes (to dump an engine's world)."""
    view = memoryview(data)
    try:
        seed, tick, next_id, zone_count = _HEADER.unpack_from(view, 0)
        zones_end = _HEADER.size + zone_count * ZONE_SIZE
        (entity_count,) = _COUNT.unpack_from(view, zones_end)
        start = zones_end + _COUNT.size
        entities_end = start + entity_count * ENTITY_SIZE
        (transit_count,) = _COUNT.unpack_from(view, entities_end)
    except struct.error:
        raise ValueError("canonical encoding is truncated") from None
    transit_start = entities_end + _COUNT.size
    if len(view) != transit_start + transit_count * TRANSIT_SIZE:
        raise ValueError(f"canonical encoding is {len(view)} bytes; its counts say "
                         f"{transit_start + transit_count * TRANSIT_SIZE}")
    return WorldData(seed=seed, tick=tick, next_id=next_id, zones=bytes(view[_HEADER.size:zones_end]),
                     entities=bytes(view[start:entities_end]), transit=bytes(view[transit_start:]))


def zone_hash(canonical: bytes | memoryview, zones: frozenset[int]) -> bytes:
    """SHA-256 of `zones`' part of a world (docs/rules.md "Zone hash"): seed, tick, those zones'
    records and the entities in them, as the canonical encoding has them; not what is in flight.
    A shard's world and the whole world in one process give the same one for the same zones."""
    view = memoryview(canonical)
    seed, tick, _, zone_count = _HEADER.unpack_from(view, 0)
    zones_end = _HEADER.size + zone_count * ZONE_SIZE
    (entity_count,) = _COUNT.unpack_from(view, zones_end)
    start = zones_end + _COUNT.size
    entities = view[start:start + entity_count * ENTITY_SIZE]
    mine = records_where(view[_HEADER.size:zones_end], ZONE_DTYPE, "id", zones)
    digest = hashlib.sha256(_ZONE_HEADER.pack(seed, tick, len(mine) // ZONE_SIZE))
    digest.update(mine)
    inside = np.isin(np.frombuffer(entities, dtype=ENTITY_DTYPE)["zone"], list(zones))
    if inside.all():        # a shard's world: every entity is in its zones, hashed where it lies
        digest.update(_COUNT.pack(entity_count))
        digest.update(entities)
    else:
        chosen = records_where(entities, ENTITY_DTYPE, "zone", zones)
        digest.update(_COUNT.pack(len(chosen) // ENTITY_SIZE))
        digest.update(chosen)
    return digest.digest()


def records_where(packed: bytes | memoryview, dtype: np.dtype[Any], field: str, values: Iterable[int]) -> bytes:
    """The packed records whose `field` is one of `values`, byte for byte. (Indexing a structured
    array copies its fields only: the padding between them would come out as whatever memory held.)"""
    raw = np.frombuffer(packed, dtype=np.dtype((np.void, dtype.itemsize)))
    return bytes(raw[np.isin(np.frombuffer(packed, dtype=dtype)[field], list(values))].tobytes())

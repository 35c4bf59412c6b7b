"""The console's map frames: a whole world as the page draws it, in one binary message.

A frame is a little-endian u32 (the header's length), the header as UTF-8
JSON (tick, zones, counts, and whatever the sender adds: chart figures,
hashes), zero bytes up to a multiple of 8, then one 24-byte MapEntity per
entity in ascending id (MAP_DTYPE; pipeline/operate/static/console.js reads
the same offsets). A frame of a live world and of a past one are the same
thing, so the page draws both with one function.

Cutting 24 bytes out of each 120-byte record is numpy work over one joined
buffer: about 1 ms for 10,000 entities, done once per frame for every
console watching (docs/operate.md has the measured cost to the tick loop).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from schema._generated.layout import ENTITY_DTYPE, ZONE_SIZE, Kind
from vocabulary.records import unpack_zone

MAP_DTYPE = np.dtype({
    "names": ["id", "zone", "x", "y", "hp", "kind", "flags", "item_type"],
    "formats": ["<u8", "<u4", "<u2", "<u2", "<i4", "u1", "u1", "u1"],
    "offsets": [0, 8, 12, 14, 16, 20, 21, 22],
    "itemsize": 24,
})
ONLINE, DEAD = 1, 2          # MapEntity.flags bits
_LENGTH = struct.Struct("<I")


def map_entities(entities: bytes) -> bytes:
    """Packed Entity records (120 bytes each) -> packed MapEntity records (24 bytes each), same order."""
    records = np.frombuffer(entities, dtype=ENTITY_DTYPE)
    out = np.zeros(len(records), dtype=MAP_DTYPE)
    for name in ("id", "zone", "x", "y", "hp", "kind", "item_type"):
        out[name] = records[name]
    alive_kind = records["kind"] != Kind.item
    flags = np.where(records["online"] == 1, ONLINE, 0) | np.where(alive_kind & (records["hp"] <= 0), DEAD, 0)
    out["flags"] = flags.astype(np.uint8)
    return out.tobytes()


def online_count(entities: bytes) -> int:
    records = np.frombuffer(entities, dtype=ENTITY_DTYPE)
    return int(np.count_nonzero((records["kind"] == Kind.player) & (records["online"] == 1)))


def zones_json(zones: bytes) -> list[dict[str, int]]:
    return [unpack_zone(zones[i:i + ZONE_SIZE]) for i in range(0, len(zones), ZONE_SIZE)]


def encode_frame(header: dict[str, Any], entities: bytes) -> bytes:
    """A frame: `header` (JSON-ready) and packed Entity records."""
    text = json.dumps(header, separators=(",", ":")).encode()
    pad = -(_LENGTH.size + len(text)) % 8
    return b"".join((_LENGTH.pack(len(text)), text, b" " * pad, map_entities(entities)))


def decode_frame(frame: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """(header, MapEntity array): what the page reads, for tests and tools."""
    (length,) = _LENGTH.unpack_from(frame)
    header = json.loads(frame[_LENGTH.size:_LENGTH.size + length])
    start = _LENGTH.size + length
    start += -start % 8
    return header, np.frombuffer(frame[start:], dtype=MAP_DTYPE)


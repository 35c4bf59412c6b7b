"""Pack and unpack the fixed binary records of schema/world.fbs.

These are for building and inspecting worlds (files, tests, tools); the
per-tick path moves records as bytes and never calls them per entity.
"""

from __future__ import annotations

import struct
from typing import Any

from schema._generated import layout
from schema._generated.layout import ItemType, Kind, Op, TransitKind  # noqa: F401  (re-exported)

from .ids import zone_first_id

ENTITY = struct.Struct(layout.ENTITY_FORMAT)
ZONE = struct.Struct(layout.ZONE_FORMAT)
TRANSIT = struct.Struct(layout.TRANSIT_FORMAT)
COMMAND = struct.Struct(layout.COMMAND_FORMAT)
EFFECT = struct.Struct(layout.EFFECT_FORMAT)
U64 = struct.Struct("<Q")

NAME_MAX = 32


def pack_entity(**fields: Any) -> bytes:
    """Fields by name (layout.ENTITY_FIELDS); `name` as str, the rest ints, missing ones 0."""
    name = fields.pop("name", "")
    raw = name.encode() if isinstance(name, str) else bytes(name)
    if len(raw) > NAME_MAX:
        raise ValueError(f"name is {len(raw)} bytes, at most {NAME_MAX}")
    values: dict[str, Any] = {f: 0 for f in layout.ENTITY_FIELDS}
    unknown = set(fields) - set(values)
    if unknown:
        raise ValueError(f"unknown entity fields {sorted(unknown)}")
    values.update(fields)
    values["name_len"] = len(raw)
    values["name"] = raw.ljust(NAME_MAX, b"\0")
    return ENTITY.pack(*(values[f] for f in layout.ENTITY_FIELDS))


def unpack_entity(record: bytes | memoryview) -> dict[str, Any]:
    values = dict(zip(layout.ENTITY_FIELDS, ENTITY.unpack(record)))
    values["name"] = values["name"][: values.pop("name_len")].decode()
    return values


def pack_zone(id: int, width: int, height: int, spawn_x: int, spawn_y: int, next_id: int | None = None) -> bytes:
    """A Zone struct; next_id defaults to the start of the zone's range (it has created nothing)."""
    return ZONE.pack(id, width, height, spawn_x, spawn_y, zone_first_id(id) if next_id is None else next_id)


def unpack_zone(record: bytes | memoryview) -> dict[str, int]:
    return dict(zip(layout.ZONE_FIELDS, ZONE.unpack(record)))


def pack_transit(kind: TransitKind, arrive_tick: int, *, from_id: int = 0, to_id: int = 0, amount: int = 0,
                 record: bytes = b"") -> bytes:
    """A Transit struct: a credit or refund (from_id, to_id, amount), or a traveller (its Entity record)."""
    return TRANSIT.pack(arrive_tick, from_id, to_id, amount, record.ljust(layout.ENTITY_SIZE, b"\0"), kind)


def unpack_transit(item: bytes | memoryview) -> dict[str, Any]:
    """A Transit struct by field; a traveller's `record` decoded (unpack_entity), None for the others."""
    values = dict(zip(layout.TRANSIT_FIELDS, TRANSIT.unpack(item)))
    values["record"] = unpack_entity(values["record"]) if values["kind"] == TransitKind.traveller else None
    return values


def entity_ids(records: bytes | memoryview) -> list[int]:
    """The ids of packed Entity records, in order."""
    view = memoryview(records)
    return [U64.unpack_from(view, i)[0] for i in range(0, len(view), layout.ENTITY_SIZE)]


# Which command field each op's JSON `target`-like key lands in.
TARGET_KEYS = {"attack": "target", "pickup": "item", "transfer": "to"}
_OPS = {op.name: op.value for op in Op}

# pack_commands packs positionally, in this order, on the per-tick path.
assert layout.COMMAND_FIELDS == ("player", "seq", "target", "dx", "dy", "amount", "zone", "text_offset",
                                 "text_len", "op"), "pack_commands drifted from schema/world.fbs"


def pack_commands(commands: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """Well-typed command dicts (FORMATS.md) -> (packed Command structs, text blob).

    Validation belongs to the caller (pipeline/formats/batches.py); this only packs,
    into one buffer, once per tick (negotiate).
    """
    packed = bytearray(COMMAND.size * len(commands))
    text = bytearray()
    pack_into, size = COMMAND.pack_into, COMMAND.size
    for i, c in enumerate(commands):
        op = c["op"]
        raw = c.get("name") if op == "join" else c.get("text")
        blob = raw.encode() if raw else b""
        target = c.get(TARGET_KEYS[op], 0) if op in TARGET_KEYS else 0
        pack_into(packed, i * size, c["player"], c["seq"], target, c.get("dx", 0), c.get("dy", 0),
                  c.get("amount", 0), c.get("zone", 0), len(text), len(blob), _OPS[op])
        text += blob
    return bytes(packed), bytes(text)

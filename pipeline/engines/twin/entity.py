"""The records of the Python twin's world: zones and entities, as plain mutable objects.

Each packs to its schema/world.fbs struct byte for byte, which is what the
journal, TickResult and the canonical encoding are made of.
"""

from __future__ import annotations

import operator
import struct

from schema._generated import layout
from schema._generated.layout import Kind

ENTITY = struct.Struct(layout.ENTITY_FORMAT)
ZONE = struct.Struct(layout.ZONE_FORMAT)
NAME_MAX = 32


def distance(a: Entity, b: Entity) -> int:
    """Chebyshev distance, ignoring zones (callers compare zones first)."""
    return max(abs(a.x - b.x), abs(a.y - b.y))


class Zone:
    """A zone; `next_id` is the id of the next entity it creates (docs/rules.md, "Ids")."""

    __slots__ = ("id", "width", "height", "spawn_x", "spawn_y", "next_id")

    def __init__(self, id: int, width: int, height: int, spawn_x: int, spawn_y: int, next_id: int) -> None:
        self.id, self.width, self.height = id, width, height
        self.spawn_x, self.spawn_y, self.next_id = spawn_x, spawn_y, next_id

    def pack(self) -> bytes:
        return ZONE.pack(self.id, self.width, self.height, self.spawn_x, self.spawn_y, self.next_id)


class Entity:
    """One entity of any kind: the fields of schema/world.fbs Entity, by name.

    `name` is the whole 32-byte field (zero padded, `name_len` bytes used), so
    that packing the fields gives back the record byte for byte. `record` is
    the packed record as of the last sealed tick.
    """

    __slots__ = ("id", "gold", "amount", "next_action_tick", "respawn_tick", "last_seq", "zone",
                 "hp", "max_hp", "attack", "defense", "potions", "x", "y", "home_x", "home_y",
                 "kind", "item_type", "online", "name_len", "name", "record")
    id: int
    gold: int
    amount: int
    next_action_tick: int
    respawn_tick: int
    last_seq: int
    zone: int
    hp: int
    max_hp: int
    attack: int
    defense: int
    potions: int
    x: int
    y: int
    home_x: int
    home_y: int
    kind: int
    item_type: int
    online: int
    name_len: int
    name: bytes
    record: bytes

    @classmethod
    def unpack(cls, record: bytes | memoryview) -> Entity:
        """An entity from its packed record. Packing it again zeroes the padding."""
        e = cls.__new__(cls)
        for field, value in zip(layout.ENTITY_FIELDS, ENTITY.unpack(record)):
            setattr(e, field, value)
        e.record = e.pack()
        return e

    @classmethod
    def new(cls, *, name: bytes = b"", **fields: int) -> Entity:
        """An entity created during play: the given fields, every other one zero."""
        values: dict[str, object] = dict.fromkeys(layout.ENTITY_FIELDS, 0)
        values.update(fields, name_len=len(name), name=name.ljust(NAME_MAX, b"\0"))
        return cls.unpack(ENTITY.pack(*(values[f] for f in layout.ENTITY_FIELDS)))

    def pack(self) -> bytes:
        return ENTITY.pack(*_field_values(self))

    @property
    def living(self) -> bool:
        """For players and npcs: alive. Living means respawn_tick == 0."""
        return self.respawn_tick == 0

    @property
    def visible(self) -> bool:
        """Whether anyone can see it at all: offline players are invisible."""
        return self.kind != Kind.player or self.online == 1


# The slots, minus the cache, must be the schema's fields in the schema's order.
assert Entity.__slots__[:-1] == layout.ENTITY_FIELDS, "Entity slots drifted from schema/world.fbs"
_field_values = operator.attrgetter(*layout.ENTITY_FIELDS)

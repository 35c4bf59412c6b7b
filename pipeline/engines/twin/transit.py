"""What is in flight between zones (docs/rules.md, "Zones"): credits, refunds, travellers.

Everything a tick sends is due at the start of the next one, so the world
keeps one list, in the order that is also its canonical order: travellers
first, ascending id, then credits and refunds in the order they were made.
`flying` finds a traveller by id: while in flight it is in no zone, yet its
commands still advance its last_seq and a join with its id is refused.
"""

from __future__ import annotations

import bisect
import struct
from typing import Iterable

from schema._generated import layout
from schema._generated.layout import TransitKind

from .entity import Entity

TRANSIT = struct.Struct(layout.TRANSIT_FORMAT)
_NO_RECORD = bytes(layout.ENTITY_SIZE)


class Transit:
    """One item in flight: the fields of schema/world.fbs Transit, a traveller as its Entity."""

    __slots__ = ("kind", "arrive_tick", "from_id", "to_id", "amount", "traveller")

    def __init__(self, kind: int, arrive_tick: int, from_id: int, to_id: int, amount: int,
                 traveller: Entity | None = None) -> None:
        self.kind, self.arrive_tick = kind, arrive_tick
        self.from_id, self.to_id, self.amount = from_id, to_id, amount
        self.traveller = traveller

    @classmethod
    def unpack(cls, packed: bytes | memoryview) -> Transit:
        arrive_tick, from_id, to_id, amount, record, kind = TRANSIT.unpack(packed)
        traveller = Entity.unpack(record) if kind == TransitKind.traveller else None
        return cls(kind, arrive_tick, from_id, to_id, amount, traveller)

    def pack(self) -> bytes:
        record = self.traveller.pack() if self.traveller is not None else _NO_RECORD
        return TRANSIT.pack(self.arrive_tick, self.from_id, self.to_id, self.amount, record, self.kind)


def unpack_transit(packed: bytes | memoryview) -> list[Transit]:
    """Packed Transit structs, in order."""
    return [Transit.unpack(packed[i:i + TRANSIT.size]) for i in range(0, len(packed), TRANSIT.size)]


class InFlight:
    def __init__(self, items: Iterable[Transit] = ()) -> None:
        self.items: list[Transit] = []
        self.flying: dict[int, Entity] = {}
        for item in items:
            self.items.append(item)
            if item.traveller is not None:
                self.flying[item.to_id] = item.traveller

    def board(self, traveller: Entity, arrive_tick: int) -> None:
        """A traveller joins the others, in ascending id."""
        at = bisect.bisect_left(self.items, traveller.id, hi=len(self.flying), key=lambda t: t.to_id)
        self.items.insert(at, Transit(TransitKind.traveller, arrive_tick, 0, traveller.id, 0, traveller))
        self.flying[traveller.id] = traveller

    def send(self, kind: TransitKind, arrive_tick: int, from_id: int, to_id: int, amount: int) -> None:
        self.items.append(Transit(kind, arrive_tick, from_id, to_id, amount))

    def take(self) -> list[Transit]:
        """Everything in flight, which leaves the list empty: all of it is due now."""
        items = self.items
        self.items, self.flying = [], {}
        return items

    def pack(self) -> bytes:
        return b"".join(t.pack() for t in self.items)

"""A sharded world's views as one (pipeline/link/router.py): what the gateway reads of the world.

`Lookup` is what the gateway asks of a world: a WorldView answers it for a
world server, a `MergedView` for several shards. The merged view holds no
state: it reads each shard's latest view and the router's travellers in
flight each time it is asked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol

from schema._generated.layout import ZONE_SIZE

from ..view import WorldView, is_player_record, online_player_record, player_last_seq

if TYPE_CHECKING:
    from .router import ShardRouter

_U32 = struct.Struct("<I")


class Lookup(Protocol):
    """What the gateway reads of the world: a WorldView, or several shards' views merged."""

    @property
    def tick(self) -> int: ...
    @property
    def next_id(self) -> int: ...
    @property
    def zones(self) -> bytes: ...
    def get(self, entity_id: int) -> bytes | None: ...
    def find(self, entity_id: int) -> bytes | None: ...
    def last_seq(self, player: int) -> int | None: ...
    def online(self, entity_id: int) -> bool: ...



@dataclass
class Flight:
    """A traveller's record in flight, until its destination shard's frame shows it arrived."""

    record: bytes
    shard: int          # where it arrives
    arrive_tick: int


class MergedView:
    """The shards' views as one world (read-only, always the latest of each: it holds no state).

    Records are looked up in every shard's view (the one ticked furthest wins if two hold an
    entity, which only a late frame makes possible), then in what is in flight: the router's
    handover and each shard's transit. Counts and ids are the shards' together."""

    def __init__(self, router: ShardRouter) -> None:
        self._router = router

    def _views(self) -> Iterator[WorldView]:
        return (c.view for c in self._router.clients if c.view is not None)

    @property
    def seed(self) -> int:
        return next(self._views()).seed

    @property
    def tick(self) -> int:
        return max(v.tick for v in self._views())

    @property
    def next_id(self) -> int:
        """The largest next_id of any shard: ids from joins below it are taken somewhere."""
        return max(v.next_id for v in self._views())

    @property
    def zones(self) -> bytes:
        """Every zone's record as the shard owning it has it (the others' copies lag)."""
        clients, owner = self._router.clients, self._router.zone_owner
        first = next(self._views()).zones
        out = []
        for at in range(0, len(first), ZONE_SIZE):
            zone = _U32.unpack_from(first, at)[0]
            shard = owner.get(zone)
            view = clients[shard].view if shard is not None else None
            own = view.zones if view is not None else first
            out.append(_zone_record(own, zone) or first[at:at + ZONE_SIZE])
        return b"".join(out)

    @property
    def entity_count(self) -> int:
        return sum(v.entity_count for v in self._views())

    @property
    def online_count(self) -> int:
        return sum(v.online_count for v in self._views())

    def get(self, entity_id: int) -> bytes | None:
        """The entity's record; a traveller's in flight too (already at its destination), unlike a
        WorldView's `get`: between two shards' frames the player is in neither world, and the
        gateway must not take it for gone (an account given a new id, a zone forgotten)."""
        found, tick = None, -1
        for view in self._views():
            record = view.get(entity_id)
            if record is not None and view.tick > tick:
                found, tick = record, view.tick
        if found is not None:
            return found
        flight = self._router.handover.get(entity_id)
        if flight is not None:
            return flight.record
        for view in self._views():
            record = view.find(entity_id)
            if record is not None:
                return record
        return None

    def __contains__(self, entity_id: object) -> bool:
        return isinstance(entity_id, int) and self.get(entity_id) is not None

    def find(self, entity_id: int) -> bytes | None:
        return self.get(entity_id)

    def is_player(self, entity_id: int) -> bool:
        return is_player_record(self.get(entity_id))

    def last_seq(self, player: int) -> int | None:
        return player_last_seq(self.find(player))

    def online(self, entity_id: int) -> bool:
        return online_player_record(self.find(entity_id))


def _zone_record(zones: bytes, zone: int) -> bytes | None:
    for at in range(0, len(zones), ZONE_SIZE):
        if _U32.unpack_from(zones, at)[0] == zone:
            return zones[at:at + ZONE_SIZE]
    return None

"""The resident world of the Python twin: zones, entities and their indexes.

Entities are plain mutable objects. Rules change them only through World's
mutators (touch, move_to, set_online, create, remove, schedule_respawn), which
keep these true at every moment of a tick:

- `journal` holds, for every entity touched this tick, its record as it was
  at the start of the tick (None when the tick created it). TickResult.changed
  and .removed and the area-of-interest effects all come from it, never from
  scanning the world, so a tick costs what it changes.
- `grid` and `spots` hold exactly the visible entities (everything but
  offline players) at their current positions.
- `online` holds the ids of the online players.
- `transit` holds what is in flight between zones (transit.py): a traveller
  is there and nowhere in `entities` from its `travel` to its arrival.

`interest` keeps every online player's area of interest between ticks; the
area-of-interest pass (rules/aoi.py) brings it up to date at the end of each
tick, and the engine rebuilds it after loading entities.

Two things are settled only when the tick is sealed, after its last rule:
each touched entity's cached packed `record` (so that until then `record` is
still the start-of-tick record the journal copies), and `wounded`, the living
players and npcs below max_hp. Regeneration reads `wounded` before any rule
of the tick has changed an hp, so settling it between ticks is enough.
"""

from __future__ import annotations

import heapq
import struct
from typing import Iterable

from schema._generated.layout import Kind, TransitKind

from .entity import ENTITY, ZONE, Entity, Zone
from .interest import Interest
from .spatial import Grid, Spots
from .transit import InFlight, Transit, unpack_transit

HEADER = struct.Struct("<QQQ")  # seed, tick, next_id
COUNT = struct.Struct("<I")
_NONE = bytes(ENTITY.size)   # the previous record of an entity created this tick


class World:
    def __init__(self, seed: int, tick: int, next_id: int, zones: Iterable[Zone],
                 transit: Iterable[Transit] = ()) -> None:
        self.seed, self.tick, self.next_id = seed, tick, next_id
        self.zones = {z.id: z for z in zones}
        self.transit = InFlight(transit)
        # This tick's arrivals: each traveller's record as it was in flight,
        # its record at the start of the tick for the area of interest.
        self.arrived: dict[int, bytes] = {}
        self.entities: dict[int, Entity] = {}
        self.grid: Grid[Entity] = Grid()
        self.spots = Spots()
        self.interest = Interest()
        self.online: set[int] = set()
        self.wounded: set[int] = set()
        # (respawn_tick, id) of dead entities. Entries whose entity has since
        # respawned, or been replaced by `project`, are stale and skipped.
        self._respawns: list[tuple[int, int]] = []
        self.journal: dict[int, bytes | None] = {}
        self._at_start = self._header()

    # -- loading (project) --------------------------------------------------

    def upsert(self, e: Entity) -> None:
        """Put `e` in the world, replacing any entity with its id. Not journaled."""
        old = self.entities.get(e.id)
        if old is not None:
            self._unindex(old)
        self.entities[e.id] = e
        self._index(e)

    def _show(self, e: Entity) -> None:
        self.grid.add(e)
        self.spots.add(e)

    def _hide(self, e: Entity) -> None:
        self.grid.remove(e)
        self.spots.remove(e)

    def _index(self, e: Entity) -> None:
        if e.visible:
            self._show(e)
        if e.kind == Kind.player and e.online:
            self.online.add(e.id)
        self._settle_health(e)
        if e.respawn_tick:
            heapq.heappush(self._respawns, (e.respawn_tick, e.id))

    def _unindex(self, e: Entity) -> None:
        if e.visible:
            self._hide(e)
        self.online.discard(e.id)
        self.wounded.discard(e.id)

    def _settle_health(self, e: Entity) -> None:
        if e.kind != Kind.item and e.living and e.hp < e.max_hp:
            self.wounded.add(e.id)
        else:
            self.wounded.discard(e.id)

    # -- mutators: every change a rule makes goes through these --------------

    def touch(self, e: Entity) -> None:
        """Call before changing any field of `e`: journals its start-of-tick record."""
        if e.id not in self.journal:
            self.journal[e.id] = e.record

    def move_to(self, e: Entity, x: int, y: int) -> None:
        self.touch(e)
        if e.visible:
            self._hide(e)
            e.x, e.y = x, y
            self._show(e)
        else:
            e.x, e.y = x, y

    def set_online(self, player: Entity, online: bool) -> None:
        self.touch(player)
        if online:
            player.online = 1
            self._show(player)
            self.online.add(player.id)
        else:
            self._hide(player)
            player.online = 0
            self.online.discard(player.id)

    def create(self, e: Entity) -> None:
        # An id removed earlier this tick keeps its start-of-tick record: the
        # entity it names then simply changed (docs/rules.md, TickResult).
        self.journal.setdefault(e.id, None)
        self.entities[e.id] = e
        self._index(e)

    def remove(self, e: Entity) -> None:
        self.touch(e)
        del self.entities[e.id]
        self._unindex(e)

    def depart(self, player: Entity, zone: Zone) -> None:
        """`player` leaves the world for `zone`'s spawn point, where it arrives next tick."""
        self.remove(player)
        player.zone, player.x, player.y = zone.id, zone.spawn_x, zone.spawn_y
        self.transit.board(player, self.tick + 1)

    def arrive(self, traveller: Entity) -> None:
        """A traveller back in the world, as it was in flight."""
        traveller.record = traveller.pack()
        self.arrived[traveller.id] = traveller.record
        self.create(traveller)

    def send(self, kind: TransitKind, from_id: int, to_id: int, amount: int) -> None:
        """Gold in flight (a credit or a refund), due at the start of the next tick."""
        self.transit.send(kind, self.tick + 1, from_id, to_id, amount)

    def schedule_respawn(self, e: Entity) -> None:
        heapq.heappush(self._respawns, (e.respawn_tick, e.id))

    def due_respawns(self) -> list[Entity]:
        """The dead entities whose respawn_tick has come, ascending id."""
        due: dict[int, Entity] = {}
        heap = self._respawns
        while heap and heap[0][0] <= self.tick:
            respawn_tick, id = heapq.heappop(heap)
            e = self.entities.get(id)
            if e is not None and e.respawn_tick == respawn_tick:
                due[id] = e
        return [due[id] for id in sorted(due)]

    # -- the tick's bracket ----------------------------------------------------

    def _header(self) -> tuple[int, int, list[bytes], bytes]:
        """What a failed tick must restore beside the entities: header, zones, transit."""
        return self.tick, self.next_id, [z.pack() for z in self.zones.values()], self.transit.pack()

    def begin_tick(self) -> None:
        self.journal.clear()
        self.arrived.clear()
        self._at_start = self._header()

    def seal_tick(self) -> None:
        """After the last rule: repack the touched entities and settle `wounded`."""
        for id in self.journal:
            e = self.entities.get(id)
            if e is not None:
                e.record = e.pack()
                self._settle_health(e)

    def changes(self) -> tuple[bytes, bytes, bytes]:
        """(changed records, removed ids, previous records) of the sealed tick, ascending id.

        `previous` holds each changed entity's start-of-tick record, zeroed for a created one."""
        changed: list[bytes] = []
        previous: list[bytes] = []
        removed: list[int] = []
        for id in sorted(self.journal):
            before = self.journal[id]
            e = self.entities.get(id)
            if e is None:
                if before is not None:  # created and removed in the same tick: neither
                    removed.append(id)
            elif e.record != before:
                changed.append(e.record)
                previous.append(before or _NONE)
        return b"".join(changed), struct.pack(f"<{len(removed)}Q", *removed), b"".join(previous)

    def rolled_back(self) -> World:
        """The world as it was at the start of the tick, with every index rebuilt.

        O(world): only for a tick that failed part way, when the indexes
        cannot be trusted. Untouched entities are unchanged and reused.
        """
        tick, next_id, zones, transit = self._at_start
        restored = World(self.seed, tick, next_id, (Zone(*ZONE.unpack(z)) for z in zones), unpack_transit(transit))
        for id, e in self.entities.items():
            if id not in self.journal:
                restored.upsert(e)
        for before in self.journal.values():
            if before is not None:
                restored.upsert(Entity.unpack(before))
        return restored

    # -- the canonical encoding (docs/rules.md, "World hash") ------------------

    def canonical(self) -> bytes:
        zones = self.packed_zones()
        records = [self.entities[id].record for id in sorted(self.entities)]
        return b"".join([HEADER.pack(self.seed, self.tick, self.next_id),
                         COUNT.pack(len(self.zones)), zones, COUNT.pack(len(records)), *records,
                         COUNT.pack(len(self.transit.items)), self.transit.pack()])

    def packed_zones(self) -> bytes:
        return b"".join(self.zones[id].pack() for id in sorted(self.zones))


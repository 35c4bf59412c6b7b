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
import operator
import struct
from typing import Iterable

from schema._generated import layout
from schema._generated.layout import Kind

from .interest import Interest
from .spatial import Grid, Spots

ENTITY = struct.Struct(layout.ENTITY_FORMAT)
ZONE = struct.Struct(layout.ZONE_FORMAT)
HEADER = struct.Struct("<QQQ")  # seed, tick, next_id
COUNT = struct.Struct("<I")
NAME_MAX = 32
_NONE = bytes(ENTITY.size)   # the previous record of an entity created this tick


def distance(a: Entity, b: Entity) -> int:
    """Chebyshev distance, ignoring zones (callers compare zones first)."""
    return max(abs(a.x - b.x), abs(a.y - b.y))


class Zone:
    __slots__ = ("id", "width", "height", "spawn_x", "spawn_y")

    def __init__(self, id: int, width: int, height: int, spawn_x: int, spawn_y: int) -> None:
        self.id, self.width, self.height = id, width, height
        self.spawn_x, self.spawn_y = spawn_x, spawn_y

    def pack(self) -> bytes:
        return ZONE.pack(self.id, self.width, self.height, self.spawn_x, self.spawn_y)


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


class World:
    def __init__(self, seed: int, tick: int, next_id: int, zones: Iterable[Zone]) -> None:
        self.seed, self.tick, self.next_id = seed, tick, next_id
        self.zones = {z.id: z for z in zones}
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
        self._header_at_start = (tick, next_id)

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

    def begin_tick(self) -> None:
        self.journal.clear()
        self._header_at_start = (self.tick, self.next_id)

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
        tick, next_id = self._header_at_start
        restored = World(self.seed, tick, next_id, self.zones.values())
        for id, e in self.entities.items():
            if id not in self.journal:
                restored.upsert(e)
        for before in self.journal.values():
            if before is not None:
                restored.upsert(Entity.unpack(before))
        return restored

    # -- the canonical encoding (docs/rules.md, "World hash") ------------------

    def canonical(self) -> bytes:
        zones = [self.zones[id].pack() for id in sorted(self.zones)]
        records = [self.entities[id].record for id in sorted(self.entities)]
        return b"".join([HEADER.pack(self.seed, self.tick, self.next_id),
                         COUNT.pack(len(zones)), *zones, COUNT.pack(len(records)), *records])


"""Area-of-interest effects: the last phase of a tick (docs/rules.md, "Area of interest").

A player's area of interest is itself and the 31 visible entities nearest to
it within SIGHT in its zone (by distance, then id); an offline player is
invisible. Observers are the players online at the end of the tick: V_old is
what one saw at the start of the tick (nothing if it was not online), V_new
what it sees at the end. It gets `enter` for V_new - V_old, `leave` for
V_old - V_new, and `update` for entities in both whose record changed in any
field but last_seq. A traveller in flight is in no zone: its area is itself
alone, from its `travel` until its arrival, when its record in flight is its
record at the start of the tick.

Nothing here scans the world, and nothing costs the square of a crowd:
- every online player's area is kept between ticks (world.interest), with
  its radius: nothing nearer than the radius is outside it, nothing farther
  is inside. The journal says whose presence (visible or not, and where)
  differs between the start and the end of the tick, and marks those
  positions;
- an observer that moved or came online, or that has a marked position
  within its radius, is searched again (`area_around`) and its two areas
  diffed. Every other observer's area is unchanged: it gets an `update` for
  each changed entity it watches (world.interest.watchers).
"""

from __future__ import annotations

import heapq
from typing import Iterable

from schema._generated import layout
from schema._generated.layout import EffectKind, Kind

from ..effect_log import EffectLog
from ..entity import Entity
from ..spatial import CELL_SHIFT, ring
from ..world import World

SIGHT = 10
OTHERS = 31     # an area of interest: the observer and its 31 nearest
DENSE = 128     # more entities than this in the grid cells around: search ring by ring

# Where last_seq (a u64) sits in an Entity record.
_LAST_SEQ: int = dict(layout.ENTITY_DTYPE.fields or {})["last_seq"][1]

Spot = tuple[int, int, int]   # zone, x, y


def _changed_apart_from_last_seq(before: bytes, after: bytes) -> bool:
    return before[:_LAST_SEQ] != after[:_LAST_SEQ] or before[_LAST_SEQ + 8:] != after[_LAST_SEQ + 8:]


def area_around(world: World, observer: Entity) -> tuple[tuple[int, ...], int]:
    """`observer`'s area of interest in the world as it stands, and its radius."""
    zone, x, y = observer.zone, observer.x, observer.y
    nearest: list[tuple[int, int]]
    if world.grid.population(zone, x, y, SIGHT) <= DENSE:
        nearest = heapq.nsmallest(OTHERS, ((max(abs(e.x - x), abs(e.y - y)), e.id)
                                           for e in world.grid.near(zone, x, y, SIGHT) if e is not observer))
    else:
        nearest = _ring_by_ring(world, observer)
    radius = nearest[-1][0] if len(nearest) == OTHERS else SIGHT
    return (observer.id, *(id for _, id in nearest)), radius


def _ring_by_ring(world: World, observer: Entity) -> list[tuple[int, int]]:
    """The OTHERS nearest as (distance, id), from rings of positions at distance 0, 1, 2...
    Each position gives at most as many of its (ascending) ids as are still needed."""
    zone = world.zones[observer.zone]
    nearest: list[tuple[int, int]] = []
    for d in range(SIGHT + 1):
        need = OTHERS - len(nearest)
        found: list[int] = []
        for x, y in ring(observer.x, observer.y, d, zone.width, zone.height):
            ids = world.spots.at(zone.id, x, y)
            if ids:
                found += ids[:need + 1]   # one more: the observer may be among them
        if d == 0 and observer.id in found:
            found.remove(observer.id)
        found.sort()
        nearest += [(d, id) for id in found[:need]]
        if len(nearest) == OTHERS:
            break
    return nearest


def listeners(world: World, speaker: Entity) -> list[int]:
    """Who hears `speaker` now: the online players of its area of interest, ascending id."""
    members, _ = area_around(world, speaker)
    # Visible players are online players.
    return sorted(id for id in members if world.entities[id].kind == Kind.player)


def watch_all(world: World) -> None:
    """Search every online player's area afresh (a loaded world, or kept areas gone stale)."""
    world.interest.clear()
    for id in sorted(world.online):
        world.interest.set(id, *area_around(world, world.entities[id]))
    for id in world.transit.flying:
        world.interest.set(id, (id,), 0)


def watch_around(world: World, spots: Iterable[Spot], players: Iterable[int]) -> None:
    """Bring the kept areas up to date after entities were loaded between ticks: `spots`
    are where loaded entities were or are visible, `players` the loaded players."""
    interest = world.interest
    again = {o.id for zone, x, y in spots for o in world.grid.near(zone, x, y, SIGHT) if o.kind == Kind.player}
    for id in players:
        if id in world.online:
            again.add(id)
        else:
            interest.drop(id)
    for id in sorted(again):
        interest.set(id, *area_around(world, world.entities[id]))


def area_of_interest(world: World, log: EffectLog) -> None:
    """Append the tick's enter/update/leave effects, by (observer id, entity id).

    Call after seal_tick: it compares each journal record with the entity's
    repacked record.
    """
    if not world.interest.valid:
        raise AssertionError("the kept areas of interest are stale: call watch_all at the start of the tick")
    interest = world.interest
    marked: set[Spot] = set()
    changed: list[int] = []
    again: dict[int, Entity] = {}      # observers searched again
    flying = world.transit.flying
    for id, before in world.journal.items():
        was = Entity.unpack(before) if before is not None else None
        now = world.entities.get(id)
        spot_was = (was.zone, was.x, was.y) if was is not None and was.visible else None
        spot_now = (now.zone, now.x, now.y) if now is not None and now.visible else None
        if spot_was != spot_now:
            marked.update(s for s in (spot_was, spot_now) if s is not None)
        start = before if before is not None else world.arrived.get(id)
        end = now.record if now is not None else flying[id].pack() if id in flying else None
        if start is not None and end is not None and _changed_apart_from_last_seq(start, end):
            changed.append(id)
        if now is not None and now.kind == Kind.player and now.online:
            if id not in interest.members or spot_was != spot_now:   # came online, new, or moved
                again[id] = now
        elif id in flying:
            again[id] = flying[id]    # left its zone: it sees itself alone
        else:
            interest.drop(id)     # not an observer now (it had an area only if it was online)
    for o in _stood_near(world, marked, again):
        again[o.id] = o

    sightings: list[tuple[int, int, EffectKind]] = []
    changed_set = set(changed)
    for id, observer in again.items():
        old = set(interest.members.get(id, ()))
        members, radius = ((id,), 0) if id in flying else area_around(world, observer)
        new = set(members)
        sightings += [(id, e, EffectKind.enter) for e in new - old]
        sightings += [(id, e, EffectKind.leave) for e in old - new]
        sightings += [(id, e, EffectKind.update) for e in new & old if e in changed_set]
        interest.set(id, members, radius)
    for e in changed:
        sightings += [(o, e, EffectKind.update) for o in interest.watchers.get(e, ()) if o not in again]

    sightings.sort()
    for observer_id, entity_id, kind in sightings:
        log.sight(kind, observer_id, entity_id)


def _stood_near(world: World, marked: set[Spot], skip: dict[int, Entity]) -> list[Entity]:
    """The observers not in `skip` with a marked position within their radius."""
    by_cell: dict[Spot, list[Spot]] = {}
    for spot in marked:
        zone, x, y = spot
        by_cell.setdefault((zone, x >> CELL_SHIFT, y >> CELL_SHIFT), []).append(spot)
    # Candidates: online players in the cells next to a cell with a mark (within SIGHT).
    nearby = {(zone, cx + dx, cy + dy) for zone, cx, cy in by_cell for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    radius = world.interest.radius
    found = []
    for zone, cx, cy in nearby:
        cell = world.grid.cell(zone, cx, cy)
        for o in cell.values() if cell else ():
            if o.kind != Kind.player or o.id in skip:
                continue
            r = radius[o.id]
            if _marked_within(o, r, marked, by_cell):
                found.append(o)
    return found


def _marked_within(o: Entity, r: int, marked: set[Spot], by_cell: dict[Spot, list[Spot]]) -> bool:
    """Whether a marked position lies within distance r of `o`: by looking up each position
    of the square, or by going through the marks of the cells around, whichever is fewer."""
    zone, x, y = o.zone, o.x, o.y
    cells = [(zone, cx, cy) for cx in range(max(0, x - r) >> CELL_SHIFT, ((x + r) >> CELL_SHIFT) + 1)
             for cy in range(max(0, y - r) >> CELL_SHIFT, ((y + r) >> CELL_SHIFT) + 1)]
    marks = sum(len(by_cell.get(c, ())) for c in cells)
    if marks <= (2 * r + 1) ** 2:
        return any(abs(mx - x) <= r and abs(my - y) <= r
                   for c in cells for _, mx, my in by_cell.get(c, ()))
    return any((zone, mx, my) in marked for mx in range(x - r, x + r + 1) for my in range(y - r, y + r + 1))

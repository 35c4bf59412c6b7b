"""Area-of-interest effects: the last phase of a tick (docs/rules.md, "Area of interest").

An observer is a player online at the end of the tick. It sees an entity that
exists, is in its zone within SIGHT (Chebyshev) and is not an offline player;
V_old is what it saw at the start of the tick (nothing if it was offline or
absent), V_new what it sees at the end. It gets `enter` for V_new - V_old,
`leave` for V_old - V_new, and `update` for entities in both whose record
changed in any field but last_seq.

Nothing here scans the world; the journal says what changed:
- An observer whose own zone, position or online state changed, or that is
  new, has both views computed around its old and new positions, and diffed.
- Every other observer stands where it stood and sees what it saw, except
  the journaled entities. So for each journaled entity, the observers near its
  old and its new position compare whether they saw it and whether they see it.

The world at the start of the tick is the current world with each journaled
entity put back as its journal record says: untouched entities come from the
resident grid, journaled ones from a small grid of their old states.
"""

from __future__ import annotations

from schema._generated import layout
from schema._generated.layout import EffectKind, Kind

from ..effect_log import EffectLog
from ..spatial import Grid
from ..world import Entity, World, distance

SIGHT = 10

# Where last_seq (a u64) sits in an Entity record.
_LAST_SEQ: int = dict(layout.ENTITY_DTYPE.fields or {})["last_seq"][1]


def _changed_apart_from_last_seq(before: bytes, after: bytes) -> bool:
    return before[:_LAST_SEQ] != after[:_LAST_SEQ] or before[_LAST_SEQ + 8:] != after[_LAST_SEQ + 8:]


def _sees(observer: Entity, e: Entity | None) -> bool:
    """Whether `observer` sees `e`, both taken in the same world state."""
    return (e is not None and e.visible and e.zone == observer.zone
            and distance(observer, e) <= SIGHT)


def area_of_interest(world: World, log: EffectLog) -> None:
    """Append the tick's enter/update/leave effects, by (observer id, entity id).

    Call after seal_tick: it compares each journal record with the entity's
    repacked record.
    """
    journal = world.journal
    before = {id: Entity.unpack(record) for id, record in journal.items() if record is not None}
    old_positions: Grid[Entity] = Grid()
    for e in before.values():
        if e.visible:
            old_positions.add(e)

    def changed(id: int) -> bool:
        record = journal.get(id)
        return record is not None and _changed_apart_from_last_seq(record, world.entities[id].record)

    def view_before(observer: Entity) -> set[int]:
        z, x, y = observer.zone, observer.x, observer.y
        seen = {e.id for e in world.grid.near(z, x, y, SIGHT) if e.id not in journal}
        seen.update(e.id for e in old_positions.near(z, x, y, SIGHT))
        return seen

    def view_now(observer: Entity) -> set[int]:
        return {e.id for e in world.grid.near(observer.zone, observer.x, observer.y, SIGHT)}

    sightings: list[tuple[int, int, EffectKind]] = []

    # Observers whose own view moved: diff the two whole views.
    moved: set[int] = set()
    for id in journal:
        observer = world.entities.get(id)
        if observer is None or observer.kind != Kind.player or not observer.online:
            continue
        was = before.get(id)
        stayed = was is not None and was.online and (was.zone, was.x, was.y) == (
            observer.zone, observer.x, observer.y)
        if stayed:
            continue
        moved.add(id)
        old_view = view_before(was) if was is not None and was.online else set()
        new_view = view_now(observer)
        sightings += [(id, e, EffectKind.enter) for e in new_view - old_view]
        sightings += [(id, e, EffectKind.leave) for e in old_view - new_view]
        sightings += [(id, e, EffectKind.update) for e in old_view & new_view if changed(e)]

    # Observers that stood still: only the journaled entities can look different.
    for id in journal:
        was, now = before.get(id), world.entities.get(id)
        observers: dict[int, Entity] = {}
        for state in (was, now):
            if state is not None and state.visible:
                for o in world.grid.near(state.zone, state.x, state.y, SIGHT):
                    if o.kind == Kind.player and o.id not in moved:  # online: it is in the grid
                        observers[o.id] = o
        for o in observers.values():
            saw, sees = _sees(o, was), _sees(o, now)
            if saw and sees:
                if changed(id):
                    sightings.append((o.id, id, EffectKind.update))
            elif sees:
                sightings.append((o.id, id, EffectKind.enter))
            elif saw:
                sightings.append((o.id, id, EffectKind.leave))

    sightings.sort()
    for observer_id, entity_id, kind in sightings:
        log.sight(kind, observer_id, entity_id)

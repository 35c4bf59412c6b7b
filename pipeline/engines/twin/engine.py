"""The Python twin: the three reducer operations of docs/abi.md in plain Python.

It is the readable reference of the rules and the fallback engine; for every
input it must give byte for byte what the WASM engine (reducers_as/) gives.
"""

from __future__ import annotations

from pipeline.engines.frames import COMMAND_FRAME, WORLD_FRAME
from schema._generated.layout import Kind
from vocabulary.errors import EngineError
from vocabulary.types import TickResult

from .effect_log import EffectLog
from .entity import ENTITY, ZONE, Entity, Zone
from .rules.aoi import area_of_interest, watch_all, watch_around
from .rules.commands import decode_commands, run_command
from .rules.tick import arrive, npc_behaviour, regenerate, respawn
from .transit import InFlight, Transit, unpack_transit
from .world import World


class PythonEngine:
    name = "python"

    def __init__(self) -> None:
        self._world: World | None = None
        self._open = False      # a transformed tick waiting for sightings()

    def project(self, frame: bytes) -> None:
        """Replace the world with a WorldFrame's (zones and transit too), or upsert its entities
        (and with `arrivals`, replace what is in flight by the frame's transit)."""
        f = WORLD_FRAME.decode(frame)
        self._drop_open_tick()
        if f["replace"]:
            zones = (Zone(*values) for values in ZONE.iter_unpack(f["zones"]))
            self._world = World(f["seed"], f["tick"], f["next_id"], zones, unpack_transit(f["transit"]))
        world = self._require_world()
        if f["arrivals"] and not f["replace"]:
            _replace_transit(world, unpack_transit(f["transit"]))
        loaded = [Entity.unpack(record) for record in _records(f["entities"])]
        spots = []
        for e in loaded:
            old = world.entities.get(e.id)
            spots += [(x.zone, x.x, x.y) for x in (old, e) if x is not None and x.visible]
            world.upsert(e)
        if f["replace"]:
            watch_all(world)
        elif loaded:
            watch_around(world, spots, [e.id for e in loaded if e.kind == Kind.player])

    def transform(self, frame: bytes) -> TickResult:
        """Run one tick (docs/rules.md, "Tick phases")."""
        world = self._require_world()
        f = COMMAND_FRAME.decode(frame)
        if f["tick"] != world.tick + 1:
            raise EngineError(f["tick"], f"a frame for tick {f['tick']} given to a world at tick {world.tick}")
        text = bytes(f["text"])
        log = EffectLog()
        self._drop_open_tick()
        sights = not f["skip_area_of_interest"]
        if sights and not world.interest.valid:
            watch_all(world)
        world.begin_tick()
        try:
            world.tick += 1
            arrive(world)
            respawn(world, log)
            regenerate(world)
            npc_behaviour(world, log)
            for cmd in decode_commands(f["commands"]):
                run_command(world, cmd, text, log)
            world.seal_tick()
            changed, removed, previous = world.changes()
        except Exception as exc:
            # As the ABI promises: a failed call leaves the world as it was.
            self._world = world.rolled_back()
            watch_all(self._world)
            raise EngineError(f["tick"], f"the Python twin failed: {exc!r}") from exc
        if sights:
            self._open = True
        else:
            world.interest.valid = False
        return TickResult(tick=world.tick, next_id=world.next_id, effects=log.effects(),
                          recipients=log.recipients(), changed=changed, removed=removed, previous=previous,
                          zones=world.packed_zones(), transit=world.transit.pack())

    def sightings(self) -> bytes:
        """The area-of-interest effects of the tick just transformed (rules/aoi.py)."""
        world = self._require_world()
        if not self._open:
            raise EngineError(world.tick, "sightings: no transformed tick is waiting for them")
        self._open = False
        log = EffectLog()
        try:
            area_of_interest(world, log)
        except Exception as exc:
            world.interest.valid = False
            raise EngineError(world.tick, f"the Python twin failed: {exc!r}") from exc
        return log.effects()

    def _drop_open_tick(self) -> None:
        """A tick whose sightings were never asked for takes the kept areas with it."""
        if self._open and self._world is not None:
            self._world.interest.valid = False
        self._open = False

    def canonical(self) -> bytes:
        return self._require_world().canonical()

    def _require_world(self) -> World:
        if self._world is None:
            raise EngineError(0, "no world: project a WorldFrame with replace first")
        return self._world


def _replace_transit(world: World, items: list[Transit]) -> None:
    """What is in flight becomes `items`, as given. A traveller in flight is in no zone
    and watches itself alone (rules/aoi.py): those gone take their area with them, and
    those new get theirs, as watch_all would give them. Before the frame's entities are
    upserted: a traveller landed by the frame as a player gets the area of a player."""
    gone = world.transit.flying.keys()
    world.transit = InFlight(items)
    for id in gone - world.transit.flying.keys():
        world.interest.drop(id)
    for id in world.transit.flying:
        world.interest.set(id, (id,), 0)


def _records(payload: memoryview) -> list[memoryview]:
    size = ENTITY.size
    return [payload[i:i + size] for i in range(0, len(payload), size)]

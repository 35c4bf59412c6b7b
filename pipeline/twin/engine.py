"""The Python twin: the three reducer operations of docs/abi.md in plain Python.

It is the readable reference of the rules and the fallback engine; for every
input it must give byte for byte what the WASM engine (reducers_as/) gives.
"""

from __future__ import annotations

from pipeline.errors import EngineError
from pipeline.frames import COMMAND_FRAME, WORLD_FRAME
from pipeline.types import TickResult

from .effect_log import EffectLog
from .rules.aoi import area_of_interest
from .rules.commands import decode_commands, run_command
from .rules.tick import npc_behaviour, regenerate, respawn
from .world import ENTITY, ZONE, Entity, World, Zone


class PythonEngine:
    name = "python"

    def __init__(self) -> None:
        self._world: World | None = None

    def project(self, frame: bytes) -> None:
        """Replace the world with a WorldFrame's, or upsert its entities."""
        f = WORLD_FRAME.decode(frame)
        if f["replace"]:
            zones = (Zone(*values) for values in ZONE.iter_unpack(f["zones"]))
            self._world = World(f["seed"], f["tick"], f["next_id"], zones)
        world = self._require_world()
        for record in _records(f["entities"]):
            world.upsert(Entity.unpack(record))

    def transform(self, frame: bytes) -> TickResult:
        """Run one tick (docs/rules.md, "Tick phases")."""
        world = self._require_world()
        f = COMMAND_FRAME.decode(frame)
        if f["tick"] != world.tick + 1:
            raise EngineError(f["tick"], f"a frame for tick {f['tick']} given to a world at tick {world.tick}")
        text = bytes(f["text"])
        log = EffectLog()
        world.begin_tick()
        try:
            world.tick += 1
            respawn(world, log)
            regenerate(world)
            npc_behaviour(world, log)
            for cmd in decode_commands(f["commands"]):
                run_command(world, cmd, text, log)
            world.seal_tick()
            area_of_interest(world, log)
            changed, removed = world.changes()
        except Exception as exc:
            # As the ABI promises: a failed call leaves the world as it was.
            self._world = world.rolled_back()
            raise EngineError(f["tick"], f"the Python twin failed: {exc!r}") from exc
        return TickResult(tick=world.tick, next_id=world.next_id, effects=log.effects(),
                          recipients=log.recipients(), changed=changed, removed=removed)

    def canonical(self) -> bytes:
        return self._require_world().canonical()

    def _require_world(self) -> World:
        if self._world is None:
            raise EngineError(0, "no world: project a WorldFrame with replace first")
        return self._world


def _records(payload: memoryview) -> list[memoryview]:
    size = ENTITY.size
    return [payload[i:i + size] for i in range(0, len(payload), size)]

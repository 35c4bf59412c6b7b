"""Stage 3, project: materialize the entities contextualize loaded, and a shard's arrivals
(what is in flight into its zones, pipeline/server/shard.py), in one reducer call (on
the engine's thread, behind whatever the last tick queued there)."""

from __future__ import annotations

from ..context import TickContext
from ..engines.enginethread import EngineThread
from ..engines.frames import WORLD_FRAME, arrivals_frame


class Project:
    def __init__(self, engine: EngineThread) -> None:
        self.engine = engine

    async def __call__(self, ctx: TickContext) -> TickContext:
        if ctx.arrivals is not None:
            await self.engine.call(self.engine.engine.project, arrivals_frame(ctx.arrivals, ctx.loaded))
        elif ctx.loaded:
            view = ctx.view
            await self.engine.call(self.engine.engine.project, WORLD_FRAME.encode({
                "seed": view.seed, "tick": view.tick, "next_id": view.next_id, "replace": 0,
                "entities": ctx.loaded}))
        return ctx

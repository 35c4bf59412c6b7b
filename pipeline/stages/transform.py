"""Stage 4, transform: run the tick's batch through the game rules in one reducer call.

On any engine failure the engine is restored from the committed view, so a
failed tick leaves the world exactly as it was, and the error names the tick.
"""

from __future__ import annotations

import hashlib

from ..context import TickContext
from ..engine import Rules
from ..errors import EngineError
from ..frames import COMMAND_FRAME


class Transform:
    """`hash_world`: also take the world hash after the tick (O(world): the
    command log and replay need it; a bench does not)."""

    def __init__(self, engine: Rules, *, hash_world: bool = True) -> None:
        self.engine = engine
        self.hash_world = hash_world

    async def __call__(self, ctx: TickContext) -> TickContext:
        frame = COMMAND_FRAME.encode({"tick": ctx.tick, "commands": ctx.batch.commands, "text": ctx.batch.text})
        try:
            ctx.result = self.engine.transform(frame)
        except EngineError:
            self.engine.project(ctx.view.frame())
            raise
        except Exception as exc:  # a bug in the Python twin: same contract as a trap
            self.engine.project(ctx.view.frame())
            raise EngineError(ctx.tick, f"{self.engine.name} engine failed: {exc!r}") from exc
        ctx.next_view = ctx.view.apply(ctx.result)
        if self.hash_world:
            ctx.world_hash = hashlib.sha256(self.engine.canonical()).digest()
        return ctx

"""Stage 4, transform: run the tick's batch through the game rules in one reducer call.

On any engine failure the engine is restored from the committed view, so a
failed tick leaves the world exactly as it was, and the error names the tick.
"""

from __future__ import annotations

import asyncio
import hashlib

from ..context import TickContext
from ..engine import Rules
from ..errors import EngineError
from ..frames import COMMAND_FRAME


class Transform:
    """`sights=False` has the reducers skip the area-of-interest effects: they never
    change the world, so a replay that writes no effects need not compute them."""

    def __init__(self, engine: Rules, *, sights: bool = True) -> None:
        self.engine = engine
        self.sights = sights

    async def __call__(self, ctx: TickContext) -> TickContext:
        frame = COMMAND_FRAME.encode({"tick": ctx.tick, "commands": ctx.batch.commands, "text": ctx.batch.text,
                                      "skip_area_of_interest": int(not self.sights)})
        try:
            ctx.result = self.engine.transform(frame)
        except EngineError:
            self.engine.project(ctx.view.frame())
            raise
        except Exception as exc:  # a bug in the Python twin: same contract as a trap
            self.engine.project(ctx.view.frame())
            raise EngineError(ctx.tick, f"{self.engine.name} engine failed: {exc!r}") from exc
        # The world hash (O(world); the command log and replay need it) is taken in a
        # thread while this stage updates the view and plan diffs fragments: the WASM
        # call and SHA-256 both release the GIL. Plan waits for it, and nothing calls
        # the engine before then (the next tick starts after plan).
        ctx.hashing = asyncio.get_running_loop().run_in_executor(None, _world_hash, self.engine)
        ctx.next_view = ctx.view.apply(ctx.result)
        return ctx


def _world_hash(engine: Rules) -> bytes:
    return hashlib.sha256(engine.canonical()).digest()

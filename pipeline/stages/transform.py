"""Stage 4, transform: run the tick's batch through the game rules in one reducer call.

The call runs on the engine's thread (pipeline/enginethread.py), and so do,
queued behind it, the world hash (O(world): the command log and replay need
it; its SHA-256 on a thread of its own) and the tick's sightings (its
area-of-interest effects): the event loop
meanwhile updates the view and plans the tick's SQL, and the next tick's
engine calls line up behind them. Plan waits for the hash, actuate for the
sightings.

On any engine failure the engine is restored from the committed view, so a
failed tick leaves the world exactly as it was, and the error names the tick.
Sightings that fail cost that tick's sightings only: the world after the
tick is restored into the engine and the tick goes on without them.
"""

from __future__ import annotations

import logging
import time

from vocabulary.errors import EngineError
from vocabulary.types import TickResult

from ..context import TickContext
from ..enginethread import EngineThread
from ..frames import COMMAND_FRAME
from ..view import WorldView

log = logging.getLogger(__name__)


class Transform:
    """`sights=False` has the reducers skip the area-of-interest effects: they never
    change the world, so a replay that writes no effects need not compute them."""

    def __init__(self, engine: EngineThread, *, sights: bool = True) -> None:
        self.engine = engine
        self.sights = sights

    async def __call__(self, ctx: TickContext) -> TickContext:
        frame = COMMAND_FRAME.encode({"tick": ctx.tick, "commands": ctx.batch.commands, "text": ctx.batch.text,
                                      "skip_area_of_interest": int(not self.sights)})
        ctx.result = await self.engine.call(_transform, self.engine, frame, ctx.view, ctx.tick)
        ctx.hashing = self.engine.world_hash()
        if self.sights:
            ctx.sighting = self.engine.submit(_sightings, self.engine, ctx.view, ctx.result)
        ctx.next_view = ctx.view.apply(ctx.result)
        return ctx


def _transform(engine: EngineThread, frame: bytes, view: WorldView, tick: int) -> TickResult:
    rules = engine.engine
    try:
        return rules.transform(frame)
    except EngineError:
        rules.project(view.frame())
        raise
    except Exception as exc:  # a bug in the Python twin: same contract as a trap
        rules.project(view.frame())
        raise EngineError(tick, f"{rules.name} engine failed: {exc!r}") from exc


def _sightings(engine: EngineThread, view: WorldView, result: TickResult) -> tuple[bytes, float]:
    """The tick's sightings, and the seconds they took."""
    rules = engine.engine
    started = time.perf_counter()
    try:
        return rules.sightings(), time.perf_counter() - started
    except EngineError as exc:
        log.error("tick %d goes without its sightings: %s", result.tick, exc)
        rules.project(view.apply(result).frame())
        return b"", time.perf_counter() - started

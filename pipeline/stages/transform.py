"""Stage 4, transform: run the tick's batch through the game rules in one reducer call.

The call runs on the engine's thread (pipeline/engines/enginethread.py), and so do,
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

When a live tick traps (`isolate_traps`), a bug some input reaches must not
stop the world for everyone: the batch is bisected on the engine's thread,
each half run against the world as the tick found it (the engine restored
after every try); a half that runs clean is innocent, a trapping half is
split again down to single commands. What is found is refused to its
senders and never enters the batch, the command log or a replay; the tick
runs without it. A tick that traps with no command left is not the input's
doing, and its error stands. Replay never isolates: a logged tick that traps
is a bug to see.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from schema._generated.layout import COMMAND_SIZE
from vocabulary.errors import EngineError
from vocabulary.types import Batch, CommandBlock, Incoming, Refusal, TickResult

from ..blocks import block_command, select
from ..context import TickContext
from ..engines.enginethread import EngineThread
from ..engines.frames import COMMAND_FRAME
from ..view import WorldView

log = logging.getLogger(__name__)


class Transform:
    """`sights=False` has the reducers skip the area-of-interest effects: they never
    change the world, so a replay that writes no effects need not compute them."""

    def __init__(self, engine: EngineThread, *, sights: bool = True, isolate_traps: bool = False) -> None:
        self.engine = engine
        self.sights = sights
        self.isolate_traps = isolate_traps

    async def __call__(self, ctx: TickContext) -> TickContext:
        frame = _frame(ctx.batch, self.sights)
        try:
            result = await self.engine.call(_transform, self.engine, frame, ctx.view, ctx.tick)
        except EngineError as first:
            if not self.isolate_traps:
                raise
            log.error("%s; finding the commands that make it fail", first,
                      extra={"event": "trap", "tick": ctx.tick, "stage": "transform"})
            result, ran, bad = await self.engine.call(_isolating, self.engine, ctx.view, ctx.batch, self.sights,
                                                      first)
            now = time.monotonic()
            for i in bad:
                command = block_command(CommandBlock(ctx.batch.commands, ctx.batch.text, b"", now), i)
                log.error("tick %d: left out %s, on which the rules fail", ctx.tick, command,
                          extra={"event": "trap_isolated", "tick": ctx.tick, "stage": "transform"})
                sender = command["player"] if command else None
                ctx.refusals.append(Refusal(Incoming(command, sender, now), TRAPPED))
            ctx.batch = ran
            ctx.trapped = True
        ctx.result = result
        ctx.hashing = self.engine.world_hash()
        if self.sights:
            ctx.sighting = self.engine.submit(_sightings, self.engine, ctx.view, ctx.result)
        ctx.next_view = ctx.view.apply(ctx.result)
        return ctx


TRAPPED = "the rules failed on this command (a bug, reported); the world went on without it"


def _frame(batch: Batch, sights: bool) -> bytes:
    return COMMAND_FRAME.encode({"tick": batch.tick, "commands": batch.commands, "text": batch.text,
                                 "skip_area_of_interest": int(not sights)})


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


def _subset(batch: Batch, keep: np.ndarray) -> Batch:
    commands, text = select(CommandBlock(batch.commands, batch.text, b"", 0.0), keep)
    return Batch(batch.tick, commands, text, batch.source)


def _isolating(engine: EngineThread, view: WorldView, batch: Batch, sights: bool,
               first: EngineError) -> tuple[TickResult, Batch, list[int]]:
    """After `first` trapped the whole batch: (the result, the batch that ran, indexes of the
    commands left out). Raises `first` when the trap is not any command's doing."""
    rules = engine.engine
    count = len(batch.commands) // COMMAND_SIZE

    def traps(keep: np.ndarray) -> bool:
        try:
            rules.transform(_frame(_subset(batch, keep), sights))
        except EngineError:
            return True
        finally:
            rules.project(view.frame())     # every try starts from the world as the tick found it
        return False

    def culprits(indexes: np.ndarray) -> list[int]:
        keep = np.zeros(count, dtype=bool)
        keep[indexes] = True
        if not traps(keep):
            return []
        if len(indexes) == 1:
            return [int(indexes[0])]
        half = len(indexes) // 2
        found = culprits(indexes[:half]) + culprits(indexes[half:])
        return found or [int(i) for i in indexes]     # they fail only together: all of them go

    bad = culprits(np.arange(count)) if count else []
    if not bad:
        raise first
    keep = np.ones(count, dtype=bool)
    keep[bad] = False
    ran = _subset(batch, keep)
    try:
        return rules.transform(_frame(ran, sights)), ran, bad
    except EngineError:
        rules.project(view.frame())
        raise first from None

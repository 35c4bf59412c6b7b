"""A live tick that traps: the commands that make it trap are found, refused and left out; the world goes on.

The trap comes from a small fake at the seam, wrapped around the real WASM
engine: its transform traps whenever the tick holds a `say` of "boom" (as a
rules bug some input reaches would); everything else is the real module."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.context import TickContext
from pipeline.engines.enginethread import EngineThread
from pipeline.engines.frames import COMMAND_FRAME
from pipeline.engines.wasm.wasmtime_host import WasmEngine
from pipeline.stages.transform import TRAPPED, Transform
from pipeline.view import WorldView
from tests.support import player, world
from vocabulary.errors import ReducerTrap
from vocabulary.records import pack_commands
from vocabulary.types import Batch

WORLD = world(*(player(i, 5 + i, 5) for i in range(1, 6)), next_id=10)
COMMANDS = [{"player": 1, "seq": 1, "op": "move", "dx": 1, "dy": 0},
            {"player": 2, "seq": 1, "op": "say", "text": "boom"},
            {"player": 3, "seq": 1, "op": "move", "dx": 0, "dy": 1},
            {"player": 4, "seq": 1, "op": "say", "text": "hello"},
            {"player": 5, "seq": 1, "op": "use"}]


class TrapsOnBoom:
    """The real engine, except that a tick holding `say boom` traps (after it ran, as a trap
    mid-tick would leave the instance: restored by the stage)."""

    name = "wasm"

    def __init__(self, always: bool = False) -> None:
        self.real, self.always, self.calls = WasmEngine(), always, 0

    def transform(self, frame: bytes) -> Any:
        self.calls += 1
        fields = COMMAND_FRAME.decode(frame)
        result = self.real.transform(frame)
        if self.always or b"boom" in bytes(fields["text"]):
            raise ReducerTrap(fields["tick"], "transform trapped: out of fuel (a fake)")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def tick(engine: Any) -> TickContext:
    view = WorldView.from_world(WORLD)
    engine.project(view.frame())
    ctx = TickContext(1, Batch(1, *pack_commands(COMMANDS)), view)
    return asyncio.run(Transform(EngineThread(engine), isolate_traps=True)(ctx))


def test_the_command_that_traps_is_refused_and_the_tick_runs_without_it():
    ctx = tick(TrapsOnBoom())
    assert [(r.incoming.command, r.incoming.sender, r.reason) for r in ctx.refusals] == \
        [(COMMANDS[1], 2, TRAPPED)]
    assert ctx.batch == Batch(1, *pack_commands(COMMANDS[:1] + COMMANDS[2:]), source="")
    clean = WasmEngine()                         # the same tick without it, on an engine that never trapped
    clean.project(WorldView.from_world(WORLD).frame())
    expected = clean.transform(COMMAND_FRAME.encode({"tick": 1, "commands": ctx.batch.commands,
                                                     "text": ctx.batch.text, "skip_area_of_interest": 0}))
    assert ctx.result == expected


def test_a_tick_that_traps_whatever_it_holds_still_fails():
    with pytest.raises(ReducerTrap, match="a fake"):
        tick(TrapsOnBoom(always=True))


def test_replay_never_isolates():
    engine = TrapsOnBoom()
    view = WorldView.from_world(WORLD)
    engine.project(view.frame())
    ctx = TickContext(1, Batch(1, *pack_commands(COMMANDS)), view)
    with pytest.raises(ReducerTrap):
        asyncio.run(Transform(EngineThread(engine))(ctx))
    assert engine.calls == 1


def test_the_live_loop_keeps_ticking_and_answers_the_sender():
    from pipeline.feed import InprocFeed
    from pipeline.server.runner import Inbox, Pipeline, TickLoop

    async def run() -> tuple[InprocFeed, TickLoop]:
        engine = TrapsOnBoom()
        view = WorldView.from_world(WORLD)
        engine.project(view.frame())
        inbox = Inbox()
        feed = InprocFeed(inbox)
        for command in COMMANDS:
            feed.submit(command, command["player"])
        loop = TickLoop(Pipeline(engine, None, feed), view, inbox, hz=200.0)
        await loop.run(asyncio.Event(), max_ticks=3)
        return feed, loop

    feed, loop = asyncio.run(run())
    assert loop.view.tick == 3
    assert [(r.incoming.command, r.reason) for r in feed.refused] == [(COMMANDS[1], TRAPPED)]
    first, text = feed.delivered[0][0], feed.delivered[0][1]
    assert b"boom" not in text and first.tick == 1

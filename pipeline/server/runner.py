"""The pipeline's order, its tick loop, and its outermost error boundary.

    inbox -> negotiate -> contextualize -> project -> transform -> plan -> actuate -> outbox

`Pipeline` runs the six stages of one tick and times each. `TickLoop` runs
ticks at a fixed rate with no drift: tick n is due at start + n * period,
computed from the plan, not from when the last tick ended; when a tick runs
so late that whole slots have passed, those slots are skipped and counted,
never made up. Tick N+1 is computed while tick N commits; commits and the
effects after them stay in tick order, and tick N+2 waits for commit N.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

import numpy as np

from vocabulary.types import Batch, CommandBlock, Incoming

from ..blocks import block_senders, select
from ..context import TickContext
from ..engines.engine import Rules
from ..engines.enginethread import EngineThread
from ..metrics import TickMetrics
from ..ports import Outbox, Store
from ..stages.actuate import Actuate
from ..stages.contextualize import Contextualize
from ..stages.negotiate import Negotiate
from ..stages.plan import Plan
from ..stages.project import Project
from ..stages.transform import Transform
from ..view import WorldView
from .gcpacer import GcPacer
from .retry import until_available
from .shard import ShardGate

log = logging.getLogger(__name__)
T = TypeVar("T")

COMPUTE_STAGES = ("negotiate", "contextualize", "project", "transform", "plan")
STAGES = (*COMPUTE_STAGES, "actuate")
BESIDE = ("sightings",)      # work on the engine's thread beside the path (transform queues it)


class Pipeline:
    def __init__(self, engine: Rules, store: Store | None, outbox: Outbox | None, *,
                 negotiate: Negotiate | None = None, metrics: TickMetrics | None = None,
                 on_committed: Callable[[TickContext], None] | None = None,
                 zones: frozenset[int] | None = None) -> None:
        """`on_committed` sees each tick once it is committed, with every stage's timing (the load test).
        `zones`: a shard's, whose ticks log their zone hash."""
        self.outbox = outbox
        self.on_committed = on_committed
        self.metrics = metrics or TickMetrics()
        self.engine = EngineThread(engine, zone_sets=() if zones is None else (zones,))
        self.compute_stages = (
            ("negotiate", negotiate or Negotiate()),
            ("contextualize", Contextualize(store, self.metrics.outages)),
            ("project", Project(self.engine)),
            ("transform", Transform(self.engine, isolate_traps=True)),
            ("plan", Plan()),
        )
        self.actuate = Actuate(store, outbox)

    async def compute(self, ctx: TickContext) -> TickContext:
        """Negotiate to plan: everything but the commit."""
        started = time.perf_counter()
        for name, stage in self.compute_stages:
            # The previous tick's commit runs beside this compute on the same loop; a
            # stage that never awaits would hold it back, so let it send its next statement.
            await asyncio.sleep(0)
            t = time.perf_counter()
            ctx = await stage(ctx)
            ctx.timings[name] = time.perf_counter() - t
            self.metrics.observe_stage(name, ctx.timings[name])
        self.metrics.computed(ctx, time.perf_counter() - started)
        if self.outbox is not None and ctx.refusals:
            await self.outbox.refuse(ctx)
        return ctx

    async def commit(self, ctx: TickContext) -> TickContext:
        """Actuate, waiting out an unreachable store: the tick's write is plain
        data, and a commit that did land is recognised, not applied twice."""
        t = time.perf_counter()
        ctx = await until_available(f"tick {ctx.tick} commit", lambda: self.actuate(ctx), tick=ctx.tick,
                                    outages=self.metrics.outages)
        ctx.timings["actuate"] = time.perf_counter() - t
        self.metrics.observe_stage("actuate", ctx.timings["actuate"])
        for name in BESIDE:
            if name in ctx.timings:
                self.metrics.observe_stage(name, ctx.timings[name])
        self.metrics.committed(ctx)
        if self.on_committed is not None:
            self.on_committed(ctx)
        return ctx


@dataclass
class Inbox:
    """Commands waiting for the next tick, in arrival order.

    With a `limit`, at most that many commands wait: a server that cannot
    keep up sheds what arrives beyond it (counted in `dropped`) rather than
    queueing without bound and answering ever later. With `per_sender`, one
    sender may have at most that many waiting: a flood from one player is
    shed at the door and never fills the inbox for the others (negotiate
    would refuse it anyway, a burst's worth at a time).
    """

    limit: int | None = None
    per_sender: int | None = None
    dropped: int = 0
    _items: list[Incoming | CommandBlock] = field(default_factory=list)
    _waiting: int = 0
    _by_sender: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self._waiting

    def put(self, incoming: Incoming) -> bool:
        sender = incoming.sender
        if (self.limit is not None and self._waiting >= self.limit) or not self._admit(sender):
            self.dropped += 1
            return False
        self._items.append(incoming)
        self._waiting += 1
        return True

    def put_block(self, block: CommandBlock) -> list[int]:
        """Queue what fits of `block`; returns the indexes of the commands it shed."""
        keep = np.ones(len(block), dtype=bool)
        senders = block_senders(block)
        if self.per_sender is not None:
            for i, sender in enumerate(senders.tolist()):
                keep[i] = self._admit(sender or None)
        if self.limit is not None:
            kept = np.flatnonzero(keep)
            over = kept[max(0, self.limit - self._waiting):]
            keep[over] = False
            for sender in senders[over].tolist():
                self._release(sender)
        shed = np.flatnonzero(~keep).tolist()
        if shed:
            self.dropped += len(shed)
            commands, text = select(block, keep)
            block = CommandBlock(commands, text, senders[keep].tobytes(), block.received)
        if len(block):
            self._items.append(block)
            self._waiting += len(block)
        return shed

    def _admit(self, sender: int | None) -> bool:
        if self.per_sender is None or sender is None:
            return True
        waiting = self._by_sender.get(sender, 0)
        if waiting >= self.per_sender:
            return False
        self._by_sender[sender] = waiting + 1
        return True

    def _release(self, sender: int) -> None:
        if self.per_sender is not None and sender:
            self._by_sender[sender] -= 1

    def drain(self) -> list[Incoming | CommandBlock]:
        items, self._items, self._waiting = self._items, [], 0
        self._by_sender.clear()
        return items


async def _unless(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None (and `work` cancelled) if `stop` is set first."""
    doing, stopping = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({doing, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if doing.done():
        return doing.result()
    doing.cancel()
    await asyncio.gather(doing, return_exceptions=True)
    return None


def schedule(start: float, slot: int, period: float, now: float) -> tuple[float, int]:
    """(seconds to wait, slots skipped) before running the tick of `slot`.

    Due times come from the plan (start + slot * period), so lateness never
    accumulates; a tick so late that whole slots have passed skips them.
    """
    due = start + slot * period
    if now < due:
        return due - now, 0
    return 0.0, int((now - due) // period)


class TickLoop:
    """With a `gate` (a shard's, pipeline/server/shard.py) a tick starts only once every other
    shard has committed the tick before it; it is computed beside its own shard's commit of it."""

    def __init__(self, pipeline: Pipeline, view: WorldView, inbox: Inbox, *, hz: float = 20.0,
                 summary_every: float = 10.0, before_tick: Callable[[int], None] | None = None,
                 gate: ShardGate | None = None) -> None:
        self.pipeline, self.view, self.inbox = pipeline, view, inbox
        self.before_tick = before_tick
        self.gate = gate
        self.stages = [*STAGES, *(["mail"] if gate is not None else [])]    # what summaries report
        self.period = 1.0 / hz
        self.summary_every = summary_every
        self.committed_tick = view.tick
        # Set while the loop waits for a tick's slot: work that must not delay a tick (a
        # metrics scrape, pipeline/operate) waits for it and runs in the slack.
        self.between_ticks = asyncio.Event()

    async def run(self, stop: asyncio.Event, *, max_ticks: int | None = None) -> None:
        try:
            with GcPacer() as gc_pacer:
                await self._run(stop, max_ticks, gc_pacer)
        finally:
            self.between_ticks.set()    # no tick comes any more: nothing need wait for one

    async def _run(self, stop: asyncio.Event, max_ticks: int | None, gc_pacer: GcPacer) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        slot, ran = 0, 0
        pending: asyncio.Task[TickContext] | None = None
        next_summary = start + self.summary_every
        metrics = self.pipeline.metrics
        try:
            while not stop.is_set() and (max_ticks is None or ran < max_ticks):
                wait, skipped = schedule(start, slot, self.period, loop.time())
                if wait:
                    self.between_ticks.set()
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        break
                    except asyncio.TimeoutError:
                        pass
                    finally:
                        self.between_ticks.clear()
                if skipped:
                    metrics.miss(skipped)
                    slot += skipped
                tick = self.view.tick + 1
                if self.before_tick is not None:
                    self.before_tick(tick)
                ctx = TickContext(tick=tick, batch=Batch(tick, b"", b""), view=self.view)
                if self.gate is not None:
                    t = time.perf_counter()
                    opened = await _unless(stop, self.gate.open(ctx, self.inbox.drain))
                    if opened is None:      # stopped while the other shards had not all reached the tick
                        break
                    ctx = opened
                    ctx.began = time.monotonic()
                    ctx.timings["mail"] = time.perf_counter() - t
                    metrics.observe_stage("mail", ctx.timings["mail"])
                else:
                    ctx.incoming = self.inbox.drain()
                    ctx.began = time.monotonic()
                metrics.dropped(self.inbox.dropped)
                ctx = await self.pipeline.compute(ctx)
                if pending is not None:
                    self.committed_tick = (await pending).tick
                pending = asyncio.create_task(self.pipeline.commit(ctx))
                assert ctx.next_view is not None
                self.view = ctx.next_view
                slot += 1
                ran += 1
                await asyncio.sleep(0)      # the commit sends its statement before anything else runs
                self.view = self.view.settle()
                gc_pacer.between_ticks()
                if loop.time() >= next_summary:
                    log.info("%s", metrics.summary([*self.stages, *BESIDE]),
                             extra={"event": "summary", "tick": self.view.tick, **metrics.summary_fields()})
                    next_summary += self.summary_every
        finally:
            if pending is not None:
                self.committed_tick = (await pending).tick

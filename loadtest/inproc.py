"""One load-test run in this process: the live tick loop, fed by simulated players.

The same Pipeline and TickLoop as `fluxworld serve`, against the same kind
of database (a world of its own, in the embedded cluster's bench database
unless --db names another). An open-loop driver offers `players * rate`
commands a second as CommandBlocks, a slice just before each tick; an inbox
bounded at `queue_seconds` of load (default 2 s) sheds the rest, so an
overloaded server shows up as dropped commands and missed ticks, not as a
queue that grows forever.

After `duration` the driver stops, the ticks drain the inbox, and the run
checks itself: every offered command was committed, refused or dropped; gold
is conserved; and the world read back from PostgreSQL hashes to the one in
memory.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Callable

import numpy as np

from persistence.database import Database
from persistence.embedded import pgdata_dir
from persistence.store import WorldStore
from pipeline.context import TickContext
from pipeline.engines.engine import create_engine
from pipeline.ports import Outbox
from pipeline.server.runner import Inbox, Pipeline, TickLoop
from pipeline.stages.negotiate import DEFAULT_BURST, DEFAULT_RATE, Negotiate
from pipeline.view import WorldView
from schema._generated.layout import ENTITY_DTYPE, TRANSIT_DTYPE, ItemType, Kind, TransitKind
from vocabulary.hashing import world_hash
from vocabulary.types import WorldData

from .collector import Collector
from .options import LoadOptions
from .scenarios import Scenario, make_scenario
from .watch import console_open

SAMPLE_EVERY = 1.0
DRAIN_TIMEOUT = 30.0

Progress = Callable[[dict[str, Any]], None]


class OfferedLoad:
    """Offers `per_second` commands a second, spread over the ticks, until stopped."""

    def __init__(self, scenario: Scenario, inbox: Inbox, per_second: float, collector: Collector) -> None:
        self.scenario, self.inbox, self.per_second, self.collector = scenario, inbox, per_second, collector
        self.started: float | None = None
        self.stopped: float | None = None

    def start(self) -> None:
        self.started = time.monotonic()

    def stop(self) -> None:
        self.stopped = time.monotonic()

    def before_tick(self, tick: int) -> None:
        if self.started is None or self.stopped is not None:
            return
        now = time.monotonic()
        due = int(self.per_second * (now - self.started)) - self.collector.totals.offered
        if due > 0:
            self.inbox.put_block(self.scenario.block(due, now))
            self.collector.totals.offered += due
            self.collector.totals.dropped = self.inbox.dropped


def gold_total(world: WorldData) -> int:
    """Gold held by players and npcs, lying in items, and in flight between zones (credits, refunds,
    travellers' purses): what the rules conserve."""
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    lying = (records["kind"] == Kind.item) & (records["item_type"] == ItemType.gold)
    transit = np.frombuffer(world.transit, dtype=TRANSIT_DTYPE)
    travelling = transit["kind"] == TransitKind.traveller
    purses = np.frombuffer(transit["record"][travelling].tobytes(), dtype=ENTITY_DTYPE)["gold"]
    return (int(records["gold"].sum(dtype=np.int64)) + int(records["amount"][lying].sum(dtype=np.int64))
            + int(transit["amount"][~travelling].sum(dtype=np.int64)) + int(purses.sum(dtype=np.int64)))


class LiveWorld:
    """The world under load: engine, pipeline and tick loop as `fluxworld serve` runs them,
    with a Collector on every committed tick. Both transports run one."""

    def __init__(self, options: LoadOptions, engine_name: str, scenario: Scenario, store: WorldStore | None, *,
                 rate_limit: float | None, outbox_for: Callable[[Inbox], Outbox] | None = None,
                 inbox_limit: int | None = None, burst: int | None = None, per_sender: int | None = None) -> None:
        self.scenario, self.store = scenario, store
        self.view = WorldView.from_world(scenario.world)
        self.engine = create_engine(engine_name)
        self.engine.project(self.view.frame())
        self.collector = Collector(pgdata=pgdata_dir() if options.db == "embedded" else None)
        self.inbox = Inbox(limit=inbox_limit or max(1, int(options.queue_seconds * options.offered_per_second)),
                           per_sender=per_sender)
        self.outbox = outbox_for(self.inbox) if outbox_for else None
        negotiate = Negotiate(rate=rate_limit, burst=burst or (DEFAULT_BURST if rate_limit is None else
                                                               max(DEFAULT_BURST, int(rate_limit))))
        self.pipeline = Pipeline(self.engine, store, self.outbox, negotiate=negotiate,
                                 on_committed=self._committed)
        self.loop = TickLoop(self.pipeline, self.view, self.inbox, hz=options.hz, summary_every=float("inf"))
        self._stop = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    def _committed(self, ctx: TickContext) -> None:
        self.collector.committed(ctx)
        assert ctx.result is not None
        self.scenario.see(ctx.result)

    def start(self) -> None:
        self._running = asyncio.create_task(self.loop.run(self._stop))

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    async def drain(self, settled: Callable[[], bool], timeout: float = DRAIN_TIMEOUT) -> None:
        """Let ticks run until `settled()` (or the timeout), then stop after the tick in flight commits."""
        deadline = time.monotonic() + timeout
        while not settled() and self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._running is not None:
            await self._running          # the last tick's compute, then its commit

    async def report(self, transport: str, seconds: float) -> dict[str, Any]:
        """The run's entry for results.json (latency and ratios left for the caller)."""
        self.collector.totals.dropped = self.inbox.dropped
        self.collector.sample(last=True)
        return {"engine": self.engine.name, "scenario": self.scenario.name, "transport": transport,
                **self.collector.summary(seconds, int(self.pipeline.metrics.missed._value.get())),
                "latency_ms": None,
                "checks": await _checks(self.scenario.world, self.loop.view, self.collector, self.store),
                "timeline": self.collector.timeline, "baseline_ratio": None, "echo_ratio": None}


async def seeded(scenario: Scenario, database: Database | None) -> WorldStore | None:
    """The store holding a fresh copy of the scenario's world (None without a database)."""
    if database is None:
        return None
    store = database.store()
    await store.seed(scenario.world, replace=True)
    return store


async def run_inproc(options: LoadOptions, engine_name: str, database: Database | None,
                     progress: Progress) -> dict[str, Any]:
    """One engine's run; `database` None runs without persistence (--db none)."""
    scenario = make_scenario(options.scenario, options.players, options.seed, options.alpha)
    store = await seeded(scenario, database)
    # The bank's hot accounts send thousands of transfers a second by design: no per-player limit there.
    world = LiveWorld(options, engine_name, scenario, store,
                      rate_limit=None if scenario.name == "transfer" else DEFAULT_RATE)
    load = OfferedLoad(scenario, world.inbox, options.offered_per_second, world.collector)
    world.loop.before_tick = load.before_tick
    world.start()
    load.start()
    started = time.monotonic()
    watching: AbstractAsyncContextManager[dict[str, Any]] = nullcontext({})
    if options.console:
        watching = console_open(world, database.dsn if database else None, options.hz, options.duration,
                                _a_player(scenario.world))
    try:
        async with watching as console:
            while (elapsed := time.monotonic() - started) < options.duration and world.running:
                await asyncio.sleep(min(SAMPLE_EVERY, options.duration - elapsed))
                progress(world.collector.sample())
        load.stop()
        await world.drain(lambda: len(world.inbox) == 0)
    finally:
        await world.stop()
    report = await world.report("inproc", time.monotonic() - started)
    if options.console:
        report["console"] = console
    return report


def _a_player(world: WorldData) -> int:
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    return int(records["id"][records["kind"] == Kind.player][0])


async def _checks(world: WorldData, final: WorldView, collector: Collector,
                  store: WorldStore | None) -> dict[str, Any]:
    t = collector.totals
    final_world = final.to_world()
    before, after = gold_total(world), gold_total(final_world)
    checks: dict[str, Any] = {"accounted": t.offered == t.committed + t.refused + t.dropped,
                              "gold_before": before, "gold_after": after, "gold_conserved": before == after,
                              "db_matches": None}
    if store is not None:
        stored = await store.load_world()
        checks["db_matches"] = world_hash(stored) == world_hash(final_world)
        checks["gold_conserved"] = checks["gold_conserved"] and gold_total(stored) == before
    return checks

"""One shard of a sharded load test (`fluxworld loadtest --shards N`, loadtest/sharded.py): a worker process.

    python -m loadtest.shardworker --dsn DSN --zones 1,2 --players P --seed S --rate R --hz H --ticks T
                                   --inbox-limit L --report PATH

It ticks one zone group of a split mmo world as `fluxworld serve --zones`
does (pipeline/server/shard.py): its group's database, its lease, the
barrier and the mail (the ShardGate), `Pipeline(zones=...)`. It builds the
same mmo scenario as the parent from the same seed, so it knows every
player, and offers `rate` commands a second for each player it HOLDS: the
online players in its world, refreshed once a second from its view and at
once, each tick, for the travellers that left it or arrived in it (their
seqs follow the arriving record's, so a player's commands keep rising in
whichever shard it is).

Talks to the parent in JSON lines: on stdout `{"ready": tick}` once the
group is leased and recovered and the engine holds it, then `{"sample":
entry}` every second (a Collector timeline entry), then `{"done": true}`;
on stdin one line `go` starts the ticking. Every shard runs exactly
`--ticks` ticks from the same tick, so none stops while another still waits
at the barrier for it. At the end the worker writes its report (PATH): the
Collector's summary, every committed tick's stage times and its "mail"
wait (barrier and mail, before negotiate: TickLoop puts it in the tick's timings), commands refused as
`elsewhere`, the players it holds, whether its stored world hashes to its
view, and per committed travel (player, tick) on the leaving side and per
arrival (player, tick) on the arriving side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np

from persistence.database import open_database
from persistence.shards import Peers, ZoneGroup, group_of, groups, parse_zones, sibling_dsn
from pipeline.context import TickContext
from pipeline.engines.engine import create_engine
from pipeline.server.recovery import recover
from pipeline.server.runner import BESIDE, STAGES, Inbox, Pipeline, TickLoop
from pipeline.server.shard import ELSEWHERE, Shard
from pipeline.stages.negotiate import DEFAULT_BURST, DEFAULT_RATE, Negotiate
from pipeline.view import WorldView
from schema._generated.layout import ENTITY_DTYPE, TRANSIT_DTYPE, Kind, TransitKind
from vocabulary.hashing import world_hash

from .collector import Collector
from .scenarios import MmoScenario

log = logging.getLogger("loadtest.shardworker")

SAMPLE_EVERY = 1.0       # seconds between timeline entries, and between refreshes of the players held
LEASE_SECONDS = 2.0


def travellers(transit: bytes | None) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(arrive_tick, traveller's record) of the travellers among packed Transit records."""
    items = np.frombuffer(transit or b"", dtype=TRANSIT_DTYPE)
    moving = items[items["kind"] == TransitKind.traveller]
    return moving["arrive_tick"], np.frombuffer(moving["record"].tobytes(), dtype=ENTITY_DTYPE)


class HeldPlayers:
    """The online players this shard holds, as the scenario's `players`, with their seqs kept above
    the last one their record carries (it arrives with them from the other shard)."""

    def __init__(self, scenario: MmoScenario) -> None:
        self.scenario = scenario
        self.held: set[int] = set()
        self._dirty = True

    def refresh(self, view: WorldView) -> None:
        records = np.frombuffer(view.packed(), dtype=ENTITY_DTYPE)
        mine = records[(records["kind"] == Kind.player) & (records["online"] == 1)]
        self._sync(mine)
        self.held = set(mine["id"].tolist())
        self._dirty = True

    def left(self, ids: list[int]) -> None:
        if ids:
            self.held.difference_update(ids)
            self._dirty = True

    def arrived(self, records: np.ndarray[Any, Any]) -> None:
        if len(records):
            self._sync(records)
            self.held.update(records["id"].tolist())
            self._dirty = True

    def _sync(self, records: np.ndarray[Any, Any]) -> None:
        last = self.scenario._seqs.last
        ids = records["id"].astype(np.int64)
        inside = ids < len(last)
        last[ids[inside]] = np.maximum(last[ids[inside]], records["last_seq"][inside])

    def __len__(self) -> int:
        return len(self.held)

    def players(self) -> np.ndarray[Any, Any]:
        if self._dirty:
            self.scenario.players = np.array(sorted(self.held), dtype=np.uint64)
            self._dirty = False
        return self.scenario.players


class HeldLoad:
    """Offers `rate` commands a second for each player held, spread over the ticks (open loop)."""

    def __init__(self, scenario: MmoScenario, held: HeldPlayers, inbox: Inbox, rate: float,
                 collector: Collector) -> None:
        self.scenario, self.held, self.inbox, self.rate, self.collector = scenario, held, inbox, rate, collector
        self._last: float | None = None
        self._credit = 0.0

    def start(self) -> None:
        self._last = time.monotonic()

    def before_tick(self, tick: int) -> None:
        if self._last is None:
            return
        now = time.monotonic()
        self._credit += self.rate * len(self.held) * (now - self._last)
        self._last = now
        due = int(self._credit)
        if due > 0 and len(self.held):
            self._credit -= due
            self.held.players()
            self.inbox.put_block(self.scenario.block(due, now))
            self.collector.totals.offered += due
            self.collector.totals.dropped = self.inbox.dropped


class ShardRun:
    """What one worker records beyond the Collector's figures, tick by tick."""

    def __init__(self, collector: Collector, held: HeldPlayers, scenario: MmoScenario) -> None:
        self.collector, self.held, self.scenario = collector, held, scenario
        self.elsewhere = 0
        self.mail: list[float] = []
        self.stages: dict[str, list[float]] = {s: [] for s in (*STAGES, *BESIDE)}
        self.effects: list[int] = []
        self.rows: list[int] = []
        # (player, tick it left in, zone it goes to, wall clock of that tick's commit)
        self.left: list[tuple[int, int, int, float]] = []
        self.arrived: list[tuple[int, int, float]] = []     # (player, tick it arrived in, wall clock of its commit)

    def committed(self, ctx: TickContext) -> None:
        self.collector.committed(ctx)
        assert ctx.result is not None
        self.scenario.see(ctx.result)
        self.elsewhere += sum(1 for r in ctx.refusals if r.reason == ELSEWHERE)
        self.mail.append(ctx.timings.get("mail", 0.0))
        for stage, values in self.stages.items():
            values.append(ctx.timings.get(stage, 0.0))
        tick = self.collector.ticks[-1]
        self.effects.append(tick.effects)
        self.rows.append(ctx.write.rows if ctx.write is not None else 0)
        due, leaving = travellers(ctx.result.transit)
        leaving = leaving[due > ctx.tick]
        now = time.time()
        self.left.extend((player, ctx.tick, zone, now)
                         for player, zone in zip(leaving["id"].tolist(), leaving["zone"].tolist()))
        self.held.left(leaving["id"].tolist())
        _, arriving = travellers(ctx.arrivals)
        self.arrived.extend((player, ctx.tick, now) for player in arriving["id"].tolist())
        self.held.arrived(arriving)


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    zones = parse_zones(args.zones)
    found = await groups(args.dsn)
    group: ZoneGroup = group_of(found, zones)
    async with open_database(sibling_dsn(args.dsn, group.database)) as database, AsyncExitStack() as stack:
        peers = Peers(args.dsn, found, own=group)
        stack.push_async_callback(peers.close)
        shard = Shard(group, database, peers, args.lease, None)
        stop = asyncio.Event()              # set by the lease keeper once another shard took the group
        fence = await shard.take(stop)
        view = WorldView.from_world(await recover(shard.store))
        engine = create_engine(args.engine)
        engine.project(view.frame())

        scenario = MmoScenario(args.players, args.seed)
        # Every shard knows the same world; each draws its own command stream from it.
        scenario._rng = np.random.default_rng((args.seed + 1, min(zones)))
        held = HeldPlayers(scenario)
        held.refresh(view)
        start_tick = view.tick
        emit({"ready": start_tick, "group": group.name, "fence": fence, "held": len(held)})
        if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
            raise SystemExit("the parent did not say go")

        collector = Collector()             # the measured window (and its CPU) starts now
        record = ShardRun(collector, held, scenario)
        inbox = Inbox(limit=max(1, args.inbox_limit))
        load = HeldLoad(scenario, held, inbox, args.rate, collector)
        pipeline = Pipeline(engine, shard.store, None, negotiate=Negotiate(rate=DEFAULT_RATE, burst=DEFAULT_BURST),
                            on_committed=record.committed, zones=group.zones)
        loop = TickLoop(pipeline, view, inbox, hz=args.hz, summary_every=float("inf"),
                        before_tick=load.before_tick, gate=shard.gate)
        started = time.monotonic()
        load.start()
        ticking = asyncio.create_task(loop.run(stop, max_ticks=args.ticks))
        while not ticking.done():
            await asyncio.wait({ticking}, timeout=SAMPLE_EVERY)
            if not ticking.done():
                held.refresh(loop.view)
                emit({"sample": collector.sample(), "held": len(held)})
        await ticking
        seconds = time.monotonic() - started
        await shard.close()

        collector.totals.dropped = inbox.dropped
        collector.sample(last=True)
        final = loop.view.to_world()
        stored = await shard.store.load_world()
        held.refresh(loop.view)
        return {"group": group.name, "zones": sorted(group.zones), "start_tick": start_tick,
                "final_tick": loop.committed_tick, "left_in_inbox": len(inbox),
                **collector.summary(seconds, int(pipeline.metrics.missed._value.get())),
                "elsewhere": record.elsewhere, "held": len(held),
                "db_matches": world_hash(stored) == world_hash(final),
                "per_tick": {"compute": [t.compute for t in collector.ticks], "mail": record.mail,
                             "stages": record.stages, "effects": record.effects, "rows": record.rows,
                             "most_sightings": [t.most_sightings for t in collector.ticks]},
                "travels": {"left": record.left, "arrived": record.arrived},
                "timeline": collector.timeline}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.shardworker", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="the split world's own database")
    parser.add_argument("--zones", required=True, help="the zone group this shard ticks, e.g. 1,2")
    parser.add_argument("--players", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--ticks", type=int, required=True)
    parser.add_argument("--inbox-limit", type=int, required=True)
    parser.add_argument("--engine", default=None)
    parser.add_argument("--lease", type=float, default=LEASE_SECONDS)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s shard {args.zones} %(levelname)s %(name)s: %(message)s")
    report = asyncio.run(run_worker(args))
    tmp = args.report.with_suffix(".tmp")
    tmp.write_text(json.dumps(report))
    tmp.replace(args.report)
    emit({"done": True})


if __name__ == "__main__":
    main()

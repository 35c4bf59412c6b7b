"""`fluxworld replay`: run recorded batches through the pipeline, hash every tick.

Each engine runs in its own lane (engine + committed view). With both
engines the lanes run in lockstep and the first tick where their results or
hashes differ stops the replay with a DivergenceError naming it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from schema._generated.layout import EFFECT_DTYPE, ENTITY_SIZE, EffectKind
from vocabulary.errors import CheckFailed, DivergenceError
from vocabulary.hashing import world_hash
from vocabulary.types import Batch, TickResult

from .context import TickContext
from .effects import effects_json
from .engines.engine import create_engine
from .engines.enginethread import EngineThread, Hashes
from .formats.batches import SeqGuard, read_batches
from .formats.worldfile import load_world
from .ports import Stage, Store
from .server.gcpacer import GcPacer
from .stages.actuate import Actuate
from .stages.plan import Plan
from .stages.project import Project
from .stages.transform import Transform
from .view import WorldView

GC_EVERY = 25          # ticks between young collections (the tick loop: every tick)
SETTLE_EVERY = 32      # ticks between folding the view's recent changes into its Map


@dataclass
class ReplayReport:
    engine: str
    ticks: int = 0
    final_tick: int = 0
    final_hash: str = ""
    hashes: list[str] = field(default_factory=list)
    commands: int = 0
    rejected: int = 0
    zone_hashes: dict[str, list[str]] = field(default_factory=dict)   # a zone group's name -> its zone hashes
    hashing: list[asyncio.Future[Hashes]] = field(default_factory=list, repr=False)   # while the replay runs

    def as_json(self) -> dict[str, object]:
        return {"ticks": self.ticks, "final_tick": self.final_tick, "final_hash": self.final_hash,
                "hashes": self.hashes, "engine": self.engine, "commands": self.commands,
                "rejected": self.rejected, **({"zone_hashes": self.zone_hashes} if self.zone_hashes else {})}


class Lane:
    """One engine stepping through ticks, with the committed view beside it.

    With a store, every tick also goes through plan and actuate, exactly as
    the live server commits it."""

    def __init__(self, engine_name: str, view: WorldView, store: Store | None = None, *, sights: bool = True,
                 zone_sets: tuple[frozenset[int], ...] = ()) -> None:
        self.engine = EngineThread(create_engine(engine_name), zone_sets=zone_sets)
        self.view = view
        self.stages: list[Stage] = [Project(self.engine), Transform(self.engine, sights=sights)]
        if store is not None:
            self.stages += [Plan(), Actuate(store, outbox=None)]
        self.engine.engine.project(view.frame())

    async def step(self, batch: Batch) -> TickContext:
        ctx = TickContext(tick=batch.tick, batch=batch, view=self.view, arrivals=batch.arrivals)
        if batch.arrivals is not None:          # a zone group's log: its engine took these from the mail
            ctx.view = ctx.view.arriving(batch.arrivals)
        for stage in self.stages:
            ctx = await stage(ctx)
        await ctx.sighted()
        assert ctx.next_view is not None
        self.view = ctx.next_view
        if ctx.tick % SETTLE_EVERY == 0:      # what the ticks changed, into the Map (the view copies the rest)
            self.view = self.view.settle()
        return ctx


async def replay_into(db: str, world_path: Path, batches_path: Path, engine: str, *,
                      effects_out: TextIO | None = None,
                      on_batch: Callable[[], None] | None = None) -> tuple[ReplayReport, WorldView]:
    """Replay, committing every tick through plan and actuate, then prove the
    database holds the world the engines computed."""
    from persistence.database import REPLAY_DATABASE, open_database
    from persistence.migrator import migrate

    from .server.recovery import recover

    async with open_database(db, embedded_database=REPLAY_DATABASE) as database:
        await migrate(database.dsn)
        store = database.store()
        await store.seed(load_world(world_path), replace=True)
        report, view = await replay(world_path, batches_path, engine, effects_out=effects_out, store=store,
                                    on_batch=on_batch)
        stored = await recover(store)
        if world_hash(stored) != report.final_hash and report.ticks:
            raise CheckFailed(f"the world read back from the database hashes to {world_hash(stored)}, "
                              f"the replayed world to {report.final_hash}")
    return report, view


def count_batches(path: Path) -> int:
    """Non-blank lines of a batches file, for the progress bar (0 when unreadable)."""
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def _empty(tick: int) -> Batch:
    return Batch(tick=tick, commands=b"", text=b"", source=f"(empty tick {tick})")


async def replay(world_path: Path, batches_path: Path, engine: str, *,
                 effects_out: TextIO | None = None, store: Store | None = None,
                 on_batch: Callable[[], None] | None = None,
                 zone_sets: tuple[frozenset[int], ...] = ()) -> tuple[ReplayReport, WorldView]:
    """Run the batches; with a store the first lane also commits every tick to it. With
    `zone_sets` (a sharded world's zone groups) it also takes each group's zone hash every tick.

    Area-of-interest effects are computed only when they are written out or
    compared between engines: they never change the world or its hash."""
    world = load_world(world_path)
    names = ["wasm", "python"] if engine == "both" else [engine]
    sights = effects_out is not None or len(names) > 1
    lanes = [Lane(name, WorldView.from_world(world), store if i == 0 else None, sights=sights,
                  zone_sets=zone_sets if i == 0 else ()) for i, name in enumerate(names)]
    report = ReplayReport(engine=engine, final_tick=world.tick)
    guard = SeqGuard(lanes[0].view.last_seq)
    tick = world.tick
    running: asyncio.Task[None] | None = None
    with GcPacer(young_every=GC_EVERY) as gc_pacer:
        # The next line is read and checked while the engines run this one (their thread).
        for batch in read_batches(batches_path, after_tick=world.tick):
            guard.check(batch)
            if running is not None:
                await running
                gc_pacer.between_ticks()
                if on_batch:
                    on_batch()
            while tick + 1 < batch.tick:          # a gap: the ticks between run empty
                tick += 1
                await _tick(lanes, _empty(tick), report, effects_out)
            tick = batch.tick
            report.commands += len(batch.commands) // 64
            running = asyncio.create_task(_tick(lanes, batch, report, effects_out))
            await asyncio.sleep(0)                # the tick hands its batch to the engine, then reading goes on
        if running is not None:
            await running
            if on_batch:
                on_batch()
    hashed = await asyncio.gather(*report.hashing)
    report.hashes = [digest.hex() for digest, _ in hashed]
    for i, zones in enumerate(zone_sets):
        report.zone_hashes[",".join(map(str, sorted(zones)))] = [by_group[i].hex() for _, by_group in hashed]
    report.final_hash = report.hashes[-1] if report.hashes else report.final_hash
    return report, lanes[0].view


async def _tick(lanes: list[Lane], batch: Batch, report: ReplayReport, effects_out: TextIO | None) -> None:
    ctx, *others = [await lane.step(batch) for lane in lanes]
    assert ctx.result is not None
    for other in others:
        assert other.result is not None
        _compare(batch.tick, lanes[0].engine.name, ctx.result, await _hash(ctx),
                 lanes[1].engine.name, other.result, await _hash(other))
    # The hash is still being taken on the engine's thread: the report waits for it later.
    report.hashing.append(asyncio.ensure_future(_hashes(ctx)))
    report.ticks += 1
    report.final_tick = batch.tick
    kinds = np.frombuffer(ctx.result.effects, dtype=EFFECT_DTYPE)["kind"]
    report.rejected += int(np.count_nonzero(kinds == EffectKind.rejected))
    if effects_out is not None:
        for effect in effects_json(ctx.result, batch.text):
            effects_out.write(json.dumps(effect, separators=(",", ":")) + "\n")


async def _hashes(ctx: TickContext) -> Hashes:
    await _hash(ctx)
    assert ctx.world_hash is not None
    return ctx.world_hash, ctx.zone_hashes


async def _hash(ctx: TickContext) -> bytes:
    if ctx.world_hash is None:           # plan, which waits for it, did not run
        assert ctx.hashing is not None, "transform takes the hash"
        ctx.world_hash, ctx.zone_hashes = await ctx.hashing
    return ctx.world_hash


def _compare(tick: int, a_name: str, a: TickResult, a_hash: bytes,
             b_name: str, b: TickResult, b_hash: bytes) -> None:
    """Name the first difference between two engines' tick, if any."""
    for name, size in (("effects", EFFECT_DTYPE.itemsize), ("changed", ENTITY_SIZE),
                       ("recipients", 8), ("removed", 8)):
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            first = next((i for i in range(0, min(len(x), len(y)), size) if x[i:i + size] != y[i:i + size]),
                         min(len(x), len(y)))
            raise DivergenceError(tick, f"{name} differ first at element {first // size} "
                                        f"({a_name}: {len(x) // size}, {b_name}: {len(y) // size} elements)")
    if (a.tick, a.next_id) != (b.tick, b.next_id):
        raise DivergenceError(tick, f"header differs: {a_name} tick/next_id {a.tick}/{a.next_id}, "
                                    f"{b_name} {b.tick}/{b.next_id}")
    if a_hash != b_hash:
        raise DivergenceError(tick, f"world hashes differ: {a_name} {a_hash.hex()}, {b_name} {b_hash.hex()}")

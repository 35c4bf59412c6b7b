"""`fluxworld timetravel`: does time travel to a tick 10,000 ticks back answer in under 2 s?

The goal is the console's (pipeline/operate/timetravel.py): an operator asks
for a past tick and waits. What it costs is loading the newest snapshot at
or below the tick and replaying the log from there, so it depends on the
world's size, the load each tick carried and the snapshot spacing. This
command builds such a history and times the requests:

- the history: the load test's mmo world and command stream (loadtest/
  scenarios.py, `--rate` commands per player a second at `--hz`), each tick
  run and committed exactly as `fluxworld replay --db` commits it (the
  pipeline's project, transform, plan and actuate: a log row and the world's
  fragments per tick), and snapshots by serve's own Checkpointer every
  `--checkpoint-every` ticks. The commands skip negotiate (no rate limits or
  inbox), as a logged batch does on replay; the rules still reject what
  they reject. This is the cheapest honest way to ten thousand logged ticks:
  a driven `serve` would run them at its tick rate, not as fast as it can;
- the requests, through TimeTravel and its worker process, as the console
  makes them: the tick `--back` ticks before the last (cold: a snapshot and
  the log after it), the tick after it (a step), the tick before it (a step
  back: from the nearest world the worker kept), and a diff of the two.

The replay rate it prints (ticks a second in the worker) says which snapshot
spacing meets the goal: the worst case replays spacing - 1 ticks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click
from tqdm import tqdm

from persistence.database import check_db_option, open_database
from persistence.migrator import migrate
from pipeline.engines.engine import ENGINES, default_engine
from pipeline.operate.timetravel import PastWorld, TimeTravel
from pipeline.replay import Lane
from pipeline.server.checkpointer import DEFAULT_EVERY, Checkpointer
from pipeline.view import WorldView
from vocabulary.errors import FluxworldError
from vocabulary.types import Batch

from .scenarios import MmoScenario

GOAL_SECONDS = 2.0
# Its own database in the embedded cluster: the load tests and `bench` replace the bench one's world
# whenever they run, which would pull this long build out from under it.
TRAVEL_DATABASE = "fluxworld_travelbench"


@click.command("timetravel")
@click.option("--players", type=click.IntRange(1), default=1_000, show_default=True,
              help="Online players of the mmo world (it holds three entities per player).")
@click.option("--ticks", type=click.IntRange(1), default=10_500, show_default=True, help="Ticks of logged history.")
@click.option("--back", type=click.IntRange(0), default=10_000, show_default=True,
              help="How far before the last tick the timed request goes.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=DEFAULT_EVERY, show_default=True,
              help="Ticks between world snapshots (serve's --checkpoint-every).")
@click.option("--rate", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Commands each player sends a second (the load test's mmo default).")
@click.option("--hz", type=click.FloatRange(min=0.1), default=20.0, show_default=True, help="Ticks a second.")
@click.option("--engine", type=click.Choice(ENGINES), default=None, help="Default: $FLUXWORLD_ENGINE, else wasm.")
@click.option("--db", default="embedded", show_default=True,
              help="embedded (a database of its own, never the server's world) or a postgresql:// DSN whose "
                   "stored world is REPLACED.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the world and the command stream.")
def timetravel_command(players: int, ticks: int, back: int, checkpoint_every: int, rate: float, hz: float,
                       engine: str | None, db: str, seed: int) -> None:
    """Build a logged history under the mmo load, then time time-travel requests into it."""
    if back >= ticks:
        raise click.BadParameter(f"--back {back} must be below --ticks {ticks}", param_hint="--back")
    try:
        check_db_option(db)
        asyncio.run(_bench(players, ticks, back, checkpoint_every, rate / hz, engine or default_engine(), db, seed))
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(1)


async def _bench(players: int, ticks: int, back: int, every: int, per_player: float, engine: str, db: str,
                 seed: int) -> None:
    scenario = MmoScenario(players, seed)
    per_tick = max(1, round(players * per_player))
    entities = len(scenario.world.entities) // 120
    click.echo(f"world: mmo, {players} players online, {entities} entities; {per_tick} commands a tick; "
               f"{ticks} ticks, a snapshot every {every}; engine {engine}")
    async with open_database(db, embedded_database=TRAVEL_DATABASE) as database:
        await migrate(database.dsn)
        started = time.perf_counter()
        await _history(database.store(), Checkpointer(database.checkpoints(), every, fence=None), scenario,
                       per_tick, ticks, engine)
        click.echo(f"history: {ticks} ticks built and committed in {time.perf_counter() - started:.1f} s")
        await _measure(database.dsn, engine, back, every)


async def _history(store: Any, checkpointer: Checkpointer, scenario: MmoScenario, per_tick: int, ticks: int,
                   engine: str) -> None:
    await store.seed(scenario.world, replace=True)
    lane = Lane(engine, WorldView.from_world(scenario.world), store, sights=False)
    await _extend(lane, checkpointer, scenario, per_tick, ticks)
    await _finish(lane, checkpointer)


async def _extend(lane: Lane, checkpointer: Checkpointer, scenario: MmoScenario, per_tick: int, ticks: int) -> None:
    """`ticks` more ticks of the mmo load, run and committed, snapshots as serve writes them."""
    first = lane.view.tick + 1
    with tqdm(total=ticks, unit="tick", desc="history", disable=None, file=sys.stderr) as bar:
        for tick in range(first, first + ticks):
            block = scenario.block(per_tick, time.monotonic())
            ctx = await lane.step(Batch(tick, block.commands, block.text, f"mmo tick {tick}"))
            assert ctx.result is not None, "transform ran"
            scenario.see(ctx.result)          # the players act on what they saw, as the load test's do
            checkpointer.committed(ctx)
            bar.update()


async def _finish(lane: Lane, checkpointer: Checkpointer) -> None:
    await checkpointer.close()
    if checkpointer.failed or checkpointer.skipped:
        raise FluxworldError(f"snapshots: {checkpointer.failed} failed, {len(checkpointer.skipped)} skipped "
                             f"(written: {checkpointer.written})")
    lane.engine.close()


@click.command("recoverytime")
@click.option("--players", type=click.IntRange(1), default=100, show_default=True,
              help="Online players of the mmo world (the world's size stays; only the log grows).")
@click.option("--at", "at_ticks", type=click.IntRange(1), multiple=True, default=[10_000, 100_000],
              show_default=True, help="Logged ticks at which recovery is timed (the history grows through each).")
@click.option("--checkpoint-every", type=click.IntRange(1), default=DEFAULT_EVERY, show_default=True)
@click.option("--repeat", type=click.IntRange(1), default=5, show_default=True, help="Recoveries timed at each.")
@click.option("--db", default="embedded", show_default=True,
              help="embedded (a database of its own) or a postgresql:// DSN whose stored world is REPLACED.")
def recovery_command(players: int, at_ticks: tuple[int, ...], checkpoint_every: int, repeat: int, db: str) -> None:
    """Is recovery flat in the log's length? Grow one logged history and time `recover` at each length."""
    try:
        check_db_option(db)
        asyncio.run(_recovery(players, sorted(at_ticks), checkpoint_every, repeat, db))
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(1)


async def _recovery(players: int, at_ticks: list[int], every: int, repeat: int, db: str) -> None:
    from pipeline.server.recovery import recover

    scenario = MmoScenario(players, 1)
    per_tick = max(1, round(players * 2.0 / 20))
    click.echo(f"world: mmo, {len(scenario.world.entities) // 120} entities, {per_tick} commands a tick, "
               f"a snapshot every {every} ticks")
    async with open_database(db, embedded_database=TRAVEL_DATABASE) as database:
        await migrate(database.dsn)
        store = database.store()
        await store.seed(scenario.world, replace=True)
        lane = Lane(default_engine(), WorldView.from_world(scenario.world), store, sights=False)
        checkpointer = Checkpointer(database.checkpoints(), every, fence=None)
        for at in at_ticks:
            await _extend(lane, checkpointer, scenario, per_tick, at - lane.view.tick)
            await checkpointer.close()
            seconds = []
            for _ in range(repeat):
                started = time.perf_counter()
                world = await recover(store)
                seconds.append(time.perf_counter() - started)
            assert world.tick == at
            logged = await store.log_count()
            click.echo(f"{logged:>8,} logged ticks, {await database.checkpoints().count()} snapshots: recovery "
                       f"median {1000 * sorted(seconds)[len(seconds) // 2]:.1f} ms, "
                       f"min {1000 * min(seconds):.1f} ms over {repeat}")
        await _finish(lane, checkpointer)


async def _measure(dsn: str, engine: str, back: int, every: int) -> None:
    started = time.perf_counter()
    async with TimeTravel(dsn, engine) as travel:
        click.echo(f"worker: started in {time.perf_counter() - started:.2f} s")
        span = await travel.span()
        assert span is not None, "the seed wrote a snapshot"
        target = span[1] - back
        far = await travel.world_at(target)
        _show(f"{back} ticks back", far)
        _show("a step forward", await travel.world_at(target + 1))
        _show("a step back", await travel.world_at(target - 1))
        started = time.perf_counter()
        changes = await travel.diff(target - 1, target + 1)
        click.echo(f"diff of ticks {target - 1} and {target + 1}: {len(changes)} entities differ, "
                   f"{time.perf_counter() - started:.3f} s")
    # The worst tick near there: the one just before the next snapshot, asked of a new worker (no cache).
    worst_tick = min(span[1], (target // every + 1) * every - 1)
    async with TimeTravel(dsn, engine) as travel:
        worst = await travel.world_at(worst_tick)
        _show("the worst case (a new worker, the tick before a snapshot)", worst)
    for what, past in ((f"{back} ticks back", far), ("the worst case", worst)):
        verdict = "met" if past.seconds < GOAL_SECONDS else "NOT met"
        click.echo(f"goal, {what}: under {GOAL_SECONDS:g} s {verdict} ({past.seconds:.3f} s)")
    if worst.replayed:
        rate = worst.replayed / worst.seconds
        # The worst request replays spacing - 1 ticks; the rest of a request is about a snapshot's load.
        click.echo(f"replay: {rate:.0f} ticks a second (whole requests, the load included): a spacing of about "
                   f"{int(GOAL_SECONDS * rate)} ticks or less meets the goal at this load")


def _show(what: str, past: PastWorld) -> None:
    same = "equal" if past.hash == past.logged_hash else f"DIFFERENT from the logged {past.logged_hash}"
    click.echo(f"{what}: tick {past.tick}, {past.seconds:.3f} s, {past.replayed} ticks replayed, "
               f"hash {past.hash[:16]} {same}")

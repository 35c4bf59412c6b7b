"""`fluxworld loadtest --scenario mmo --shards N`: the mmo scenario over N shard processes on this machine.

docs/scale-out.md. The parent builds the mmo world for P players
(ceil(P/1000) zones), seeds it into the bench database (replacing what is
there), splits it into N zone groups of contiguous zones (as balanced as
the zones allow: `fluxworld world split`, a database per group), and starts
N worker processes (loadtest/shardworker.py), each ticking one group as
`fluxworld serve --zones` does, with the offered load of the players it
holds. Players travel (1% of commands, to any other zone: some to a zone of
the other shard) and send gold to players of the zone they were born in,
wherever those are now, so credits cross shards too.

The workers report once they hold their group (lease taken, world
recovered, engine loaded); then the parent tells them all to go, and each
runs exactly ceil(duration x hz) ticks from the same tick, so every shard's
last tick commits and none is left waiting at the barrier for another. Once
they are done the parent aggregates their figures and checks the run:

- every shard accounted for each command it offered (committed, refused,
  among them `elsewhere`, or dropped);
- gold is conserved over the stored world merged from its groups
  (pipeline/server/shardcheck.py merge_worlds, what is in flight included);
- each shard's stored world hashes to the one in its memory;
- `fluxworld shards check`: every group's log replayed in one process gives
  every tick's zone hashes, and the merged stored world (skip with
  --no-shards-check: it replays the whole run in this process);
- every travel arrives: for each traveller a tick committed leaving one
  shard, the tick it appears in the destination's world (the arriving
  side's `ctx.arrivals`); travel ticks = arrival tick - the tick it left.

The run's entry in results.json has the usual figures for the world (tick
ms: per tick, the slowest shard's; totals summed, ticks and missed ticks the
most any shard had) and a "shards" section (loadtest/report.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from persistence.database import Database
from persistence.embedded import pgdata_dir
from persistence.shards import ZoneGroup, database_of, neighbours, sibling_dsn, split
from pipeline.server.runner import BESIDE, STAGES
from pipeline.server.shardcheck import check_shards, merge_worlds, stored_world
from vocabulary.errors import CheckFailed, InputError

from .collector import CpuMeter, percentiles, postgres_processes
from .inproc import gold_total
from .options import LoadOptions
from .scenarios import PLAYERS_PER_ZONE, mmo_world

Progress = Callable[[dict[str, Any]], None]
Note = Callable[[str], None]

READY_TIMEOUT = 300.0        # seconds a worker may take to hold its group (a lease left by a crash: 2 s)
WORKER_LOG_LINES = 15


def zone_groups(zones: int, shards: int) -> list[frozenset[int]]:
    """Zones 1..`zones` in `shards` runs of contiguous zones, their sizes differing by one at most."""
    if zones < shards:
        raise InputError(f"--shards {shards} needs at least {shards} zones; {zones} zone(s) "
                         f"({PLAYERS_PER_ZONE:,} players a zone): give --players {shards * PLAYERS_PER_ZONE:,} or more")
    return neighbours(list(range(1, zones + 1)), shards)


class _Worker:
    def __init__(self, index: int, group: ZoneGroup, process: asyncio.subprocess.Process, log: Path,
                 report: Path) -> None:
        self.index, self.group, self.process, self.log, self.report = index, group, process, log, report
        self.ready: dict[str, Any] | None = None
        self.samples: list[dict[str, Any]] = []
        self.done = False

    def tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n  ".join(lines[-WORKER_LOG_LINES:])


async def run_sharded(options: LoadOptions, engine_name: str, database: Database | None, progress: Progress,
                      note: Note) -> dict[str, Any]:
    """One run over `options.shards` worker processes; the run's entry for results.json."""
    if database is None or options.transport != "inproc" or options.scenario != "mmo":
        raise InputError("--shards runs the mmo scenario in-process (--transport inproc) against a database")
    zone_sets = zone_groups(math.ceil(options.players / PLAYERS_PER_ZONE), options.shards)
    for zones in zone_sets:
        ZoneGroup.named(zones, database_of(database.dsn))     # a name PostgreSQL takes, or an InputError
    world, _ = mmo_world(options.players, options.seed)
    await database.store().seed(world, replace=True)
    found = await split(database.dsn, zone_sets, replace=True)
    ticks = max(1, math.ceil(options.duration * options.hz))
    inbox_limit = max(1, int(options.queue_seconds * options.offered_per_second / options.shards))
    directory = Path(tempfile.mkdtemp(prefix="fluxworld-shards-"))
    note(f"{options.shards} shards: zone groups {'; '.join(g.name for g in found)}, {ticks} ticks each "
         f"(worker logs in {directory})")
    postgres_cpu = CpuMeter(postgres_processes(pgdata_dir() if options.db == "embedded" else None))
    workers: list[_Worker] = []
    try:
        for i, group in enumerate(found):
            log, report = directory / f"shard-{i + 1}.log", directory / f"shard-{i + 1}.json"
            with open(log, "wb") as err:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "loadtest.shardworker", "--dsn", database.dsn, "--zones", group.name,
                    "--players", str(options.players), "--seed", str(options.seed), "--rate", str(options.rate),
                    "--hz", str(options.hz), "--ticks", str(ticks), "--inbox-limit", str(inbox_limit),
                    "--engine", engine_name, "--report", str(report),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            workers.append(_Worker(i, group, process, log, report))
        reading = [asyncio.create_task(_read(w)) for w in workers]
        await _all(workers, lambda w: w.ready is not None, READY_TIMEOUT, "hold its zone group")
        postgres_cpu.read()
        started = last_read = time.monotonic()
        postgres_cpu_s = 0.0        # read each second: a backend that exits takes its last interval with it
        for w in workers:
            assert w.process.stdin is not None
            w.process.stdin.write(b"go\n")
            await w.process.stdin.drain()
        shown = 0
        deadline = 10 * options.duration + 120.0
        while not all(w.done for w in workers):
            _failed(workers)
            if time.monotonic() - started > deadline:
                raise CheckFailed(f"the shards did not finish {ticks} ticks within {deadline:.0f} s")
            if time.monotonic() - last_read >= 1.0:
                postgres_cpu_s += postgres_cpu.read() / 100 * (time.monotonic() - last_read)
                last_read = time.monotonic()
            ready = min(len(w.samples) for w in workers)
            while shown < ready:
                progress(_merged_entry([w.samples[shown] for w in workers]))
                shown += 1
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        postgres_percent = 100 * (postgres_cpu_s + postgres_cpu.read() / 100 * (time.monotonic() - last_read)) / seconds
        await asyncio.gather(*(w.process.wait() for w in workers))
        await asyncio.gather(*reading)
        _failed(workers, finished=True)
        reports = [json.loads(w.report.read_text()) for w in workers]
    except BaseException:
        for w in workers:
            if w.process.returncode is None:
                w.process.kill()
                await w.process.wait()
        raise
    run = _aggregate(options, engine_name, found, reports, seconds, postgres_percent)
    run["checks"] = await _checks(options, database.dsn, found, reports, world, run, engine_name, note)
    shutil.rmtree(directory, ignore_errors=True)
    return run


async def _read(worker: _Worker) -> None:
    stdout = worker.process.stdout
    assert stdout is not None
    async for line in stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "ready" in message:
            worker.ready = message
        elif "sample" in message:
            worker.samples.append({**message["sample"], "held": message.get("held")})
        elif message.get("done"):
            worker.done = True


def _failed(workers: list[_Worker], *, finished: bool = False) -> None:
    """CheckFailed for a worker that exited with an error (`finished`: its output all read, or without done)."""
    for w in workers:
        code = w.process.returncode
        if code is not None and (code != 0 or (finished and not w.done)):
            raise CheckFailed(f"shard {w.index + 1} (zones {w.group.name}) exited with {code}:\n  {w.tail()}")


async def _all(workers: list[_Worker], condition: Callable[[_Worker], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not all(condition(w) for w in workers):
        _failed(workers)
        if time.monotonic() > deadline:
            late = [w.group.name for w in workers if not condition(w)]
            raise CheckFailed(f"shard(s) of zones {'; '.join(late)} did not {what} within {timeout:.0f} s")
        await asyncio.sleep(0.05)


def _merged_entry(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One timeline entry of the world from each shard's of the same interval: counts and CPU summed,
    tick times the slowest shard's, stage means averaged."""
    counts = ("offered", "committed", "refused", "dropped", "rows")
    merged: dict[str, Any] = {"t": max(e["t"] for e in entries), **{k: sum(e[k] for e in entries) for k in counts},
                              "ticks": max(e["ticks"] for e in entries),
                              "tick_ms": {q: max(e["tick_ms"][q] for e in entries) for q in entries[0]["tick_ms"]},
                              "stage_ms": {s: round(float(np.mean([e["stage_ms"][s] for e in entries])), 3)
                                           for s in entries[0]["stage_ms"]},
                              "cpu_percent": round(sum(e["cpu_percent"] for e in entries), 1)}
    if all(e.get("held") is not None for e in entries):
        merged["held"] = [e["held"] for e in entries]
    return merged


def _world_ticks(reports: list[dict[str, Any]], key: str, *, stage: str | None = None) -> np.ndarray[Any, Any]:
    """Per tick of the world, over its shards (every shard commits the same ticks): the slowest's value."""
    series = [r["per_tick"]["stages"][stage] if stage else r["per_tick"][key] for r in reports]
    n = min(len(s) for s in series)
    return np.max(np.array([s[:n] for s in series], dtype=np.float64), axis=0) if n else np.zeros(0)


def _aggregate(options: LoadOptions, engine_name: str, found: list[ZoneGroup], reports: list[dict[str, Any]],
               seconds: float, postgres_percent: float) -> dict[str, Any]:
    keys = ("offered", "committed", "refused", "dropped", "rule_rejected", "rows_written")
    totals: dict[str, int] = {k: sum(r["totals"][k] for r in reports) for k in keys}
    totals["ticks"] = max(r["totals"]["ticks"] for r in reports)
    totals["missed_ticks"] = max(r["totals"]["missed_ticks"] for r in reports)
    totals["elsewhere"] = sum(r["elsewhere"] for r in reports)
    every = {s: [v for r in reports for v in r["per_tick"]["stages"][s]] for s in (*STAGES, *BESIDE)}
    effects = [np.asarray(r["per_tick"]["effects"], dtype=np.float64) for r in reports]
    n = min(len(e) for e in effects)
    world_effects = np.sum([e[:n] for e in effects], axis=0) if n else np.zeros(0)
    shards = [_shard_entry(r, g) for r, g in zip(reports, found)]
    server_cpu = sum(r["cpu"]["server_cpu_s"] for r in reports)
    timeline = [_merged_entry([r["timeline"][i] for r in reports])
                for i in range(min(len(r["timeline"]) for r in reports))]
    return {
        "engine": engine_name, "scenario": options.scenario, "transport": options.transport,
        "seconds": round(seconds, 3), "totals": totals,
        "rates": {"offered_per_s": round(totals["offered"] / seconds, 1),
                  "committed_per_s": round(totals["committed"] / seconds, 1),
                  "rows_per_s": round(totals["rows_written"] / seconds, 1)},
        "tick_ms": percentiles(_world_ticks(reports, "compute")),
        "commit_ms": percentiles(_world_ticks(reports, "", stage="actuate")),
        "stage_ms": {s: {k: v for k, v in percentiles(values).items() if k in ("mean", "p50", "p99")}
                     for s, values in every.items()},
        "effects": {"per_tick": percentiles(world_effects, scale=1.0),
                    "most_sightings_per_observer": max(max(r["per_tick"]["most_sightings"], default=0)
                                                       for r in reports)},
        "cpu": {"server_percent": round(100 * server_cpu / seconds, 1), "server_cpu_s": round(server_cpu, 2),
                "other_percent": {"postgres": round(postgres_percent, 1) if options.db == "embedded" else None}},
        "latency_ms": None, "timeline": timeline, "baseline_ratio": None, "echo_ratio": None,
        "shards": {"count": len(found), "groups": shards,
                   "mail_ms": percentiles([v for r in reports for v in r["per_tick"]["mail"]]),
                   "travel_ticks": travel_ticks(reports),
                   "shards_check": None},
    }


def _shard_entry(report: dict[str, Any], group: ZoneGroup) -> dict[str, Any]:
    t = report["totals"]
    return {"zones": group.name, "database": group.database, "ticks": t["ticks"], "missed_ticks": t["missed_ticks"],
            "start_tick": report["start_tick"], "final_tick": report["final_tick"],
            "tick_ms": report["tick_ms"], "mail_ms": percentiles(report["per_tick"]["mail"]),
            "commit_ms": report["commit_ms"],
            "offered": t["offered"], "committed": t["committed"], "refused": t["refused"],
            "elsewhere": report["elsewhere"], "dropped": t["dropped"], "rule_rejected": t["rule_rejected"],
            "left_in_inbox": report["left_in_inbox"], "held": report["held"],
            "travels_left": len(report["travels"]["left"]), "travels_arrived": len(report["travels"]["arrived"]),
            "server_percent": report["cpu"]["server_percent"], "db_matches": report["db_matches"]}


def travel_ticks(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Each travel, joined: (player, tick it left in) on the leaving shard with the first arrival of that
    player after it, on whichever shard; ticks between, within one shard's zones and between shards, and
    between shards the wall-clock time from the leaving tick's commit to the arrival tick's."""
    arrivals: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for shard, r in enumerate(reports):
        for player, tick, *when in r["travels"]["arrived"]:
            arrivals[player].append((tick, shard, when[0] if when else math.nan))
    for seen in arrivals.values():
        seen.sort()
    final = min(r["final_tick"] for r in reports)
    between: list[int] = []
    within: list[int] = []
    between_ms: list[float] = []
    in_flight = lost = 0
    for shard, r in enumerate(reports):
        for player, tick, _zone, *when in r["travels"]["left"]:
            arrival = next((a for a in arrivals.get(player, ()) if a[0] > tick), None)
            if arrival is None:
                if tick >= final:
                    in_flight += 1          # left in the last tick: it arrives in a tick nobody ran
                else:
                    lost += 1
                continue
            if arrival[1] != shard:
                between.append(arrival[0] - tick)
                if when and not math.isnan(arrival[2]):
                    between_ms.append(1000 * (arrival[2] - when[0]))
            else:
                within.append(arrival[0] - tick)
    ms = percentiles(between_ms, scale=1.0)
    return {"travels": len(between) + len(within) + in_flight + lost,
            "between_shards": _tick_stats(between), "within_shard": _tick_stats(within),
            "all": _tick_stats(between + within), "in_flight_at_end": in_flight, "never_arrived": lost,
            "between_shards_ms": {k: ms[k] for k in ("p50", "p99", "max")} if between_ms else None}


def _tick_stats(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return {"count": len(values), "p50": round(float(p50), 2), "p99": round(float(p99), 2), "max": max(values)}


async def _checks(options: LoadOptions, dsn: str, found: list[ZoneGroup], reports: list[dict[str, Any]],
                  world: Any, run: dict[str, Any], engine_name: str, note: Note) -> dict[str, Any]:
    accounted = all(r["totals"]["offered"] == r["totals"]["committed"] + r["totals"]["refused"]
                    + r["totals"]["dropped"] for r in reports)
    merged = merge_worlds(found, [await stored_world(sibling_dsn(dsn, g.database)) for g in found])
    before, after = gold_total(world), gold_total(merged)
    travel = run["shards"]["travel_ticks"]
    checks: dict[str, Any] = {"accounted": accounted, "gold_before": before, "gold_after": after,
                              "gold_conserved": before == after,
                              "db_matches": all(r["db_matches"] for r in reports),
                              "travels_arrive": travel["never_arrived"] == 0, "shards_check": None}
    if options.shards_check:
        started = time.monotonic()
        result = await check_shards(dsn, engine_name)
        checks["shards_check"] = result.ok
        run["shards"]["shards_check"] = {"ok": result.ok, "ticks": result.ticks, "compared": result.compared,
                                         "commands": result.commands, "final_tick": result.final_tick,
                                         "whole_world": result.whole_world, "problems": result.problems,
                                         "seconds": round(time.monotonic() - started, 2)}
        note(f"shards check: {'OK' if result.ok else 'FAILED'}, {result.ticks:,} ticks and {result.commands:,} "
             f"commands replayed in one process in {time.monotonic() - started:.1f} s; {result.whole_world}"
             + "".join(f"\n  {p}" for p in result.problems))
    return checks

"""`fluxworld faults --shards`: kill and pause shards of a two-zone world; nothing may be lost or doubled.

A two-zone world (loadtest/shardworld.py) is split into groups 1 and 2 and
ticked by two shard processes, both driven by one recorded batches file
(`serve --zones N --drive`: each takes the commands of the players it holds).
Players move, fight, travel between the shards and send gold across them.
Trial after trial, at a random moment, one of:

- kill-shard: SIGKILL a shard (often mid-commit) and start it again: it
  waits for its lease to expire, recovers its group, and the other shard,
  held at the barrier meanwhile, goes on;
- zombie-shard: SIGSTOP a shard past its lease, start another for its zones,
  which takes the group (a new fence); then SIGCONT the paused one: it must
  stop without writing anything (its lease renewal or its next commit finds
  the fence moved).

At the end, with both shards at the file's last tick: `shards check` (every
group's zone hash at every tick equals a replay of the merged logs in one
process, and so does the merged stored world), `shards export` replayed by
`fluxworld replay --zones` gives every logged zone hash, the console's time
travel rebuilds each group's past ticks to their logged hashes, the stored world's entities
equal a one-process replay of the same file (what is in flight may differ in
order only), and gold is conserved counting what is in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .shardworld import two_zone_world, write_two_zone_drive

SHARD_FAULTS = ("kill-shard", "zombie-shard")
FINISH_HZ = 1000.0
TAKEOVER_TIMEOUT = 30.0


@dataclass
class ShardCampaign:
    trials: Counter[str] = field(default_factory=Counter)
    shard_starts: int = 0
    fenced_zombies: int = 0
    ticks: int = 0
    checked: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Shards:
    """The shard processes by zone group, each start logged to a file of its own."""

    def __init__(self, directory: Path, drive: Path, env: dict[str, str], lease: float) -> None:
        self.directory, self.drive, self.env, self.lease = directory, drive, env, lease
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[int, Path] = {}
        self.starts = 0

    def start(self, group: str, hz: float) -> subprocess.Popen[bytes]:
        self.starts += 1
        path = self.directory / f"shard-{group}-{self.starts}.log"
        with open(path, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "serve", "--zones", group, "--drive", str(self.drive),
                 "--hz", str(hz), "--no-xmpp", "--http", "off", "--lease", str(self.lease),
                 "--checkpoint-every", "500"], stdout=out, stderr=subprocess.STDOUT, env=self.env)
        self.logs[process.pid] = path
        self.running[group] = process
        return process

    def tail(self, process: subprocess.Popen[bytes], lines: int = 6) -> str:
        return "\n  ".join(self.logs[process.pid].read_text(errors="replace").splitlines()[-lines:])


def run_shard_campaign(directory: Path, trials: int, *, seed: int = 1, players: int = 40, hz: float = 100.0,
                       lease: float = 1.0, ticks_per_trial: int = 200,
                       progress: Callable[[str], None] | None = None) -> ShardCampaign:
    directory.mkdir(parents=True, exist_ok=True)
    world, drive, state = directory / "world.json", directory / "drive.jsonl", directory / "state"
    from pipeline.formats.worldfile import dump_world

    dump_world(two_zone_world(players, seed), world)
    ticks = trials * ticks_per_trial
    write_two_zone_drive(drive, players, ticks, seed)
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(state)}
    for args in (["db", "init"], ["world", "load", str(world)], ["world", "split", "1", "2"]):
        subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, check=True, capture_output=True)

    result = ShardCampaign(ticks=ticks)
    rng = random.Random(seed)
    started = time.monotonic()
    shards = _Shards(directory, drive, env, lease)
    for group in ("1", "2"):
        shards.start(group, hz)

    def exited_by_itself(process: subprocess.Popen[bytes]) -> bool:
        if process.poll() is None or process.returncode in (0, -signal.SIGKILL):
            return False
        result.problems.append(f"a shard exited with {process.returncode}:\n  {shards.tail(process)}")
        return True

    plan: list[str] = []
    for trial in range(trials):
        time.sleep(rng.uniform(0.5, 1.5))
        if any(exited_by_itself(p) for p in shards.running.values()) or \
                all(p.poll() == 0 for p in shards.running.values()):
            break                                        # a failure, or the file's end came first
        if trial % len(SHARD_FAULTS) == 0:
            plan = rng.sample(SHARD_FAULTS, len(SHARD_FAULTS))
        fault, group = plan[trial % len(SHARD_FAULTS)], rng.choice(["1", "2"])
        victim = shards.running[group]
        if not _serving(shards, victim):              # a fault hits a shard that holds its group and ticks
            result.problems.append(f"a shard of group {group} did not start ticking within {TAKEOVER_TIMEOUT:.0f} s:"
                                   f"\n  {shards.tail(victim)}")
            break
        result.trials[fault] += 1
        if fault == "kill-shard":
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            shards.start(group, hz)
        else:
            _zombie(shards, group, victim, hz, result)
        if progress is not None:
            progress(fault)
        if len(result.problems) > 3:
            break

    for group, process in list(shards.running.items()):
        if process.poll() is None and not result.problems:
            process.send_signal(signal.SIGKILL)     # the rest of the file runs fast, from a clean restart
            process.wait()
            shards.start(group, FINISH_HZ)
    for process in shards.running.values():
        try:
            process.wait(timeout=ticks / FINISH_HZ * 20 + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            result.problems.append("a shard did not reach the end of the file")
        exited_by_itself(process)
    result.shard_starts = shards.starts
    if not result.problems:
        result.problems += _check(state, env, world, drive, result)
    result.seconds = time.monotonic() - started
    return result


def _serving(shards: _Shards, process: subprocess.Popen[bytes]) -> bool:
    """Wait until `process` has recovered its group (it holds the lease) and ticks; False if it never does."""
    deadline = time.monotonic() + TAKEOVER_TIMEOUT
    while "world at tick" not in shards.logs[process.pid].read_text(errors="replace"):
        if time.monotonic() > deadline or process.poll() is not None:
            return process.returncode == 0
        time.sleep(0.05)
    return True


def _zombie(shards: _Shards, group: str, victim: subprocess.Popen[bytes], hz: float,
            result: ShardCampaign) -> None:
    """Pause `victim` past its lease, let a new shard take its group, resume it: it must stop, fenced."""
    os.kill(victim.pid, signal.SIGSTOP)
    standby = shards.start(group, hz)
    log = shards.logs[standby.pid]
    deadline = time.monotonic() + TAKEOVER_TIMEOUT
    while "took zone group" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or standby.poll() is not None:
            result.problems.append(f"no shard took zone group {group} from a paused one within "
                                   f"{TAKEOVER_TIMEOUT:.0f} s:\n  {shards.tail(standby)}")
            os.kill(victim.pid, signal.SIGCONT)
            return
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGCONT)
    try:
        code = victim.wait(timeout=TAKEOVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        victim.kill()
        result.problems.append(f"a paused shard of group {group} went on after another took its group")
        return
    said = shards.logs[victim.pid].read_text(errors="replace")
    if code == 0 or ("taken by another" not in said and "another server has taken" not in said
                     and "another shard took it" not in said):
        result.problems.append(f"a paused shard of group {group}, resumed after another took its group, exited "
                               f"with {code} without saying it was fenced:\n  {shards.tail(victim)}")
    else:
        result.fenced_zombies += 1


def _check(state: Path, env: dict[str, str], world: Path, drive: Path, result: ShardCampaign) -> list[str]:
    """shards check, then the stored world against a one-process replay of the file, and gold."""
    checked = subprocess.run([sys.executable, "-m", "pipeline", "shards", "check"], env=env, capture_output=True,
                             text=True)
    result.checked = checked.stdout.strip()
    problems = [] if checked.returncode == 0 else [f"shards check failed:\n{checked.stdout}{checked.stderr}"]
    # The logs exported as one batches file, replayed by `fluxworld replay`, give every logged zone hash.
    split, merged = state.parent / "split.json", state.parent / "merged.jsonl"
    subprocess.run([sys.executable, "-m", "pipeline", "shards", "export", str(split), str(merged)], env=env,
                   check=True, capture_output=True)
    replayed = subprocess.run([sys.executable, "-m", "pipeline", "replay", str(split), str(merged), "--zones", "1",
                               "--zones", "2", "--json"], env=env, check=True, capture_output=True, text=True)
    zone_hashes = json.loads(replayed.stdout.strip().splitlines()[-1])["zone_hashes"]
    final = state.parent / "replayed.json"
    subprocess.run([sys.executable, "-m", "pipeline", "replay", str(world), str(drive), "--dump-state", str(final)],
                   env=env, check=True, capture_output=True)
    problems += asyncio.run(_compare_with_replay(state, world, final, zone_hashes))
    return problems


async def _compare_with_replay(state: Path, world_path: Path, replayed_path: Path,
                               zone_hashes: dict[str, list[str]]) -> list[str]:
    from persistence.database import EMBEDDED_DATABASE
    from persistence.embedded import EmbeddedServer
    from persistence.shards import groups, sibling_dsn
    from pipeline.formats.worldfile import load_world
    from pipeline.server.shardcheck import merge_worlds, stored_world

    from .inproc import gold_total

    server = await asyncio.to_thread(EmbeddedServer(state / "pgdata").start)
    try:
        dsn = server.uri(EMBEDDED_DATABASE)
        found = await groups(dsn)
        merged = merge_worlds(found, [await stored_world(sibling_dsn(dsn, g.database)) for g in found])
        logged = {g.name: await _zone_hashes(sibling_dsn(dsn, g.database)) for g in found}
        travelled = [await _travel(sibling_dsn(dsn, g.database), merged.tick - 7) for g in found]
    finally:
        server.stop()
    replayed, origin = load_world(replayed_path), load_world(world_path)
    problems = [f"`fluxworld replay --zones {name}` of the exported logs does not give group {name}'s logged zone "
                "hashes" for name, hashes in logged.items() if zone_hashes.get(name) != hashes]
    problems += [f"the console's time travel to tick {merged.tick - 7} of group {g.name} rebuilds another world than "
                 "it logged" for g, matches in zip(found, travelled) if not matches]
    if (merged.tick, merged.entities, merged.zones, merged.next_id) != \
            (replayed.tick, replayed.entities, replayed.zones, replayed.next_id):
        problems.append(f"the shards' world at tick {merged.tick} is not one process's replay of the same file "
                        f"(at tick {replayed.tick})")
    if sorted(_items(merged.transit)) != sorted(_items(replayed.transit)):
        problems.append("what is in flight differs from one process's replay of the same file")

    if gold_total(merged) != gold_total(origin):
        problems.append(f"gold is not conserved: {gold_total(origin)} at the start, {gold_total(merged)} at the end")
    return problems


async def _travel(dsn: str, tick: int) -> bool:
    """Whether the console's time travel rebuilds a group's tick (from a snapshot, with the arrivals
    of every tick after it) to the world hash its log has."""
    from pipeline.operate.timetravel import TimeTravel

    async with TimeTravel(dsn) as travel:
        return (await travel.world_at(tick)).matches


async def _zone_hashes(dsn: str) -> list[str]:
    from persistence.database import connect

    conn = await connect(dsn)
    try:
        return [bytes(r[0]).hex() for r in await conn.fetch("SELECT zone_hash FROM command_log ORDER BY tick")]
    finally:
        await conn.close()


def _items(transit: bytes) -> list[bytes]:
    return [transit[i:i + 160] for i in range(0, len(transit), 160)]


def summary(result: ShardCampaign) -> str:
    kinds = ", ".join(f"{kind} {result.trials[kind]}" for kind in SHARD_FAULTS)
    return (f"{sum(result.trials.values())} trials ({kinds}) in {result.seconds:.0f} s; {result.shard_starts} shard "
            f"starts, {result.fenced_zombies} paused shards fenced; {result.ticks} ticks driven\n{result.checked}")


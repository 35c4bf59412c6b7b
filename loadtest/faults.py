"""`fluxworld faults`: a fault campaign against a live server and its embedded PostgreSQL.

The server is driven by a recorded batches file (`serve --drive`; a world of
two zones whose players move, fight, travel and send gold across zones:
loadtest/shardworld.py), so a server that loses no committed tick and
applies none twice ends with exactly the world, and a command log with
exactly the per-tick hashes, that
`fluxworld replay` computes from the same file. While it runs, trial after
trial inflicts one fault, each once in every five trials in random order:

- kill-server: SIGKILL the server (often mid-commit); the next one recovers;
- kill-postgres: SIGKILL the postmaster; the server's watch starts it again
  and the tick retries until it can commit;
- kill-backend: SIGKILL one PostgreSQL backend; PostgreSQL resets every
  connection and recovers by itself;
- stall-server: SIGSTOP the server for up to 1.5 s, then SIGCONT;
- stall-postgres: SIGSTOP the whole cluster for up to 1.5 s, then SIGCONT.

A server that exits by itself (anything but our SIGKILL, or the end of the
file) fails the campaign, as does any difference from replay's hashes.
Everything lives in one directory (the state directory with its private
PostgreSQL, the world and batches files, the servers' logs).
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

import click
import psutil
from tqdm import tqdm

FAULTS = ("kill-server", "kill-postgres", "kill-backend", "stall-server", "stall-postgres")
FINISH_HZ = 1000.0


@dataclass
class CampaignResult:
    trials: Counter[str] = field(default_factory=Counter)
    server_starts: int = 0
    postgres_restarts: int = 0          # by the servers' watch of the embedded cluster
    ticks: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_campaign(directory: Path, trials: int, *, seed: int = 1, players: int = 20, hz: float = 200.0,
                 ticks_per_trial: int = 300, progress: Callable[[str], None] | None = None) -> CampaignResult:
    from pipeline.formats.worldfile import dump_world

    from .shardworld import two_zone_world, write_two_zone_drive

    directory.mkdir(parents=True, exist_ok=True)
    world, drive, state = directory / "world.json", directory / "drive.jsonl", directory / "state"
    dump_world(two_zone_world(players, seed), world)
    ticks = trials * ticks_per_trial
    write_two_zone_drive(drive, players, ticks, seed)
    replayed = subprocess.run([sys.executable, "-m", "pipeline", "replay", str(world), str(drive), "--json"],
                              capture_output=True, text=True, check=True)
    expected = json.loads(replayed.stdout.strip().splitlines()[-1])

    result = CampaignResult(ticks=ticks)
    rng = random.Random(seed)
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(state)}
    started = time.monotonic()
    server: subprocess.Popen[bytes] | None = None
    plan: list[str] = []

    def start(rate: float) -> subprocess.Popen[bytes]:
        result.server_starts += 1
        with open(directory / f"serve-{result.server_starts}.log", "wb") as log:
            return subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--db", "embedded", "--world",
                                     str(world), "--drive", str(drive), "--hz", str(rate)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)

    def stopped_by_itself(process: subprocess.Popen[bytes]) -> bool:
        if process.returncode in (0, -signal.SIGKILL):
            return False
        log = directory / f"serve-{result.server_starts}.log"
        tail = "\n  ".join(log.read_text(errors="replace").splitlines()[-6:])
        result.problems.append(f"server {result.server_starts} exited with {process.returncode}:\n  {tail}")
        return True

    for trial in range(trials):
        if server is None or server.poll() is not None:
            if server is not None and (stopped_by_itself(server) or server.returncode == 0):
                break                                   # a failure, or the file's end came first
            server = start(hz)
        time.sleep(rng.uniform(0.8, 2.0))             # start-up, then somewhere mid-run
        if server.poll() is not None:
            continue
        if trial % len(FAULTS) == 0:
            plan = rng.sample(FAULTS, len(FAULTS))      # every fault once in each round of trials
        fault = plan[trial % len(FAULTS)]
        result.trials[fault] += 1
        _inflict(fault, server, state / "pgdata", rng)
        if progress is not None:
            progress(fault)

    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGKILL)
        server.wait()
    if not result.problems:
        final = start(FINISH_HZ)                       # run to the end of the file
        final.wait(timeout=ticks / FINISH_HZ * 20 + 120)
        stopped_by_itself(final)
    result.postgres_restarts = sum(log.read_text(errors="replace").count("started it again")
                                   for log in directory.glob("serve-*.log"))
    if not result.problems:
        result.problems += _compare(state / "pgdata", expected)
    result.seconds = time.monotonic() - started
    return result


def _inflict(fault: str, server: subprocess.Popen[bytes], pgdata: Path, rng: random.Random) -> None:
    postmaster = _postmaster(pgdata)
    if fault == "kill-server":
        server.send_signal(signal.SIGKILL)
        server.wait()
    elif fault == "stall-server":
        _stall([psutil.Process(server.pid)], rng.uniform(0.3, 1.5))
    elif postmaster is None:
        return                                          # down already (a restart under way)
    elif fault == "kill-postgres":
        postmaster.send_signal(signal.SIGKILL)
    elif fault == "kill-backend":
        backends = [p for p in postmaster.children() if _is_session(p)]
        if backends:
            rng.choice(backends).send_signal(signal.SIGKILL)
    elif fault == "stall-postgres":
        _stall([postmaster, *postmaster.children()], rng.uniform(0.3, 1.5))


def _is_session(process: psutil.Process) -> bool:
    """A backend serving a connection to the world's database (not a checkpointer, walwriter, ...)."""
    from persistence.database import EMBEDDED_DATABASE

    try:
        return f" {EMBEDDED_DATABASE} " in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _postmaster(pgdata: Path) -> psutil.Process | None:
    from persistence.embedded import running_postmaster

    info = running_postmaster(pgdata)
    return info.process if info is not None else None


def _stall(processes: list[psutil.Process], seconds: float) -> None:
    for p in processes:
        try:
            p.suspend()
        except psutil.Error:
            pass
    time.sleep(seconds)
    for p in processes:
        try:
            p.resume()
        except psutil.Error:
            pass


def _compare(pgdata: Path, expected: dict[str, object]) -> list[str]:
    """What differs between the stored world and command log and replay's final hash and hashes."""
    from persistence.database import EMBEDDED_DATABASE, connect
    from persistence.embedded import EmbeddedServer

    async def read(dsn: str) -> tuple[tuple[int, str], list[str]]:
        conn = await connect(dsn)
        try:
            header = await conn.fetchrow("SELECT tick, encode(world_hash, 'hex') AS h FROM world")
            rows = await conn.fetch("SELECT tick, encode(world_hash, 'hex') AS h FROM command_log ORDER BY tick")
        finally:
            await conn.close()
        stored = (header["tick"], header["h"]) if header is not None else (0, "no world stored")
        ticks = [r["tick"] for r in rows]
        if ticks != list(range(1, len(ticks) + 1)):
            missing = sorted(set(range(1, max(ticks, default=0) + 1)) - set(ticks))
            return stored, [f"the log's ticks are not 1..{len(ticks)}: missing {missing[:5]}"]
        return stored, [r["h"] for r in rows]

    server = EmbeddedServer(pgdata).start()
    try:
        (tick, final), hashes = asyncio.run(read(server.uri(EMBEDDED_DATABASE)))
    finally:
        server.stop()
    problems = []
    if (tick, final) != (expected["ticks"], expected["final_hash"]):
        problems.append(f"the stored world is tick {tick} hash {final}; replay ends at tick {expected['ticks']} "
                        f"hash {expected['final_hash']}")
    if hashes != expected["hashes"]:
        wrong = next((i for i, (a, b) in enumerate(zip(hashes, expected["hashes"])) if a != b), None)  # type: ignore[call-overload]
        problems.append(f"the command log differs from replay: {len(hashes)} rows for {len(expected['hashes'])} "  # type: ignore[arg-type]
                        f"ticks, first differing tick {None if wrong is None else wrong + 1}")
    return problems


@click.command("faults")
@click.option("--trials", type=click.IntRange(min=1), default=100, show_default=True, help="Faults to inflict.")
@click.option("--players", type=click.IntRange(min=1), default=20, show_default=True,
              help="Players the driven file has act every tick.")
@click.option("--hz", type=click.FloatRange(min=1, max=1000), default=200.0, show_default=True,
              help="The driven server's tick rate.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default="faults-campaign",
              show_default=True, help="Where the campaign keeps its state, files and the servers' logs.")
@click.option("--shards", is_flag=True,
              help="Kill and pause the shards of a two-zone world instead (loadtest/shardfaults.py).")
def faults(trials: int, players: int, hz: float, seed: int, directory: Path, shards: bool) -> None:
    """Kill and stall the server and its PostgreSQL at random; check no tick is lost or applied twice."""
    if (directory / "state").exists():
        raise click.UsageError(f"{directory} holds an earlier campaign; remove it or give another --dir")
    if shards:
        _shard_faults(trials, players, hz, seed, directory)
        return
    with tqdm(total=trials, desc="faults", unit="trial", file=sys.stderr, disable=None) as bar:
        def advance(fault: str) -> None:
            bar.set_postfix_str(fault)
            bar.update()
        result = run_campaign(directory, trials, seed=seed, players=players, hz=hz, progress=advance)
    done = sum(result.trials.values())
    kinds = ", ".join(f"{kind} {result.trials[kind]}" for kind in FAULTS)
    click.echo(f"{done} trials ({kinds}) in {result.seconds:.0f} s; {result.server_starts} server starts, "
               f"{result.postgres_restarts} PostgreSQL restarts by the server; {result.ticks} ticks driven")
    if result.ok:
        click.echo("nothing lost or doubled: the stored world and every tick's hash in the log match replay")
    else:
        click.echo("FAILED:\n" + "\n".join(result.problems))
        sys.exit(1)


def _shard_faults(trials: int, players: int, hz: float, seed: int, directory: Path) -> None:
    from .shardfaults import run_shard_campaign, summary

    with tqdm(total=trials, desc="shard faults", unit="trial", file=sys.stderr, disable=None) as bar:
        def advance(fault: str) -> None:
            bar.set_postfix_str(fault)
            bar.update()
        result = run_shard_campaign(directory, trials, seed=seed, players=players, hz=hz, progress=advance)
    click.echo(summary(result))
    if result.ok:
        click.echo("nothing lost or doubled: every zone's log replays to its hashes in one process, the stored "
                   "world is one process's replay of the file, gold is conserved, every paused shard was fenced")
    else:
        click.echo("FAILED:\n" + "\n".join(result.problems))
        sys.exit(1)

"""Durability: kill -9 the live server at random moments, restart it, lose nothing.

`serve --drive FILE` feeds a recorded batches file in as live input, each
batch at its tick, so a server that loses no committed tick and applies
none twice ends with exactly the world, and a command log with exactly the
per-tick hashes, that `fluxworld replay` computes from the same file.
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
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.formats.worldfile import load_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORLD = EXAMPLES / "tiny.world.json"


def long_batches(path: Path, ticks: int, seed: int = 5) -> None:
    """Every online player of the tiny world moves or talks every tick."""
    world = load_world(WORLD)
    rng = random.Random(seed)
    from vocabulary.records import unpack_entity

    players = [e["id"] for e in (unpack_entity(world.entities[i:i + 120]) for i in range(0, len(world.entities), 120))
               if e["kind"] == 0]
    seq = {p: 100 for p in players}
    lines = []
    for tick in range(1, ticks + 1):
        commands = []
        if tick == 1:
            for p in players:
                seq[p] += 1
                commands.append({"player": p, "seq": seq[p], "op": "join", "zone": 1, "name": f"p{p}"})
        else:
            for p in players:
                seq[p] += 1
                if rng.random() < 0.8:
                    commands.append({"player": p, "seq": seq[p], "op": "move",
                                     "dx": rng.randint(-1, 1), "dy": rng.randint(-1, 1)})
                else:
                    commands.append({"player": p, "seq": seq[p], "op": "say", "text": f"tick {tick}"})
        lines.append(json.dumps({"tick": tick, "commands": commands}))
    path.write_text("\n".join(lines) + "\n")


def serve(dsn: str, drive: Path, hz: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--db", dsn, "--world", str(WORLD),
                             "--drive", str(drive), "--hz", str(hz)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(run_sql: Any, dsn: str) -> tuple[int, str]:
    """(tick, hex hash) of the world header."""
    (row,) = run_sql(dsn, "SELECT tick, encode(world_hash, 'hex') AS h FROM world")
    return row["tick"], row["h"]


def log_hashes(run_sql: Any, dsn: str) -> list[tuple[int, str]]:
    rows = run_sql(dsn, "SELECT tick, encode(world_hash, 'hex') AS h FROM command_log ORDER BY tick")
    return [(r["tick"], r["h"]) for r in rows]


def test_kill_9_at_random_moments_loses_no_tick_and_applies_none_twice(fresh_dsn, tmp_path, run_sql):
    ticks = 600                                    # 3 s at 200 Hz: longer than any kill delay below
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, ticks)
    expected = json.loads(CliRunner().invoke(cli, ["replay", str(WORLD), str(drive), "--json"]).stdout)

    rng = random.Random(11)
    kills = 0
    for _ in range(3):
        process = serve(fresh_dsn, drive, hz=200)
        time.sleep(rng.uniform(1.0, 2.5))         # start-up, then somewhere mid-run, often mid-commit
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
    process = serve(fresh_dsn, drive, hz=400)       # run to the end of the file
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert kills >= 1

    assert stored(run_sql, fresh_dsn) == (ticks, expected["final_hash"])
    # The command log holds every tick exactly once, each with replay's hash for it.
    assert log_hashes(run_sql, fresh_dsn) == list(zip(range(1, ticks + 1), expected["hashes"]))


def test_export_then_replay_gives_the_live_runs_hashes(fresh_dsn, tmp_path, run_sql):
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 40, seed=9)
    process = serve(fresh_dsn, drive, hz=200)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    exported = tmp_path / "exported.jsonl"
    result = CliRunner().invoke(cli, ["log", "export", "--db", fresh_dsn, str(exported)])
    assert result.exit_code == 0, result.output
    replayed = json.loads(CliRunner().invoke(cli, ["replay", str(WORLD), str(exported), "--json"]).stdout)
    assert [h for _, h in log_hashes(run_sql, fresh_dsn)] == replayed["hashes"]
    assert stored(run_sql, fresh_dsn) == (40, replayed["final_hash"])
    assert exported.read_text().splitlines() == drive.read_text().splitlines()


def test_replay_with_a_database_gives_the_same_hashes_and_reads_back_whole(fresh_dsn, run_sql):
    batches = EXAMPLES / "tiny.batches.jsonl"
    plain = json.loads(CliRunner().invoke(cli, ["replay", str(WORLD), str(batches), "--json"]).stdout)
    result = CliRunner().invoke(cli, ["replay", str(WORLD), str(batches), "--json", "--db", fresh_dsn])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hashes"] == plain["hashes"]
    assert stored(run_sql, fresh_dsn) == (plain["final_tick"], plain["final_hash"])
    assert [h for _, h in log_hashes(run_sql, fresh_dsn)] == plain["hashes"]


@pytest.mark.parametrize("damage", [
    "UPDATE entity_position SET x = x + 1 WHERE id = (SELECT min(id) FROM entity_position)",
    "DELETE FROM command_log WHERE tick = (SELECT max(tick) FROM command_log)",
])
def test_a_world_that_does_not_match_its_log_stops_the_server(fresh_dsn, tmp_path, damage, run_sql):
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 5)
    first = serve(fresh_dsn, drive, hz=200)
    assert first.wait(timeout=120) == 0
    run_sql(fresh_dsn, damage)
    process = serve(fresh_dsn, drive, hz=200)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "hashes to" in err


def test_kill_9_inside_the_tick_commit_lands_all_of_that_tick_or_none(fresh_dsn, tmp_path, run_sql):
    """Hold a lock the server's next commit needs, so it is provably mid-statement
    (pg_stat_activity shows it waiting on the lock), then kill it there.

    The tick's statement is its own transaction, so once the lock goes the
    server's backend may still finish it: the tick then lands whole (and its
    effects were never sent, as after any crash between commit and delivery),
    or, had it failed, not at all. Never in part."""
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 300)
    expected = json.loads(CliRunner().invoke(cli, ["replay", str(WORLD), str(drive), "--json"]).stdout)
    process = serve(fresh_dsn, drive, hz=100)
    committed = asyncio.run(kill_inside_commit(fresh_dsn, process))

    # The killed tick is in the log and the world whole, or in neither.
    last, digest = stored(run_sql, fresh_dsn)
    assert last in (committed, committed + 1) and digest == expected["hashes"][last - 1]
    assert log_hashes(run_sql, fresh_dsn) == list(zip(range(1, last + 1), expected["hashes"]))
    # And a restart finishes the run as if nothing had happened.
    restart = serve(fresh_dsn, drive, hz=400)
    _, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err
    assert log_hashes(run_sql, fresh_dsn) == list(zip(range(1, 301), expected["hashes"]))


async def kill_inside_commit(dsn: str, process: subprocess.Popen[str]) -> int:
    """Kill `process` while its tick transaction waits on a lock we hold; the last committed tick."""
    blocker = await asyncpg.connect(dsn)
    try:
        for _ in range(600):                       # until a few ticks have committed
            if await blocker.fetchval("SELECT to_regclass('command_log') IS NOT NULL") and \
                    await blocker.fetchval("SELECT count(*) FROM command_log") >= 5:
                break
            await asyncio.sleep(0.05)
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE entity_position IN ACCESS EXCLUSIVE MODE")
        waiting = 0
        for _ in range(200):                       # until the server's commit waits on our lock
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the server never reached its commit"
        committed: int = await blocker.fetchval("SELECT max(tick) FROM command_log")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        await transaction.rollback()
        for _ in range(100):                       # the dead client's backend rolls back once it runs on
            if not await blocker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"):
                break
            await asyncio.sleep(0.05)
        return committed
    finally:
        await blocker.close()

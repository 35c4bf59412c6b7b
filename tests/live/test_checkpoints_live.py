"""Checkpoints live: a driven server writes snapshots at the right ticks, the log pruned behind them
still exports and replays to the logged hashes, and a server restarted after pruning recovers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.formats.worldfile import load_world
from tests.live.test_recovery import WORLD, log_hashes, long_batches, stored
from vocabulary.hashing import world_hash


def serve(dsn: str, drive: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--db", dsn, "--world", str(WORLD), "--drive",
                           str(drive), "--hz", "200", "--http", "off", *extra], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def snapshots(run_sql, dsn) -> list[tuple[int, str]]:
    rows = run_sql(dsn, "SELECT tick, encode(world_hash, 'hex') AS h FROM world_snapshot ORDER BY tick")
    return [(r["tick"], r["h"]) for r in rows]


def replay(world: Path, batches: Path) -> dict:
    result = CliRunner().invoke(cli, ["replay", str(world), str(batches), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_snapshots_prune_export_replay_and_recovery(fresh_dsn, tmp_path, run_sql):
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 60)
    expected = replay(WORLD, drive)["hashes"]          # expected[t - 1]: the hash after tick t
    first = tmp_path / "first.jsonl"                    # the same commands, up to tick 40
    first.write_text("".join(drive.read_text().splitlines(keepends=True)[:40]))

    serve(fresh_dsn, first, "--checkpoint-every", "10")
    seeded = (0, world_hash(load_world(WORLD)))            # seeding writes a snapshot of the seeded world
    assert snapshots(run_sql, fresh_dsn) == [seeded] + [(t, expected[t - 1]) for t in (10, 20, 30, 40)]

    prune = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "1000", "--db", fresh_dsn])
    assert prune.exit_code == 1 and "nothing to prune" in prune.stderr
    prune = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "15", "--db", fresh_dsn])
    assert prune.exit_code == 0, prune.output
    assert "(ticks 1..20)" in prune.stdout and "snapshot at tick 20" in prune.stdout
    assert log_hashes(run_sql, fresh_dsn) == [(t, expected[t - 1]) for t in range(21, 41)]
    assert [t for t, _ in snapshots(run_sql, fresh_dsn)] == [20, 30, 40]

    exported, world = tmp_path / "exported.jsonl", tmp_path / "snapshot.world.json"
    bare = CliRunner().invoke(cli, ["log", "export", "--db", fresh_dsn, str(exported)])
    assert bare.exit_code == 0 and "replay from the world at tick 20" in bare.stdout
    for args, since in (([], 20), (["--from-tick", "35"], 30)):
        result = CliRunner().invoke(cli, ["log", "export", *args, "--world", str(world), "--db", fresh_dsn,
                                          str(exported)])
        assert result.exit_code == 0, result.output
        assert f"snapshot of tick {since}" in result.stdout
        replayed = replay(world, exported)
        assert replayed["hashes"] == [h for t, h in log_hashes(run_sql, fresh_dsn) if t > since]

    # Restarted after pruning: recovers at 40, goes on to 60, and prunes everything behind tick 60.
    serve(fresh_dsn, drive, "--checkpoint-every", "10", "--keep-ticks", "0")
    assert stored(run_sql, fresh_dsn) == (60, expected[59])
    assert log_hashes(run_sql, fresh_dsn) == [] and snapshots(run_sql, fresh_dsn) == [(60, expected[59])]
    # With no log at all, the header and the newest snapshot must agree: they do, so it starts.
    serve(fresh_dsn, drive, "--ticks", "0")
    run_sql(fresh_dsn, "UPDATE world_snapshot SET world_hash = '\\x00'")
    broken = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--db", fresh_dsn, "--drive", str(drive),
                             "--http", "off", "--ticks", "0"], capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1 and "newest world snapshot (tick 60)" in broken.stderr

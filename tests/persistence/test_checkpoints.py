"""World snapshots and pruning the log behind them (persistence/checkpoints.py, `fluxworld log prune`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from persistence.checkpoints import NothingToPrune, SnapshotRefused, compress_world, decompress_world
from persistence.database import open_database
from persistence.errors import Fenced
from pipeline.formats.worldfile import load_world
from pipeline.stages.plan import tick_write
from tests.persistence.test_log import cli

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.world.json"


def logged_hash(tick: int) -> bytes:
    return bytes([tick]) * 32


@pytest.fixture
async def ten_ticks(migrated_dsn):
    """The tiny world with ticks 1..10 committed (no commands, no fragment writes; hash i*32 at tick i)."""
    async with open_database(migrated_dsn) as db:
        store = db.store()
        await store.seed(load_world(TINY))
        for tick in range(1, 11):
            await store.commit_tick(tick_write(tick, 100, logged_hash(tick), b"", b"", {}, []))
    return migrated_dsn


async def write_snapshots(dsn: str, *ticks: int) -> None:
    async with open_database(dsn) as db:
        for tick in ticks:
            world = replace(load_world(TINY), tick=tick)   # its hash is not the fake logged one: never exported
            await db.checkpoints().write(tick, compress_world(world), logged_hash(tick), fence=None)


def log_ticks(run_sql, dsn) -> list[int]:
    return [r["tick"] for r in run_sql(dsn, "SELECT tick FROM command_log ORDER BY tick")]


def snapshot_ticks(run_sql, dsn) -> list[int]:
    return [r["tick"] for r in run_sql(dsn, "SELECT tick FROM world_snapshot ORDER BY tick")]


def test_compression_round_trips_the_world():
    world = load_world(TINY)
    assert decompress_world(compress_world(world)) == world


async def test_a_fenced_writer_cannot_write_a_snapshot(ten_ticks, run_sql):
    async with open_database(ten_ticks) as old, open_database(ten_ticks) as new:
        ours = await old.store().take_writer()
        theirs = await new.store().take_writer()   # another server takes the world
        with pytest.raises(Fenced, match="another server"):
            await old.checkpoints().write(10, b"world", logged_hash(10), fence=ours)
        assert snapshot_ticks(run_sql, ten_ticks) == [0]     # the seeded world's
        await new.checkpoints().write(10, b"world", logged_hash(10), fence=theirs)
        assert snapshot_ticks(run_sql, ten_ticks) == [0, 10]


async def test_a_snapshot_whose_hash_is_not_the_logged_one_is_refused(ten_ticks, run_sql):
    async with open_database(ten_ticks) as db:
        checkpoints = db.checkpoints()
        with pytest.raises(SnapshotRefused, match="logged hash"):
            await checkpoints.write(5, b"world", logged_hash(6), fence=None)
        with pytest.raises(SnapshotRefused, match="no command log row"):
            await checkpoints.write(11, b"world", logged_hash(11), fence=None)
        await checkpoints.write(5, b"world", logged_hash(5), fence=None)
        with pytest.raises(SnapshotRefused, match="already stored"):
            await checkpoints.write(5, b"world", logged_hash(5), fence=None)
    assert snapshot_ticks(run_sql, ten_ticks) == [0, 5]


async def test_prune_keeps_the_newest_eligible_snapshot_and_the_log_after_it(ten_ticks, run_sql):
    async with open_database(ten_ticks) as db:
        checkpoints = db.checkpoints()
        pruned = await checkpoints.prune(0)            # only the seeded world's snapshot: nothing before it
        assert (pruned.snapshot_tick, pruned.log_rows, pruned.log_ticks, pruned.snapshots) == (0, 0, None, 0)
        run_sql(ten_ticks, "DELETE FROM world_snapshot")   # as seeded before seeding wrote a snapshot
        with pytest.raises(NothingToPrune, match="there are no snapshots"):
            await checkpoints.prune(0)
        for tick in (3, 6, 9):
            await checkpoints.write(tick, b"world", logged_hash(tick), fence=None)
        with pytest.raises(NothingToPrune, match="no snapshot at or below tick 2 .*oldest snapshot is at tick 3"):
            await checkpoints.prune(8)
        assert log_ticks(run_sql, ten_ticks) == list(range(1, 11))

        pruned = await checkpoints.prune(5)            # 10 - 5 = 5: the snapshot at 3
        assert (pruned.snapshot_tick, pruned.log_rows, pruned.log_ticks, pruned.snapshots) == (3, 3, (1, 3), 0)
        assert log_ticks(run_sql, ten_ticks) == list(range(4, 11))
        assert snapshot_ticks(run_sql, ten_ticks) == [3, 6, 9]
        with pytest.raises(Fenced):
            await checkpoints.prune(1, fence=12345)    # a server that lost the world prunes nothing


def test_log_prune_says_what_it_removed_in_one_line_or_refuses(ten_ticks, run_sql):
    asyncio.run(write_snapshots(ten_ticks, 3, 6, 9))
    result = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "20", "--db", ten_ticks])
    assert result.exit_code == 1
    assert "nothing to prune: no snapshot at or below tick -10" in result.stderr
    assert "the oldest snapshot is at tick 0" in result.stderr      # the seeded world's
    result = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "1", "--db", ten_ticks])
    assert result.exit_code == 0, result.output
    assert result.stdout == ("pruned 9 command log rows (ticks 1..9) and 3 older snapshots; "
                             "history replays from the snapshot at tick 9\n")
    assert log_ticks(run_sql, ten_ticks) == [10] and snapshot_ticks(run_sql, ten_ticks) == [9]

    result = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "2", "--db", ten_ticks])
    assert result.exit_code == 1
    assert "nothing to prune: no snapshot at or below tick 8" in result.stderr


def test_export_of_a_pruned_log_names_the_snapshot_to_ask_for(ten_ticks, tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["log", "export", "--db", ten_ticks, str(out)])
    assert result.exit_code == 0 and "replay from the world at tick 0" in result.stdout   # the seeded world
    asyncio.run(write_snapshots(ten_ticks, 4))
    result = CliRunner().invoke(cli, ["log", "prune", "--keep-ticks", "6", "--db", ten_ticks])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["log", "export", "--db", ten_ticks, str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 6 batches (ticks 5..10)" in result.stdout
    assert "replay from the world at tick 4" in result.stdout and "--world" in result.stdout
    # A range asked for explicitly is still written as asked.
    result = CliRunner().invoke(cli, ["log", "export", "--from-tick", "6", "--db", ten_ticks, str(out)])
    assert result.exit_code == 0 and "wrote 5 batches (ticks 6..10)" in result.stdout

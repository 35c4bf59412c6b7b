"""Time travel (pipeline/operate/timetravel.py) against a real PostgreSQL and the real engine.

One driven `serve` run (the tiny world, 60 ticks, a snapshot every 10)
makes the history; every rebuilt world must hash to what the log says, and
to what `fluxworld replay` computes from the same input.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from persistence.database import open_database
from pipeline.operate.timetravel import NotCovered, TimeTravel, WorkerDied
from tests.live.test_checkpoints_live import replay, serve
from tests.live.test_recovery import WORLD, long_batches
from vocabulary.records import unpack_entity

TICKS = 60


@pytest.fixture
def history(fresh_dsn: str, tmp_path: Path) -> tuple[str, list[str]]:
    """A database whose log holds ticks 1..60 (snapshots at 0, the seed, and every 10 ticks), and
    replay's hash after each tick (index t - 1)."""
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, TICKS)
    serve(fresh_dsn, drive, "--checkpoint-every", "10")
    return fresh_dsn, replay(WORLD, drive)["hashes"]


def records(entities: bytes) -> dict[int, bytes]:
    return {int.from_bytes(entities[i:i + 8], "little"): entities[i:i + 120] for i in range(0, len(entities), 120)}


async def test_rebuilt_worlds_hash_to_the_logged_hashes_and_stepping_is_cheap(history):
    dsn, expected = history
    async with TimeTravel(dsn) as travel:
        assert await travel.span() == (0, TICKS)
        seeded = await travel.world_at(0)                    # the seed's snapshot itself
        assert seeded.replayed == 0 and seeded.hash == seeded.logged_hash
        for tick in (20, 21, 37, TICKS):                    # a snapshot tick, just after one, between, the last
            past = await travel.world_at(tick)
            assert (past.tick, past.world.tick) == (tick, tick)
            assert past.hash == past.logged_hash == expected[tick - 1], tick
            assert past.replayed == tick % 10 and past.notice is None
        for tick in (37, 38):                                # stepping: from the world the worker holds
            past = await travel.world_at(tick)
            assert past.hash == expected[tick - 1] and past.replayed == (0 if tick == 37 else 1)
        back = await travel.world_at(36)                     # back: the snapshot at 30, then forward
        assert back.hash == expected[35] and back.replayed == 6
        async with open_database(dsn) as db:
            assert (await travel.world_at(TICKS)).world == await db.store().load_world()


async def test_a_tick_outside_the_span_is_refused_naming_it(history, run_sql):
    dsn, _ = history
    async with TimeTravel(dsn) as travel:
        with pytest.raises(NotCovered, match=f"tick {TICKS + 1} is not covered: the log covers ticks 0..{TICKS}"):
            await travel.world_at(TICKS + 1)
        await travel.world_at(15)
        async with open_database(dsn) as db:
            await db.checkpoints().prune(TICKS - 30)        # the log up to the snapshot at 30 goes
        with pytest.raises(NotCovered, match=f"tick 15 is not covered: the log covers ticks 30..{TICKS}"):
            await travel.world_at(15)
        assert (await travel.world_at(31)).replayed == 1
        run_sql(dsn, "DELETE FROM world_snapshot")
        with pytest.raises(NotCovered, match="tick 31 is not covered: there is no world snapshot"):
            await travel.world_at(31)


async def test_diff_lists_exactly_the_entities_whose_records_differ(history):
    dsn, _ = history
    async with TimeTravel(dsn) as travel:
        a, b = await travel.world_at(3), await travel.world_at(45)
        changes = await travel.diff(45, 3)                   # either order: from the first tick to the second
    before, after = records(b.world.entities), records(a.world.entities)
    differ = sorted(i for i in before.keys() | after.keys() if before.get(i) != after.get(i))
    assert differ and [c["id"] for c in changes] == differ
    one = next(c for c in changes if c["change"] == "changed")
    was, now = unpack_entity(before[one["id"]]), unpack_entity(after[one["id"]])
    assert one["fields"] == {k: [was[k], now[k]] for k in was if was[k] != now[k]} and one["fields"]
    for change in changes:
        assert change["change"] == ("added" if change["id"] not in before else
                                    "removed" if change["id"] not in after else "changed")


async def test_a_killed_worker_is_replaced_and_the_answer_says_so(history):
    dsn, expected = history
    async with TimeTravel(dsn) as travel:
        first = travel.worker_pid
        assert first is not None
        await travel.world_at(12)
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.2)                              # the pool notices on its own
        past = await travel.world_at(13)
        assert past.hash == expected[12] and travel.worker_pid not in (None, first)
        assert past.notice is not None and "died" in past.notice and "new time-travel worker" in past.notice
        assert past.replayed == 3                             # a new worker: no cache, from the snapshot at 10
        assert (await travel.world_at(14)).notice is None

        busy = travel.worker_pid
        assert busy is not None
        os.kill(busy, signal.SIGSTOP)                         # so that it dies with the request in hand
        asking = asyncio.create_task(travel.world_at(50))
        await asyncio.sleep(0.2)
        os.kill(busy, signal.SIGKILL)
        with pytest.raises(WorkerDied, match=f"pid {busy}.* died while rebuilding tick 50; the next request starts"):
            await asking
        past = await travel.world_at(50)
        assert past.hash == expected[49] and past.notice and "died while rebuilding tick 50" in past.notice

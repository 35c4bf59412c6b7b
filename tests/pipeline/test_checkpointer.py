"""The Checkpointer: snapshots at checkpoint ticks, off the tick path, one at a time, never a wrong one."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import replace
from pathlib import Path

from persistence.checkpoints import decompress_world
from pipeline.context import TickContext
from pipeline.formats.worldfile import load_world
from pipeline.server.checkpointer import Checkpointer
from pipeline.stages.plan import tick_write
from pipeline.view import WorldView
from vocabulary.hashing import canonical_bytes
from vocabulary.types import Batch

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.world.json"


class SlowCheckpoints:
    """Holds every write until `release` is set; remembers what it was given."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.written: list[tuple[int, bytes, bytes, int | None]] = []

    async def write(self, tick: int, compressed: bytes, digest: bytes, *, fence: int | None) -> None:
        await self.release.wait()
        self.written.append((tick, compressed, digest, fence))


def committed(tick: int, *, wrong_hash: bool = False) -> TickContext:
    world = replace(load_world(TINY), tick=tick)
    digest = hashlib.sha256(canonical_bytes(world)).digest()
    if wrong_hash:
        digest = bytes(32)
    ctx = TickContext(tick=tick, batch=Batch(tick, b"", b""), view=WorldView.from_world(world))
    ctx.next_view = WorldView.from_world(world)
    ctx.write = tick_write(tick, world.next_id, digest, b"", b"", {}, [])
    return ctx


async def test_one_snapshot_at_a_time_at_checkpoint_ticks_only(caplog):
    store = SlowCheckpoints()
    checkpointer = Checkpointer(store, 10, fence=7)   # type: ignore[arg-type]
    for tick in (9, 10, 11, 20):      # 20 comes while 10 is still being written: skipped
        checkpointer.committed(committed(tick))
    store.release.set()
    await checkpointer.close()
    assert [w[0] for w in store.written] == [10] and checkpointer.skipped == [20]
    tick, compressed, digest, fence = store.written[0]
    assert decompress_world(compressed) == replace(load_world(TINY), tick=10) and fence == 7
    assert "snapshot of tick 20 skipped" in caplog.text
    checkpointer.committed(committed(30))
    await checkpointer.close()
    assert checkpointer.written == [10, 30]


async def test_a_view_that_does_not_hash_to_the_logged_hash_is_never_written(caplog):
    store = SlowCheckpoints()
    store.release.set()
    checkpointer = Checkpointer(store, 5, fence=None)   # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        checkpointer.committed(committed(5, wrong_hash=True))
        await checkpointer.close()
    assert store.written == [] and "NOT written" in caplog.text

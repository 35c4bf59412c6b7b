"""Snapshots of the world every N committed ticks, written beside the tick loop, never in its way.

The pipeline calls `committed` with each tick once its commit has landed.
At a multiple of `every`, the tick's view (immutable: later ticks make new
views) is encoded and compressed on a worker thread and written in its own
transaction (persistence/checkpoints.py), fenced like a tick. Only one
snapshot is in flight: one still being written when the next is due means
the next is skipped (and logged), so a slow database or a huge world costs
snapshots, never tick slots. With `keep_ticks`, the log behind the newest
snapshot old enough is pruned after each one, in the same background task.

A failed snapshot is logged and the server goes on: the world is durable
without snapshots (the fragment tables and the log are), they only let the
log be pruned. A Fenced one stops the snapshots; the next tick's commit
stops the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import zlib

from persistence.checkpoints import COMPRESSION_LEVEL, Checkpoints, NothingToPrune
from persistence.errors import Fenced
from vocabulary.hashing import canonical_bytes

from ..context import TickContext
from ..view import WorldView

log = logging.getLogger(__name__)

# Ticks: a minute at 20 Hz. Time travel replays from the snapshot at or below the tick asked for:
# at 5,000 players the engine replays ~1,170 ticks a second, so the worst request takes ~1 s
# (`fluxworld timetravel --players 5000 --checkpoint-every 1200`; 5.2 s at 6000).
DEFAULT_EVERY = 1200
CLOSE_GRACE = 30.0       # seconds a stopping server waits for a snapshot in flight


def encode(view: WorldView) -> tuple[bytes, bytes]:
    """(compressed canonical encoding, its SHA-256): CPU work for a worker thread."""
    canonical = canonical_bytes(view.to_world())
    return zlib.compress(canonical, COMPRESSION_LEVEL), hashlib.sha256(canonical).digest()


class Checkpointer:
    def __init__(self, checkpoints: Checkpoints, every: int, *, fence: int | None,
                 keep_ticks: int | None = None) -> None:
        if every <= 0:
            raise ValueError("a Checkpointer needs every >= 1 (0 means no Checkpointer)")
        self.checkpoints, self.every, self.fence, self.keep_ticks = checkpoints, every, fence, keep_ticks
        self.written: list[int] = []       # ticks snapshotted by this server, in order
        self.skipped: list[int] = []       # ticks whose snapshot was skipped: the one before still ran
        self.failed = 0                    # snapshots that were not written (logged each)
        self.seconds = 0.0                 # spent encoding and writing the ones that were
        self.last_bytes = 0                # the newest one's size, compressed
        self._task: asyncio.Task[None] | None = None
        self._fenced = False

    def committed(self, ctx: TickContext) -> None:
        """Pipeline.on_committed: start the snapshot of a checkpoint tick, at once, in the background."""
        if ctx.tick % self.every or self._fenced:
            return
        assert ctx.next_view is not None and ctx.write is not None, "a committed tick has both"
        if self._task is not None and not self._task.done():
            self.skipped.append(ctx.tick)
            log.warning("snapshot of tick %d skipped: the one before is still being written", ctx.tick,
                        extra={"event": "snapshot_skipped", "tick": ctx.tick})
            return
        self._task = asyncio.create_task(self._snapshot(ctx.next_view, ctx.write.world_hash))

    async def close(self) -> None:
        """Let a snapshot in flight finish (the server stops after it), but never wait for an
        unreachable database: after CLOSE_GRACE it is cancelled (its one INSERT lands whole or not at all)."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, CLOSE_GRACE)
            except asyncio.TimeoutError:
                log.warning("the snapshot in flight did not finish within %g s: given up", CLOSE_GRACE,
                            extra={"event": "snapshot_failed"})

    async def _snapshot(self, view: WorldView, logged: bytes) -> None:
        started = time.monotonic()
        try:
            compressed, digest = await asyncio.to_thread(encode, view)
            encoded = time.monotonic()
            if digest != logged:       # the view and the log disagree: a bug, never stored
                self.failed += 1
                log.error("snapshot of tick %d NOT written: the view hashes to %s, but the tick logged %s",
                          view.tick, digest.hex(), logged.hex(), extra={"event": "snapshot_mismatch",
                                                                        "tick": view.tick})
                return
            await self.checkpoints.write(view.tick, compressed, digest, fence=self.fence)
        except Fenced as e:
            self.failed += 1
            self._fenced = True
            log.error("%s; no more snapshots from this server", e, extra={"event": "snapshot_fenced"})
            return
        except Exception as e:   # a lost database, a refusal: the tick loop's problem never
            self.failed += 1
            log.warning("snapshot of tick %d failed, the next checkpoint tries again: %s: %s", view.tick,
                        type(e).__name__, e, extra={"event": "snapshot_failed", "tick": view.tick})
            return
        self.written.append(view.tick)
        self.seconds += time.monotonic() - started
        self.last_bytes = len(compressed)
        log.info("snapshot of tick %d: %d bytes compressed, encoded in %.0f ms, written in %.0f ms", view.tick,
                 len(compressed), 1000 * (encoded - started), 1000 * (time.monotonic() - encoded),
                 extra={"event": "snapshot", "tick": view.tick, "bytes": len(compressed)})
        if self.keep_ticks is not None:
            await self._prune(self.keep_ticks)

    async def _prune(self, keep_ticks: int) -> None:
        try:
            pruned = await self.checkpoints.prune(keep_ticks, fence=self.fence)
        except NothingToPrune:
            return                     # no snapshot old enough yet: the next checkpoint tries again
        except Fenced as e:
            self._fenced = True
            log.error("%s; no more snapshots from this server", e, extra={"event": "snapshot_fenced"})
            return
        except Exception as e:
            log.warning("pruning the command log failed: %s: %s", type(e).__name__, e,
                        extra={"event": "prune_failed"})
            return
        log.info("%s", pruned.describe(), extra={"event": "pruned", "tick": pruned.snapshot_tick,
                                                  "rows": pruned.log_rows})

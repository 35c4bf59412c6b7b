"""Python's cyclic garbage collector, paced by the tick loop.

Left alone, the collector runs whenever allocation counts cross its
thresholds, which is in the middle of ticks: each tick replaces thousands of
immutables.Map nodes, so it triggered about seven young collections a tick
and, now and then, a full one of 15-20 ms (measured at 10,000 players),
which is what set the p99 tick time. The tick loop instead freezes what is
alive when it starts (the loaded world is not garbage), switches automatic
collection off, and collects the young generations after every tick and
everything every FULL_EVERY seconds, between ticks. Reference counting
still frees almost everything at once; this only finds cycles.

One tick loop a process: the collector's switches are global.
"""

from __future__ import annotations

import gc
import time

FULL_EVERY = 10.0   # seconds between full collections


class GcPacer:
    """`young_every`: collect the young generations every that many ticks (a replay, which
    cares for throughput, not for each tick's time, collects less often)."""

    def __init__(self, full_every: float = FULL_EVERY, young_every: int = 1) -> None:
        self.full_every = full_every
        self.young_every = young_every
        self._was_enabled = gc.isenabled()
        self._next_full = 0.0
        self._ticks = 0

    def __enter__(self) -> GcPacer:
        gc.collect()
        gc.freeze()
        gc.disable()
        self._next_full = time.monotonic() + self.full_every
        return self

    def __exit__(self, *exc: object) -> None:
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def between_ticks(self) -> None:
        """Collect young objects; everything, when a full collection is due. ~1.6 ms and
        ~5 ms at 10,000 players."""
        self._ticks += 1
        now = time.monotonic()
        if now >= self._next_full:
            gc.collect(2)
            self._next_full = now + self.full_every
        elif self._ticks % self.young_every == 0:
            gc.collect(1)

"""The engine's own thread: every reducer call of the live pipeline runs there, one at a time.

A WASM call releases the GIL, so while the engine works the event loop goes
on: the previous tick's commit, the transports, and the Python half of the
tick (the view update, plan). Calls run in the order they were submitted and
never two at once (a wasmtime store is not thread-safe), so a stage can queue
work (the world hash, the sightings) and the next tick's calls simply line up
behind it.

The world hash is split in two: the canonical encoding (O(world), a copy out
of the engine) on the engine's thread, SHA-256 over it (hashlib releases the
GIL) on a thread of its own, so the engine moves on to the next call at once.
The next encoding waits until the last one has been read.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from vocabulary.hashing import zone_hash

from .engine import Rules

T = TypeVar("T")
Hashes = tuple[bytes, tuple[bytes, ...]]      # the world hash, and a zone hash for each set of zones asked for

# With the default 5 ms switch interval, a thread coming back from WASM (or
# from hashlib) waits for the GIL until a busy Python thread next drops it.
SWITCH_INTERVAL = 0.0002


class EngineThread:
    def __init__(self, engine: Rules, *, zone_sets: tuple[frozenset[int], ...] = ()) -> None:
        """With `zone_sets` (a shard's zones; the groups a replay checks), each world hash comes
        with the zone hash of each set."""
        self.engine = engine
        self.zone_sets = zone_sets
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{engine.name}")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hash-{engine.name}")
        self._hashed: Future[Hashes] | None = None
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    @property
    def name(self) -> str:
        return self.engine.name

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Queue `fn(*args)` behind everything submitted before; its result as a future."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await self.submit(fn, *args)

    def world_hash(self) -> asyncio.Future[Hashes]:
        """SHA-256 of the world as it stands once everything submitted before has run, and
        the zone hash of each of `zone_sets`."""
        encoded = asyncio.get_running_loop().run_in_executor(self._executor, self._encode)
        return asyncio.ensure_future(self._digest(encoded))

    def _encode(self) -> Future[Hashes]:
        if self._hashed is not None:
            self._hashed.result()        # the last encoding is read before the engine writes the next
        encoding, sets = self.engine.canonical(), self.zone_sets
        self._hashed = self._hasher.submit(lambda: (hashlib.sha256(encoding).digest(),
                                                    tuple(zone_hash(encoding, zones) for zones in sets)))
        return self._hashed

    @staticmethod
    async def _digest(encoded: asyncio.Future[Future[Hashes]]) -> Hashes:
        return await asyncio.wrap_future(await encoded)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._hasher.shutdown(wait=True)

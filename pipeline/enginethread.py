"""The engine's own thread: every reducer call of the live pipeline runs there, one at a time.

A WASM call releases the GIL, so while the engine works the event loop goes
on: the previous tick's commit, the transports, and the Python half of the
tick (the view update, plan). Calls run in the order they were submitted and
never two at once (a wasmtime store is not thread-safe), so a stage can queue
work (the world hash, the sightings) and the next tick's calls simply line up
behind it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from .engine import Rules

T = TypeVar("T")


class EngineThread:
    def __init__(self, engine: Rules) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{engine.name}")

    @property
    def name(self) -> str:
        return self.engine.name

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Queue `fn(*args)` behind everything submitted before; its result as a future."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await self.submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

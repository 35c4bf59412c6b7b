"""Time travel for the browser console: the world as it was at any tick the log still covers.

The console runs in the server's event loop, but rebuilding a past world is
seconds of CPU (a snapshot loaded, up to --checkpoint-every ticks replayed)
and a long read of the command log. Both happen in ONE worker process
(pipeline/operate/timetravel_worker.py), spawned at nice 10, with its own
engine and database connections: the tick loop only awaits a future, and
the answers (a world, or a diff) cross back pickled.

    async with TimeTravel(dsn) as travel:
        past = await travel.world_at(1234)      # PastWorld: the world, its hash and the logged one
        changes = await travel.diff(1234, 1240)

A worker that dies (killed, out of memory) is replaced: a request it died
under raises WorkerDied saying so; the next request starts a new worker, and
its answer's `notice` says it came from a new one (whose cache starts empty).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, TypeVar

from vocabulary.errors import FluxworldError, InputError
from vocabulary.types import WorldData

from . import timetravel_worker as worker

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotCovered(InputError):
    """A tick no snapshot and log span covers (before the oldest snapshot kept, or after the last tick)."""


class WorkerDied(FluxworldError):
    """The worker process died under a request; the next request starts a new one."""


class TimeTravelFailed(FluxworldError):
    """The worker could not answer (the database, the engine): its message names why."""


@dataclass(frozen=True)
class PastWorld:
    tick: int
    world: WorldData              # entities in ascending id
    hash: str                     # hex, of the rebuilt world
    logged_hash: str | None       # hex, from the command log (or the snapshot) for that tick
    replayed: int                 # ticks the worker ran to get there
    seconds: float                # wall time of the request
    notice: str | None = None     # set when a new worker answered because the last one had died

    @property
    def matches(self) -> bool:
        return self.hash == self.logged_hash


class TimeTravel:
    def __init__(self, dsn: str, engine: str | None = None) -> None:
        self.dsn = dsn
        self.engine = engine             # None: the default engine, as everywhere (FLUXWORLD_ENGINE)
        self.worker_pid: int | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._died: str | None = None    # what the last worker died doing, until a new one answers
        self._closed = False

    async def __aenter__(self) -> TimeTravel:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker and wait until it has loaded its engine (a second or two, off this loop)."""
        self._closed = False
        await self._ensure_worker()

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            # Waiting for a worker mid-rebuild would hold the caller: it is cancelled and left to exit.
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def span(self) -> tuple[int, int] | None:
        """(the first tick reachable, the last tick logged), or None when nothing can be rebuilt."""
        answer = await self._call(worker.span, "reading the covered span")
        if isinstance(answer, worker.Failed):
            raise TimeTravelFailed(answer.message)
        return answer

    async def world_at(self, tick: int) -> PastWorld:
        started = time.perf_counter()
        answer = await self._call(worker.world_at, f"rebuilding tick {tick}", tick)
        notice, self._died = self._notice(), None
        if not isinstance(answer, worker.Rebuilt):
            raise _error(answer)
        rebuilt = answer
        return PastWorld(tick, rebuilt.world, rebuilt.hash, rebuilt.logged_hash, rebuilt.replayed,
                         time.perf_counter() - started, notice)

    async def diff(self, a: int, b: int) -> list[dict[str, Any]]:
        """[{"id", "change": added|removed|changed, "fields": {name: [before, after]}}], ids ascending."""
        answer = await self._call(worker.diff, f"diffing ticks {a} and {b}", a, b)
        notice, self._died = self._notice(), None
        if notice:
            log.warning("time travel: %s", notice)
        if isinstance(answer, list):
            return answer
        raise _error(answer)

    def _notice(self) -> str | None:
        if self._died is None:
            return None
        return (f"answered by a new time-travel worker (pid {self.worker_pid}): the last one died "
                f"{self._died}; its cache starts empty")

    async def _call(self, fn: Callable[..., T], what: str, *args: Any) -> T:
        pool = await self._ensure_worker()
        try:
            future = pool.submit(fn, *args)
        except BrokenProcessPool:   # it died since the last request: a new one answers this one
            self._discard("between requests")
            pool = await self._ensure_worker()
            future = pool.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._discard(f"while {what}")
            raise WorkerDied(f"the time-travel worker process (pid {self.worker_pid}) died while {what}; "
                             "the next request starts a new one") from None

    async def _ensure_worker(self) -> ProcessPoolExecutor:
        """The running worker, or a new one when there is none or it died since the last request."""
        if self._closed:
            raise FluxworldError("time travel is closed")
        if self._pool is None:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=worker.initialize, initargs=(self.dsn, self.engine))
            try:
                self.worker_pid = await asyncio.get_running_loop().run_in_executor(pool, worker.pid)
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                raise WorkerDied("the time-travel worker process died while starting (loading its engine); "
                                 "see its error above") from None
            self._pool = pool
            if self._died is not None:
                log.warning("time travel: started a new worker (pid %d); the last one died %s",
                            self.worker_pid, self._died)
        return self._pool

    def _discard(self, when: str) -> None:
        log.warning("time travel: the worker process (pid %s) died %s", self.worker_pid, when)
        self._died = when
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _error(answer: worker.Uncovered | worker.Failed) -> FluxworldError:
    if isinstance(answer, worker.Failed):
        return TimeTravelFailed(answer.message)
    if answer.span is None:
        return NotCovered(f"tick {answer.tick} is not covered: there is no world snapshot to rebuild from")
    first, last = answer.span
    return NotCovered(f"tick {answer.tick} is not covered: the log covers ticks {first}..{last}")

"""Waiting out an unreachable database: the same attempt again, with backoff.

Used where a tick needs PostgreSQL (contextualize's loads, actuate's
commit). Only StoreUnavailable is retried: the attempt either did nothing or
is recognisable when repeated. Any other error is a refusal or a bug and
propagates. While this waits, ticks pause; accepted commands stay in the
tick's context and new ones queue in the inbox.

`Outages` keeps count of those waits for the server's metrics and its
readiness. It is handed in by the caller (the pipeline owns one, in its
TickMetrics) rather than kept at module level: a process may run several
pipelines (tests, replay beside a server), and each should see only its own.
An outage is an interval in which at least one tick waits: a load and a
commit waiting at the same time are one outage, not two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, TypeVar

from vocabulary.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY, MAX_DELAY = 0.05, 2.0    # seconds


class Outages:
    """How often, and for how long, ticks have waited on an unreachable database."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count = 0
        self.past_seconds = 0.0             # in outages that have ended
        self.since: float | None = None     # when the outage going on now began
        self.ended_at: float | None = None  # when the last one ended
        self._waiting = 0

    @property
    def now_out(self) -> bool:
        """Whether some tick waits on the database at this moment."""
        return self._waiting > 0

    def seconds(self) -> float:
        """Seconds spent in outages, the one going on (if any) included."""
        return self.past_seconds + (self.clock() - self.since if self.since is not None else 0.0)

    def enter(self, what: str, tick: int | None) -> None:
        if self._waiting == 0:
            self.count += 1
            self.since = self.clock()
            log.warning("%s: the database is unreachable; ticks pause until it answers", what,
                        extra={"event": "database_outage", "tick": tick})
        self._waiting += 1

    def leave(self, tick: int | None) -> None:
        self._waiting -= 1
        if self._waiting == 0 and self.since is not None:
            lasted = self.clock() - self.since
            self.past_seconds += lasted
            self.since, self.ended_at = None, self.clock()
            log.warning("the database answers again after %.2f s; ticks go on", lasted,
                        extra={"event": "database_back", "tick": tick, "seconds": round(lasted, 3)})


async def until_available(what: str, attempt: Callable[[], Awaitable[T]], *, tick: int | None = None,
                          outages: Outages | None = None) -> T:
    delay = FIRST_DELAY
    waited = False
    try:
        while True:
            try:
                return await attempt()
            except StoreUnavailable as exc:
                if outages is not None and not waited:
                    outages.enter(what, tick)
                waited = True
                log.warning("%s: database unavailable (%s); trying again in %.2f s", what, exc, delay,
                            extra={"event": "database_retry", "tick": tick})
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
    finally:
        if outages is not None and waited:
            outages.leave(tick)

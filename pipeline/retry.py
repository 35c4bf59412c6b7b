"""Waiting out an unreachable database: the same attempt again, with backoff.

Used where a tick needs PostgreSQL (contextualize's loads, actuate's
commit). Only StoreUnavailable is retried: the attempt either did nothing or
is recognisable when repeated. Any other error is a refusal or a bug and
propagates. While this waits, ticks pause; accepted commands stay in the
tick's context and new ones queue in the inbox.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, TypeVar

from vocabulary.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY, MAX_DELAY = 0.05, 2.0    # seconds


async def until_available(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    delay = FIRST_DELAY
    while True:
        try:
            return await attempt()
        except StoreUnavailable as exc:
            log.warning("%s: database unavailable (%s); trying again in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

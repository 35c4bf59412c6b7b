"""What a running `fluxworld serve` lets be read while it runs.

`serve` fills this in as it starts (the world recovered, the link open, the
tick loop made) and the HTTP side only reads it: counters the tick loop
keeps anyway, the view it holds, a few timestamps. Nothing here computes
anything that grows with the world.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from ..link.world import WorldLink
from ..metrics import TickMetrics
from ..server.checkpointer import Checkpointer
from ..server.runner import Inbox, TickLoop
from ..view import WorldView
from .recent import Recent

MAX_WAIT = 1.0      # seconds a reader waits for the slack between ticks, however slow the ticks


class Supervised(Protocol):
    """A child process serve keeps running (the XMPP gateway): how often it had to start it again."""

    restarts: int


@dataclass
class ServerState:
    metrics: TickMetrics
    hz: float
    xmpp: bool = False                     # players come over XMPP: readiness wants a gateway serving
    recovered_at: float | None = None      # time.monotonic() when the world was recovered and the engine loaded
    view: WorldView | None = None          # the recovered world, until the tick loop holds the current one
    inbox: Inbox | None = None
    loop: TickLoop | None = None
    stopped: bool = False                  # the tick loop has ended: the server is on its way out
    link: WorldLink | None = None
    gateway: Supervised | None = None
    checkpointer: Checkpointer | None = None
    dsn: str | None = None                 # the world's database, once open (the console's time travel)
    recent: Recent = field(default_factory=Recent)   # the last ticks' commands and effects, for the console
    started_at: float = field(default_factory=time.monotonic)

    @property
    def period(self) -> float:
        return 1.0 / self.hz

    def current_view(self) -> WorldView | None:
        return self.loop.view if self.loop is not None else self.view

    async def between_ticks(self) -> None:
        """Return once the tick loop waits for a tick's slot (at once when no loop runs), or after one
        period (at most MAX_WAIT) when it never does (a loop behind its schedule has no slack): what
        runs then takes the slack between ticks, not a tick's time."""
        if self.loop is None or self.stopped:
            return
        try:
            await asyncio.wait_for(self.loop.between_ticks.wait(), min(self.period, MAX_WAIT))
        except asyncio.TimeoutError:
            pass

"""The in-process transport: commands in from Python, effects out to Python.

Until (and beside) XMPP, this is how tests, the load test and `serve
--drive` talk to a running tick loop. `Driver` feeds a recorded batches file
tick by tick, so a live server driven by it commits exactly the ticks that
`fluxworld replay` computes from the same file.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from vocabulary.types import Batch, Incoming, Refusal, TickResult

from .context import TickContext
from .formats.batches import batch_commands_json, read_batches
from .server.runner import Inbox


class InprocFeed:
    """Outbox for in-process clients: refusals and committed ticks, kept for reading."""

    def __init__(self, inbox: Inbox, keep: int = 1000) -> None:
        self.inbox = inbox
        self.refused: deque[Refusal] = deque(maxlen=keep)
        self.delivered: deque[tuple[TickResult, bytes]] = deque(maxlen=keep)   # (result, command text)

    def submit(self, command: Any, sender: int | None) -> None:
        self.inbox.put(Incoming(command=command, sender=sender, received=time.monotonic()))

    async def refuse(self, ctx: TickContext) -> None:
        self.refused.extend(ctx.refusals)

    async def deliver(self, ctx: TickContext) -> None:
        assert ctx.result is not None
        self.delivered.append((ctx.result, ctx.batch.text))


class Driver:
    """Puts each recorded batch into the inbox just before its tick runs."""

    def __init__(self, path: Path, inbox: Inbox) -> None:
        self.inbox = inbox
        # Lines for ticks the world has already run are skipped, not refused:
        # a restarted server picks the file up where its world stands.
        self._batches: Iterator[Batch] = read_batches(path, after_tick=0)
        self._next: Batch | None = next(self._batches, None)
        self.finished = self._next is None

    def before_tick(self, tick: int) -> None:
        while self._next is not None and self._next.tick <= tick:
            if self._next.tick == tick:
                now = time.monotonic()
                for command in batch_commands_json(self._next):
                    self.inbox.put(Incoming(command=command, sender=None, received=now))
            self._next = next(self._batches, None)
        self.finished = self._next is None

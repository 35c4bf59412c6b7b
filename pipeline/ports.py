"""The I/O the stages need, as small Protocols: the real ones live in
persistence/ (PostgreSQL) and the transports; tests may pass fakes."""

from __future__ import annotations

from typing import Protocol

from vocabulary.types import TickWrite

from .context import TickContext


class Stage(Protocol):
    async def __call__(self, ctx: TickContext) -> TickContext:
        """One stage of the pipeline: context in, context out."""


class Store(Protocol):
    async def commit_tick(self, write: TickWrite) -> None:
        """Apply one tick's writes, header and command log row in one transaction."""

    async def load_entities(self, ids: list[int]) -> bytes:
        """Packed Entity records of those of `ids` that exist."""


class Outbox(Protocol):
    async def refuse(self, ctx: TickContext) -> None:
        """Answer the tick's refused commands, at once (before the tick commits)."""

    async def deliver(self, ctx: TickContext) -> None:
        """Send a committed tick's effects to their players."""

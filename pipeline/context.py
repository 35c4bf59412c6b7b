"""The context every stage takes and returns: one tick on its way through the pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from vocabulary.types import Batch, CommandBlock, Incoming, Refusal, TickResult, TickWrite

from .view import WorldView


@dataclass
class TickContext:
    tick: int
    batch: Batch                       # the accepted commands (negotiate makes it)
    view: WorldView                    # the world before this tick
    incoming: list[Incoming | CommandBlock] = field(default_factory=list)  # what arrived for this tick
    refusals: list[Refusal] = field(default_factory=list)   # what negotiate refused
    trapped: bool = False              # the rules trapped on the batch; transform left commands out
    loaded: bytes = b""                # packed Entity records to materialize (contextualize)
    result: TickResult | None = None   # what transform reported
    next_view: WorldView | None = None # the world after this tick
    arrivals: bytes | None = None      # a shard's: what it took from the groups' mail (packed Transit records)
    world_hash: bytes | None = None    # SHA-256 of the world after this tick
    zone_hashes: tuple[bytes, ...] = ()   # the zone hashes the engine thread was asked for: a shard's zones'
    hashing: asyncio.Future[tuple[bytes, tuple[bytes, ...]]] | None = None   # both, on the engine's thread
                                                                             # (transform queues them)
    sighting: asyncio.Future[tuple[bytes, float]] | None = None  # its sightings and their seconds, queued likewise
    write: TickWrite | None = None     # what plan made for actuate to commit
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    began: float = 0.0                 # time.monotonic() when the tick took its commands (the tick loop's)

    async def sighted(self) -> None:
        """Fold the tick's sightings into `result` once they are ready (after them, nothing is pending);
        their time, spent beside the tick's path, is `timings["sightings"]`."""
        if self.sighting is not None:
            assert self.result is not None, "sightings come after transform"
            sightings, self.timings["sightings"] = await self.sighting
            self.result = self.result.with_sightings(sightings)
            self.sighting = None

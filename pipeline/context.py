"""The context every stage takes and returns: one tick on its way through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from .types import Batch, TickResult
from .view import WorldView


@dataclass
class TickContext:
    tick: int
    batch: Batch
    view: WorldView                    # the committed world before this tick
    loaded: bytes = b""                # packed Entity records to materialize (contextualize)
    result: TickResult | None = None   # what transform reported
    next_view: WorldView | None = None # the world after this tick
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

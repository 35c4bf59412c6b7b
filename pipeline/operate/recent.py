"""What the console shows beside the map: an entity's recent commands and effects, and chart figures.

`Recent.committed` sees every committed tick (Pipeline.on_committed) and
keeps references, not copies: the tick's batch, and the effects that name
an entity (rejections, chat, deaths, respawns: the tick's area-of-interest
sightings, tens of thousands a tick in a crowd, are left out, since the map
shows what they say). So a tick costs one numpy mask over its effects, and
the console filters the last KEPT ticks for one entity only when a page asks.

The chart figures (mean milliseconds per stage, commands a second, ticks)
are summed per tick and taken, and reset, by whoever sends frames.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from schema._generated.layout import COMMAND_DTYPE, COMMAND_SIZE, EFFECT_DTYPE, EffectKind
from vocabulary.types import Batch, TickResult

from ..context import TickContext
from ..effects import effects_json
from ..formats.batches import batch_commands_json
from ..server.runner import STAGES

KEPT = 200            # ticks: 10 s at 20 Hz
SHOWN = 50            # commands and effects one entity's panel lists, newest first


@dataclass(frozen=True)
class _Tick:
    batch: Batch
    effects: bytes        # packed Effect structs that name an entity (kinds before `enter`)
    recipients: bytes     # the tick's recipients array, which chat effects index


class Recent:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._ticks: deque[_Tick] = deque(maxlen=kept)
        self.last_hash: bytes | None = None      # the world hash of the newest committed tick
        self._since = time.monotonic()
        self._stage_seconds = dict.fromkeys(STAGES, 0.0)
        self._count = 0
        self._commands = 0
        self._missed = 0

    def committed(self, ctx: TickContext) -> None:
        effects = b""
        if ctx.result is not None and ctx.result.effects:
            array = np.frombuffer(ctx.result.effects, dtype=EFFECT_DTYPE)
            named = array[array["kind"] < EffectKind.enter]
            effects = named.tobytes() if len(named) else b""
        recipients = ctx.result.recipients if ctx.result is not None else b""
        self._ticks.append(_Tick(ctx.batch, effects, recipients))
        self.last_hash = ctx.world_hash
        for stage in STAGES:
            self._stage_seconds[stage] += ctx.timings.get(stage, 0.0)
        self._count += 1
        self._commands += len(ctx.batch.commands) // COMMAND_SIZE

    def take_figures(self, missed_total: int) -> dict[str, Any]:
        """The chart figures since the last call: mean ms per stage, commands a second, ticks, missed."""
        now = time.monotonic()
        seconds = max(now - self._since, 1e-6)
        count = max(self._count, 1)
        figures = {"stage_ms": {s: round(1000 * t / count, 3) for s, t in self._stage_seconds.items()},
                   "commands_per_s": round(self._commands / seconds, 1), "ticks": self._count,
                   "missed": max(0, missed_total - self._missed)}
        self._since, self._count, self._commands, self._missed = now, 0, 0, missed_total
        self._stage_seconds = dict.fromkeys(STAGES, 0.0)
        return figures

    def about(self, entity_id: int) -> dict[str, list[dict[str, Any]]]:
        """The entity's commands and the effects that name it, over the kept ticks, newest first."""
        commands: list[dict[str, Any]] = []
        effects: list[dict[str, Any]] = []
        for kept in reversed(self._ticks):
            if len(commands) < SHOWN:
                commands += reversed(commands_of(kept.batch, entity_id))
            if len(effects) < SHOWN and kept.effects:
                effects += reversed(_effects_naming(kept, entity_id))
            if len(commands) >= SHOWN and len(effects) >= SHOWN:
                break
        return {"commands": commands[:SHOWN], "effects": effects[:SHOWN]}


def commands_of(batch: Batch, player: int) -> list[dict[str, Any]]:
    """The player's commands in a batch, as JSON with their tick: found by numpy, only those decoded."""
    array = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
    mine = array[array["player"] == player]
    if not len(mine):
        return []
    return [{"tick": batch.tick, **c} for c in batch_commands_json(Batch(batch.tick, mine.tobytes(), batch.text))]


def _effects_naming(kept: _Tick, entity_id: int) -> list[dict[str, Any]]:
    """The tick's effects that name the entity, as JSON: found by numpy, only those decoded."""
    array = np.frombuffer(kept.effects, dtype=EFFECT_DTYPE)
    rejected = array["kind"] == EffectKind.rejected        # a rejection's object is a seq, not an entity
    mine = (array["subject"] == entity_id) | ((array["object"] == entity_id) & ~rejected)
    heard = np.flatnonzero(np.frombuffer(kept.recipients, dtype="<u8") == entity_id)   # places in chats' lists
    if len(heard):
        chats = np.flatnonzero(array["kind"] == EffectKind.chat)
        starts = array["list_offset"][chats]
        ends = starts + array["list_count"][chats]
        for place in heard.tolist():
            mine[chats[(starts <= place) & (place < ends)]] = True
    if not mine.any():
        return []
    result = TickResult(tick=kept.batch.tick, next_id=0, effects=array[mine].tobytes(), recipients=kept.recipients,
                        changed=b"", removed=b"")
    return list(effects_json(result, kept.batch.text))

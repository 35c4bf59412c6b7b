"""The world's online flag follows each player's presence, whatever happens on the way.

Presence joins and leaves are commands like any other, so negotiate may
refuse them (rate limited, dropped by a full inbox) and a storm of
available/unavailable would otherwise leave the world with whichever got
through. `PresenceSync` keeps what each player's presence last said and,
after every tick, compares it with the world: when they differ and no
presence command of that player is on its way, it sends one. Refusals of
those commands are not the player's business (they are retried), and at
most one is in flight per player, so a storm costs the world at most one
command per player per tick and ends with the last presence.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from schema._generated.layout import COMMAND_DTYPE, EffectKind, Op
from vocabulary.types import Batch, TickResult

from ..effects import effect_array
from ..link.merged import Lookup


def sessions(result: TickResult, batch: Batch) -> list[tuple[int, bool]]:
    """The players a tick's joins and leaves (those the rules did not reject) took online (True)
    or offline (False), in the batch's order."""
    commands = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
    moving = commands[(commands["op"] == Op.join) | (commands["op"] == Op.leave)]
    if not len(moving):
        return []
    effects = effect_array(result)
    rejections = effects[effects["kind"] == EffectKind.rejected]
    rejected = set(zip(rejections["subject"].tolist(), rejections["object"].tolist()))
    return [(player, op == Op.join) for player, seq, op in
            zip(moving["player"].tolist(), moving["seq"].tolist(), moving["op"].tolist())
            if (player, seq) not in rejected]


class PresenceSync:
    def __init__(self, send: Callable[[int, bool], int | None]) -> None:
        """`send(entity, online)` submits a join (True) or leave (False) and returns its seq
        (None when it could not be sent)."""
        self.send = send
        self.wanted: dict[int, bool] = {}      # entity -> online, as its presence last said
        self.sent: dict[int, int] = {}         # entity -> seq of its last presence command
        self._in_flight: dict[int, int] = {}   # entity -> that seq, until a tick carries it or it is refused
        self._unsettled: set[int] = set()

    def want(self, entity: int, online: bool, view: Lookup) -> None:
        self.wanted[entity] = online
        self._settle(entity, view)

    def on_tick(self, view: Lookup, batch: Batch) -> None:
        if self._in_flight:
            commands = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
            mine = np.isin(commands["player"], np.fromiter(self._in_flight, dtype=np.uint64))
            for player, seq in zip(commands["player"][mine].tolist(), commands["seq"][mine].tolist()):
                if self._in_flight.get(player) == seq:
                    del self._in_flight[player]
        for entity in list(self._unsettled):
            self._settle(entity, view)

    def on_refused(self, entity: int, seq: int | None) -> bool:
        """True when the refused command was one of ours (it will be sent again): not the player's news."""
        if seq is None or self._in_flight.get(entity) != seq:
            return False
        del self._in_flight[entity]
        self._unsettled.add(entity)
        return True

    def _settle(self, entity: int, view: Lookup) -> None:
        if view.online(entity) == self.wanted[entity]:
            self._unsettled.discard(entity)
            return
        self._unsettled.add(entity)
        if entity in self._in_flight:
            return      # its tick (or its refusal) comes first
        seq = self.send(entity, self.wanted[entity])
        if seq is not None:
            self._in_flight[entity] = self.sent[entity] = seq

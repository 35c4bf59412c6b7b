"""What the simulated mmo players know of the world, and how they act on it.

A player's client sees its surroundings (its area of interest); the load
driver stands in for ten thousand of them at once, so it keeps one copy of
every entity's zone, position and state in numpy arrays indexed by id,
updated from each committed tick's changed and removed records: O(changes)
a tick, like the clients' own updates, and one tick behind, as they are.

With it a player who means to fight attacks an npc next to it, or steps
toward the nearest one it can see; one who wants loot picks up an item next
to it or steps toward one; one who drinks a potion has one. Without it,
targets drawn at random from the zone are nearly always out of range, so
nobody fights back, the npcs keep winning and the dead crowd the spawn
points: a world no player would recognise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schema._generated.layout import ENTITY_DTYPE, Kind, Op
from vocabulary.types import TickResult, WorldData

SIGHT = 10          # the area of interest's distance: what a player can see
GONE = -1           # the kind of an id that no longer exists

Array = np.ndarray[Any, Any]


class Sight:
    """Arrays indexed by slot: an id below the world's next_id at the start is its own slot; any
    other (what zones create, from 2^62 up: docs/rules.md "Ids") gets the next free slot."""

    def __init__(self, world: WorldData) -> None:
        self.dense = size = world.next_id + 1
        self.kind = np.full(size, GONE, dtype=np.int16)
        self.zone = np.zeros(size, dtype=np.int64)
        self.x = np.zeros(size, dtype=np.int64)
        self.y = np.zeros(size, dtype=np.int64)
        self.alive = np.zeros(size, dtype=bool)
        self.potions = np.zeros(size, dtype=np.int64)
        self.ids = np.arange(size, dtype=np.int64)         # slot -> id
        self._slot: dict[int, int] = {}                      # id -> slot, for ids from `dense` up
        self._apply(np.frombuffer(world.entities, dtype=ENTITY_DTYPE))

    def see(self, result: TickResult) -> None:
        """Take in one committed tick's changes."""
        self._apply(np.frombuffer(result.changed, dtype=ENTITY_DTYPE))
        removed = np.frombuffer(result.removed, dtype="<u8").astype(np.int64)
        known = [self._slot.get(i, -1) if i >= self.dense else i for i in removed.tolist()]
        self.kind[[k for k in known if k >= 0]] = GONE

    def slots(self, ids: Array, *, make: bool = False) -> Array:
        """The slots of `ids` (-1 for one not seen, unless `make`, which gives it the next free one)."""
        out = ids.astype(np.int64)
        for at in np.flatnonzero(out >= self.dense).tolist():
            entity = int(out[at])
            slot = self._slot.get(entity, -1)
            if slot < 0 and make:
                slot = self._slot[entity] = self.dense + len(self._slot)
                if slot >= len(self.kind):
                    self._grow(slot + 1)
                self.ids[slot] = entity
            out[at] = slot
        return out

    def _apply(self, records: Array) -> None:
        ids = self.slots(records["id"], make=True)
        self.kind[ids] = records["kind"]
        self.zone[ids] = records["zone"]
        self.x[ids] = records["x"]
        self.y[ids] = records["y"]
        self.alive[ids] = records["respawn_tick"] == 0
        self.potions[ids] = records["potions"]

    def _grow(self, at_least: int) -> None:
        size = max(at_least, 2 * len(self.kind))
        for name in ("kind", "zone", "x", "y", "alive", "potions", "ids"):
            old = getattr(self, name)
            new = np.full(size, GONE, dtype=old.dtype) if name == "kind" else np.zeros(size, dtype=old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)

    def act(self, players: Array, op: Array, records: Array, rng: np.random.Generator, *,
            prey: tuple[int, ...] = (Kind.npc,)) -> None:
        """Turn intents in `op` into commands in `records`: attack (an entity of a `prey`
        kind) or pickup what is within reach, else step toward the nearest one in sight,
        else wander; drink a potion only when one is at hand (else wander)."""
        me = self.slots(players)
        wander = np.zeros(len(me), dtype=bool)
        for intent, kinds in ((Op.attack, prey), (Op.pickup, (Kind.item,))):
            wants = np.flatnonzero(op == intent)
            if len(wants):
                wander[wants] |= self._reach(me, wants, kinds, records)
        drinks = np.flatnonzero(op == Op.use)
        wander[drinks[self.potions[me[drinks]] == 0]] = True
        wander |= op == Op.move
        records["op"][wander] = Op.move
        records["target"][wander] = 0
        records["dx"][wander] = rng.integers(-1, 2, wander.sum())
        records["dy"][wander] = rng.integers(-1, 2, wander.sum())

    def _reach(self, me: Array, wants: Array, kinds: tuple[int, ...], records: Array) -> Array:
        """For the players at `wants`: the nearest other entity of `kinds` in sight (living,
        unless an item). Returns where nothing is in sight (those wander)."""
        candidates = np.flatnonzero(np.isin(self.kind, kinds) & (self.alive | (self.kind == Kind.item)))
        nothing = np.ones(len(wants), dtype=bool)
        for zone in np.unique(self.zone[me[wants]]).tolist():
            here = wants[self.zone[me[wants]] == zone]
            there = candidates[self.zone[candidates] == zone]
            if not len(there):
                continue
            dx = self.x[there][None, :] - self.x[me[here]][:, None]
            dy = self.y[there][None, :] - self.y[me[here]][:, None]
            distance = np.maximum(np.abs(dx), np.abs(dy))
            distance[there[None, :] == me[here][:, None]] = SIGHT + 1     # not oneself
            nearest = distance.argmin(axis=1)
            rows = np.arange(len(here))
            closest = distance[rows, nearest]
            seen = closest <= SIGHT
            nothing[np.searchsorted(wants, here[seen])] = False
            near = here[closest <= 1]
            records["target"][near] = self.ids[there[nearest[closest <= 1]]]
            step = seen & (closest > 1)
            walkers = here[step]
            records["op"][walkers] = Op.move
            records["dx"][walkers] = np.sign(dx[rows[step], nearest[step]])
            records["dy"][walkers] = np.sign(dy[rows[step], nearest[step]])
        return nothing

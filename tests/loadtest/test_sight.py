"""The mmo players' sight: they act on what is near them, as a client would."""

from __future__ import annotations

import numpy as np

from loadtest.sight import Sight
from schema._generated.layout import COMMAND_DTYPE, Op
from tests.support import item, npc, player, world
from vocabulary.records import pack_entity
from vocabulary.types import TickResult

WORLD = world(player(1, 10, 10), player(2, 40, 40, potions=1), player(3, 100, 100), npc(4, 11, 10),
              npc(5, 45, 40), item(6, 10, 11, gold=5), next_id=10)


def act(players: list[int], intents: list[int]) -> np.ndarray:
    sight = Sight(WORLD)
    records = np.zeros(len(players), dtype=COMMAND_DTYPE)
    records["op"] = intents
    sight.act(np.array(players, dtype=np.uint64), np.array(intents, dtype=np.uint8), records,
              np.random.default_rng(1))
    return records


def test_a_fighter_attacks_the_npc_next_to_it_or_steps_toward_the_nearest_in_sight():
    near, far, alone = act([1, 2, 3], [Op.attack] * 3)
    assert (near["op"], near["target"]) == (Op.attack, 4)
    assert (far["op"], far["dx"], far["dy"], far["target"]) == (Op.move, 1, 0, 0)     # npc 5 is 5 cells east
    assert alone["op"] == Op.move and alone["target"] == 0                              # nothing in sight: wander


def test_loot_within_reach_is_picked_up_and_a_potion_is_drunk_only_when_there_is_one():
    looter, drinker, dry = act([1, 2, 1], [Op.pickup, Op.use, Op.use])
    assert (looter["op"], looter["target"]) == (Op.pickup, 6)
    assert drinker["op"] == Op.use
    assert dry["op"] == Op.move


def test_what_a_tick_changed_or_removed_is_seen():
    sight = Sight(WORLD)
    moved = pack_entity(**npc(4, 30, 30))
    sight.see(TickResult(tick=1, next_id=10, effects=b"", recipients=b"", changed=moved,
                         removed=(6).to_bytes(8, "little")))
    records = np.zeros(2, dtype=COMMAND_DTYPE)
    sight.act(np.array([1, 1], dtype=np.uint64), np.array([Op.attack, Op.pickup], dtype=np.uint8), records,
              np.random.default_rng(1))
    assert records["op"].tolist() == [Op.move, Op.move] and records["target"].tolist() == [0, 0]

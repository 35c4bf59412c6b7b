"""Tick phase 4: npc behaviour."""

from tests.rules.kit import changed, non_aoi
from tests.support import ZONE, item, npc, player
from vocabulary.ids import zone_first_id

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)


def pos(s, id):
    e = s.entities()[id]
    return e["x"], e["y"]


def test_an_npc_steps_toward_its_target_one_cell_on_each_axis(start):
    s = start(npc(2, 10, 10), player(1, 13, 12))
    s.step()
    assert pos(s, 2) == (11, 11)
    s.step()
    assert pos(s, 2) == (12, 12)  # now at distance 1: it stops here
    s.step()
    assert pos(s, 2) == (12, 12)


def test_the_chase_range_is_5(start):
    s = start(npc(2, 10, 10), player(1, 10, 15), npc(3, 40, 40), player(4, 46, 35))
    s.step()
    assert pos(s, 2) == (10, 11)
    assert pos(s, 3) == (40, 40)  # distance 6: no target


def test_an_adjacent_npc_attacks_and_then_waits_for_its_cooldown(start):
    s = start(npc(2, 10, 10), player(1, 11, 11), tick=10)
    result, _ = s.step()                                     # tick 11
    assert s.entities()[1]["hp"] == 100 - (6 - 2)
    assert s.entities()[2]["next_action_tick"] == 13
    assert sorted(changed(result)) == [1, 2]
    result, _ = s.step()                                     # tick 12: waits, stays
    assert s.entities()[1]["hp"] == 96
    assert pos(s, 2) == (10, 10)
    assert changed(result) == {}
    s.step()                                                 # tick 13
    assert s.entities()[1]["hp"] == 92


def test_an_npc_on_cooldown_waits_even_when_it_could_move(start):
    s = start(npc(2, 10, 10, next_action_tick=3), player(1, 10, 11))
    s.step()
    assert pos(s, 2) == (10, 10)
    assert s.entities()[1]["hp"] == 100


def test_the_nearest_player_is_the_target_and_ties_go_to_the_lowest_id(start):
    s = start(npc(2, 10, 10), player(5, 14, 10), player(6, 10, 8),
              npc(3, 40, 40), player(9, 43, 40), player(7, 37, 37))
    s.step()
    assert pos(s, 2) == (10, 9)    # toward 6 at distance 2, not 5 at distance 4
    assert pos(s, 3) == (39, 39)   # 7 and 9 both at distance 3: toward 7


def test_offline_dead_and_other_zone_players_are_no_targets(start):
    s = start(npc(2, 10, 10), player(1, 12, 10, online=0), player(3, 10, 12, hp=0, respawn_tick=90),
              player(4, 11, 11, zone=2), item(5, 11, 10), npc(6, 9, 9), zones=[ZONE, ZONE2])
    result, _ = s.step()
    assert pos(s, 2) == (10, 10) and pos(s, 6) == (9, 9)
    assert changed(result) == {}


def test_dead_npcs_do_nothing(start):
    s = start(npc(2, 10, 10, hp=0, respawn_tick=90), player(1, 11, 10))
    s.step()
    assert s.entities()[1]["hp"] == 100


def test_each_npc_sees_the_world_as_the_npcs_before_it_left_it(start):
    s = start(player(1, 10, 10, hp=5, gold=8), npc(4, 9, 10), npc(8, 11, 11), npc(9, 10, 9),
              player(20, 10, 6), next_id=30)
    result, effects = s.step()
    # npc 4 hits 5 -> 1, npc 8 kills; npc 9 then hunts player 20 instead
    assert non_aoi(effects) == [{"type": "died", "entity": 1, "by": 8}]
    assert s.entities()[1]["hp"] == 0
    assert s.entities()[4]["next_action_tick"] == 3 and s.entities()[8]["next_action_tick"] == 3
    assert s.entities()[9]["next_action_tick"] == 0
    assert pos(s, 9) == (10, 8)
    drop = s.entities()[zone_first_id(1)]
    assert drop["amount"] == 8 and (drop["x"], drop["y"]) == (10, 10)
    assert result.next_id == 30


def test_npcs_see_respawned_and_regenerated_players(start):
    # respawn (phase 2) and regeneration (phase 3) happen before npcs act (phase 4)
    s = start(player(1, 3, 3, hp=0, respawn_tick=5), npc(2, 34, 32),
              player(3, 50, 50, hp=50), npc(4, 51, 51), tick=4)
    s.step()
    assert pos(s, 2) == (33, 32)
    assert s.entities()[3]["hp"] == 50 + 1 - (6 - 2)

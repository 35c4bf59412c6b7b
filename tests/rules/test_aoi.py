"""Tick phase 6: enter, update and leave effects for every online observer."""

from tests.rules.kit import changed, cmd, removed, sightings
from tests.support import ZONE, item, npc, player
from vocabulary.ids import zone_first_id

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)


def test_a_new_player_enters_what_it_sees_and_is_seen_entering(start):
    s = start(player(1, 30, 30), npc(3, 40, 40), item(4, 42, 32), item(7, 43, 32),
              player(8, 33, 33, online=0), player(9, 32, 32, zone=2), zones=[ZONE, ZONE2])
    _, effects = s.step(cmd(5, 1, "join", zone=1, name="new"))
    # spawn 32,32: 4 is at distance 10, 7 at 11, 8 is offline, 9 in another zone
    assert sightings(effects) == [("enter", 1, 5), ("enter", 5, 1), ("enter", 5, 3),
                                  ("enter", 5, 4), ("enter", 5, 5)]


def test_moving_brings_entities_into_and_out_of_view(start):
    s = start(player(1, 10, 10), item(2, 21, 10), item(3, 0, 10), player(5, 21, 0), player(6, 0, 20))
    _, effects = s.step(cmd(1, 1, "move", dx=1, dy=0))
    # sight is symmetric between players: 1 and 5 meet, 1 and 6 part
    assert sightings(effects) == [("update", 1, 1), ("enter", 1, 2), ("leave", 1, 3),
                                  ("enter", 1, 5), ("leave", 1, 6), ("enter", 5, 1), ("leave", 6, 1)]


def test_a_picked_up_item_leaves_every_view(start):
    s = start(player(1, 5, 5), item(2, 5, 6), player(3, 12, 12))
    _, effects = s.step(cmd(1, 1, "pickup", item=2))
    assert sightings(effects) == [("update", 1, 1), ("leave", 1, 2), ("update", 3, 1), ("leave", 3, 2)]


def test_a_player_who_leaves_disappears_and_reappears_when_it_joins(start):
    s = start(player(1, 5, 5), player(3, 8, 8))
    _, effects = s.step(cmd(1, 1, "leave"))
    assert sightings(effects) == [("leave", 3, 1)]
    _, effects = s.step(cmd(1, 2, "join", zone=1, name="p1"))
    assert sightings(effects) == [("enter", 1, 1), ("enter", 1, 3), ("enter", 3, 1)]


def test_leaving_and_joining_again_in_one_tick_shows_nothing(start):
    s = start(player(1, 5, 5), player(3, 8, 8))
    result, effects = s.step(cmd(1, 1, "leave"), cmd(1, 2, "join", zone=1, name="p1"))
    assert sightings(effects) == []
    assert list(changed(result)) == [1]  # last_seq


def test_a_player_who_joins_and_leaves_in_one_tick_is_never_seen(start):
    s = start(player(1, 32, 32))
    result, effects = s.step(cmd(5, 1, "join", zone=1, name="x"), cmd(5, 2, "leave"))
    assert sightings(effects) == []
    assert changed(result)[5]["online"] == 0


def test_last_seq_changes_alone_give_no_update(start):
    s = start(player(1, 0, 0), player(3, 4, 4))
    result, effects = s.step(cmd(1, 1, "move", dx=-1, dy=-1), cmd(3, 1, "use"))
    assert sightings(effects) == []
    assert sorted(changed(result)) == [1, 3]


def test_the_dead_stay_visible_and_dropped_gold_enters(start):
    s = start(player(1, 5, 5), player(2, 6, 5, hp=1, gold=3), next_id=50)
    _, effects = s.step(cmd(1, 1, "attack", target=2))
    drop = zone_first_id(1)
    assert sightings(effects) == [("update", 1, 1), ("update", 1, 2), ("enter", 1, drop),
                                  ("update", 2, 1), ("update", 2, 2), ("enter", 2, drop)]


def test_other_zones_are_out_of_sight(start):
    s = start(player(1, 5, 5), player(2, 5, 5, zone=2), zones=[ZONE, ZONE2])
    _, effects = s.step(cmd(2, 1, "move", dx=1, dy=0))
    assert sightings(effects) == [("update", 2, 2)]


def test_an_entity_created_and_removed_in_one_tick_is_never_reported(start):
    s = start(player(1, 10, 10, hp=1, gold=7), npc(2, 10, 9), player(3, 10, 11), next_id=50)
    result, effects = s.step(cmd(3, 1, "pickup", item=zone_first_id(1)))
    assert s.entities()[3]["gold"] == 7
    assert s.zones()[1]["next_id"] == zone_first_id(1) + 1
    assert sorted(changed(result)) == [1, 2, 3]
    assert removed(result) == []
    assert sightings(effects) == [("update", 1, 1), ("update", 1, 2), ("update", 1, 3),
                                  ("update", 3, 1), ("update", 3, 2), ("update", 3, 3)]


def test_a_respawned_observer_sees_its_new_surroundings(start):
    s = start(player(1, 5, 5, hp=0, respawn_tick=1), player(3, 6, 6), player(4, 33, 33))
    _, effects = s.step()
    assert sightings(effects) == [("update", 1, 1), ("leave", 1, 3), ("enter", 1, 4),
                                  ("leave", 3, 1), ("enter", 4, 1)]


def test_an_offline_player_respawning_is_seen_by_no_one(start):
    s = start(player(1, 5, 5, hp=0, respawn_tick=1, online=0), player(3, 33, 33))
    _, effects = s.step()
    assert sightings(effects) == []


def test_an_id_removed_and_claimed_by_a_join_in_one_tick_is_judged_by_id(start):
    """Item 2 is picked up, then a join creates player 2 far away: one entity 2 that
    changed, leaving the views it was in and entering the new player's own."""
    s = start(player(1, 5, 5), item(2, 5, 6), player(3, 7, 7))
    result, effects = s.step(cmd(1, 1, "pickup", item=2), cmd(2, 1, "join", zone=1, name="reborn"))
    assert sightings(effects) == [("update", 1, 1), ("leave", 1, 2), ("enter", 2, 2),
                                  ("update", 3, 1), ("leave", 3, 2)]
    assert removed(result) == []
    assert changed(result)[2]["kind"] == 0 and changed(result)[2]["name"] == "reborn"

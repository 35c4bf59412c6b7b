"""Tick phases 1-3: the tick counter, respawn and regeneration."""

from tests.rules.kit import cmd, non_aoi
from tests.support import ZONE, npc, player

ZONE2 = dict(id=2, width=30, height=30, spawn_x=7, spawn_y=9)


def test_each_transform_advances_the_tick_by_one(start):
    s = start(player(1), tick=41)
    result, _ = s.step()
    assert result.tick == 42
    result, _ = s.step()
    assert result.tick == 43


def test_dead_players_respawn_at_their_zone_spawn_with_full_hp(start):
    s = start(player(1, 3, 3, hp=0, respawn_tick=2, gold=0, potions=4, next_action_tick=1,
                     last_seq=6),
              player(2, 20, 20, zone=2, hp=0, respawn_tick=2), zones=[ZONE, ZONE2])
    before = s.entities()
    _, effects = s.step()
    assert non_aoi(effects) == []
    assert s.entities() == before
    _, effects = s.step()
    assert non_aoi(effects) == [{"type": "respawned", "entity": 1}, {"type": "respawned", "entity": 2}]
    after = s.entities()
    assert after[1] == {**before[1], "x": 32, "y": 32, "hp": 100, "respawn_tick": 0}
    assert after[2] == {**before[2], "x": 7, "y": 9, "hp": 100, "respawn_tick": 0}


def test_npcs_respawn_at_home(start):
    s = start(npc(4, 3, 3, home_x=50, home_y=51, hp=0, respawn_tick=1, max_hp=44))
    _, effects = s.step()
    assert non_aoi(effects) == [{"type": "respawned", "entity": 4}]
    n = s.entities()[4]
    assert (n["x"], n["y"], n["hp"], n["respawn_tick"]) == (50, 51, 44, 0)


def test_respawns_come_in_ascending_id_and_overdue_ones_come_too(start):
    s = start(npc(9, 60, 60, hp=0, respawn_tick=6), player(5, 1, 1, hp=0, respawn_tick=2, online=0),
              player(2, 9, 60, hp=0, respawn_tick=6), npc(3, 60, 1, hp=0, respawn_tick=7), tick=5)
    _, effects = s.step()
    assert non_aoi(effects) == [{"type": "respawned", "entity": e} for e in (2, 5, 9)]
    assert s.entities()[5]["online"] == 0  # an offline player respawns offline
    _, effects = s.step()
    assert non_aoi(effects) == [{"type": "respawned", "entity": 3}]


def test_a_killed_player_respawns_ten_ticks_later(start):
    s = start(player(1, 5, 5), player(2, 6, 5, hp=1))
    s.step(cmd(1, 1, "attack", target=2))                   # tick 1: respawn_tick 11
    for _ in range(9):                                       # ticks 2..10
        _, effects = s.step()
        assert non_aoi(effects) == []
    assert s.entities()[2]["hp"] == 0
    _, effects = s.step()                                    # tick 11
    assert non_aoi(effects) == [{"type": "respawned", "entity": 2}]
    p = s.entities()[2]
    assert (p["x"], p["y"], p["hp"], p["respawn_tick"]) == (32, 32, 100, 0)


def test_regeneration_happens_on_ticks_divisible_by_5_only(start):
    s = start(player(1, 1, 1, hp=50), tick=3)
    hps = []
    for _ in range(8):                                       # ticks 4..11
        s.step()
        hps.append(s.entities()[1]["hp"])
    assert hps == [50, 51, 51, 51, 51, 51, 52, 52]


def test_every_living_wounded_player_and_npc_regenerates(start):
    s = start(player(1, 1, 1, hp=50, online=0),            # offline: yes
              player(2, 20, 1, hp=0, respawn_tick=90),     # dead: no
              player(3, 40, 1, hp=100),                    # full: stays full
              npc(4, 60, 60, hp=10),                       # npc: yes
              npc(5, 60, 30, hp=0, respawn_tick=90),       # dead npc: no
              tick=4)
    s.step()
    hp = {id: e["hp"] for id, e in s.entities().items()}
    assert hp == {1: 51, 2: 0, 3: 100, 4: 11, 5: 0}


def test_entities_wounded_in_play_regenerate_and_respawned_ones_are_full(start):
    s = start(player(1, 5, 5), player(2, 6, 5), player(3, 40, 40, hp=0, respawn_tick=5), tick=3)
    s.step(cmd(1, 1, "attack", target=2))                   # tick 4: 100 - 8
    assert s.entities()[2]["hp"] == 92
    s.step()                                                 # tick 5
    assert s.entities()[2]["hp"] == 93
    assert s.entities()[3]["hp"] == 100


def test_a_potion_to_full_hp_stops_regeneration(start):
    s = start(player(1, 5, 5, hp=95, potions=1), tick=4)
    s.step(cmd(1, 1, "use"))                                 # tick 5: regen to 96, then potion
    assert s.entities()[1]["hp"] == 100
    for _ in range(5):
        s.step()
    assert s.entities()[1]["hp"] == 100

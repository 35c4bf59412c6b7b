"""attack: damage, cooldown, targets and range, and the death rule."""

from tests.rules.kit import changed, cmd, non_aoi, reason, rejections
from tests.support import ZONE, item, npc, player
from vocabulary.ids import zone_first_id, zone_id_end

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)
PASSIVE = 10_000  # an npc next_action_tick that keeps it from hitting back


def hit(attacker, seq, target):
    return cmd(attacker, seq, "attack", target=target)


def test_damage_is_attack_minus_defense_and_the_cooldown_is_two_ticks(start):
    s = start(player(1, 5, 5), npc(2, 6, 5, next_action_tick=PASSIVE))
    _, effects = s.step(hit(1, 1, 2))                       # tick 1
    assert reason(effects) is None
    assert s.entities()[2]["hp"] == 30 - (10 - 1)
    assert s.entities()[1]["next_action_tick"] == 3
    _, effects = s.step(hit(1, 2, 2))                       # tick 2: 3 > 2
    assert reason(effects) == "cooldown"
    assert s.entities()[2]["hp"] == 21
    _, effects = s.step(hit(1, 3, 2))                       # tick 3: 3 <= 3
    assert reason(effects) is None
    assert s.entities()[2]["hp"] == 12
    assert s.entities()[1]["next_action_tick"] == 5


def test_players_can_attack_online_players_diagonally_adjacent(start):
    s = start(player(1, 5, 5), player(2, 6, 6))
    _, effects = s.step(hit(1, 1, 2))
    assert reason(effects) is None
    assert s.entities()[2]["hp"] == 100 - (10 - 2)


def test_damage_is_at_least_one(start):
    s = start(player(1, 5, 5, attack=1), player(2, 5, 6, defense=5))
    s.step(hit(1, 1, 2))
    assert s.entities()[2]["hp"] == 99


def test_a_killed_player_drops_its_gold_as_a_new_item(start):
    s = start(player(1, 5, 5), player(2, 6, 5, hp=5, gold=30, potions=2, next_action_tick=4),
              next_id=50)
    victim = s.entities()[2]
    result, effects = s.step(hit(1, 1, 2))
    assert non_aoi(effects) == [{"type": "died", "entity": 2, "by": 1}]
    after = s.entities()
    # potions, next_action_tick and online stay as they were
    assert after[2] == {**victim, "hp": 0, "respawn_tick": 11, "gold": 0}
    # The item's id is the zone's to give (docs/rules.md "Ids"): the world's next_id stays.
    drop = zone_first_id(1)
    assert after[drop] == dict(id=drop, kind=2, zone=1, x=6, y=5, item_type=1, amount=30, gold=0, hp=0,
                               max_hp=0, attack=0, defense=0, potions=0, next_action_tick=0,
                               respawn_tick=0, last_seq=0, online=0, name="", home_x=0, home_y=0)
    assert result.next_id == 50 and s.zones()[1]["next_id"] == drop + 1
    assert sorted(changed(result)) == [1, 2, drop]


def test_with_no_id_left_in_its_zone_a_killed_player_keeps_its_gold(start):
    s = start(player(1, 5, 5), player(2, 6, 5, hp=5, gold=30), zones=[dict(ZONE, next_id=zone_id_end(1))])
    result, effects = s.step(hit(1, 1, 2))
    assert non_aoi(effects) == [{"type": "died", "entity": 2, "by": 1}]
    assert s.entities()[2]["gold"] == 30 and s.entities()[2]["hp"] == 0
    assert s.zones()[1]["next_id"] == zone_id_end(1) and sorted(s.entities()) == [1, 2]


def test_the_last_zone_creates_no_id_past_the_largest_bigint(start):
    last = dict(id=2**32 - 1, width=64, height=64, spawn_x=0, spawn_y=0, next_id=2**63 - 2)
    z = last["id"]
    s = start(player(1, 5, 5, zone=z), npc(2, 6, 5, zone=z, hp=1, gold=3, next_action_tick=PASSIVE),
              npc(3, 5, 6, zone=z, hp=1, gold=4, next_action_tick=PASSIVE), zones=[last])
    s.step(hit(1, 1, 2))
    s.step()
    s.step(hit(1, 2, 3))
    assert s.entities()[2**63 - 2]["amount"] == 3 and s.entities()[3]["gold"] == 4
    assert s.zones()[last["id"]]["next_id"] == 2**63 - 1


def test_a_killed_npc_without_gold_drops_nothing(start):
    s = start(player(1, 5, 5), npc(2, 6, 5, hp=9, next_action_tick=PASSIVE), next_id=50)
    result, effects = s.step(hit(1, 1, 2))
    assert non_aoi(effects) == [{"type": "died", "entity": 2, "by": 1}]
    npc_after = s.entities()[2]
    assert (npc_after["hp"], npc_after["respawn_tick"]) == (0, 11)
    assert result.next_id == 50
    assert set(s.entities()) == {1, 2}


def test_a_killed_npc_with_gold_drops_it(start):
    s = start(player(1, 5, 5), npc(2, 6, 5, hp=9, gold=4, next_action_tick=PASSIVE), next_id=50)
    result, _ = s.step(hit(1, 1, 2))
    assert s.entities()[zone_first_id(1)]["amount"] == 4
    assert s.entities()[2]["gold"] == 0
    assert result.next_id == 50


def test_what_is_no_target(start):
    s = start(player(1, 5, 5), npc(2, 6, 5, hp=0, respawn_tick=90), item(3, 5, 6),
              player(4, 4, 4, online=0), player(5, 4, 5, hp=0, respawn_tick=90))
    _, effects = s.step(hit(1, 1, 99), hit(1, 2, 2), hit(1, 3, 3), hit(1, 4, 1), hit(1, 5, 4),
                        hit(1, 6, 5))
    assert rejections(effects) == [(1, seq, "no_target") for seq in range(1, 7)]
    assert s.entities()[1]["next_action_tick"] == 0


def test_what_is_out_of_range(start):
    s = start(player(1, 5, 5), player(2, 7, 5), player(3, 5, 5, zone=2), player(4, 3, 7),
              zones=[ZONE, ZONE2])
    _, effects = s.step(hit(1, 1, 2), hit(1, 2, 3), hit(1, 3, 4))
    assert rejections(effects) == [(1, 1, "out_of_range"), (1, 2, "out_of_range"),
                                   (1, 3, "out_of_range")]


def test_offline_and_dead_players_cannot_attack(start):
    s = start(player(1, 5, 5, online=0), player(2, 6, 5, hp=0, respawn_tick=90), player(3, 5, 6))
    _, effects = s.step(hit(1, 1, 3), hit(2, 1, 3))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead")]
    assert s.entities()[3]["hp"] == 100


def test_reason_precedence(start):
    s = start(player(1, 5, 5, online=0, hp=0, respawn_tick=90, next_action_tick=99),
              player(2, 6, 5, hp=0, respawn_tick=90, next_action_tick=99),
              player(3, 9, 9, next_action_tick=99), player(4, 40, 40, zone=2, online=0),
              player(5, 20, 20), player(6, 10, 10, next_action_tick=99),
              zones=[ZONE, ZONE2])
    _, effects = s.step(
        hit(1, 1, 4),   # offline before dead, no_target, out_of_range, cooldown
        hit(2, 1, 4),   # dead before no_target
        hit(3, 1, 4),   # no_target (offline, other zone) before out_of_range
        hit(3, 2, 5),   # out_of_range before cooldown
        hit(3, 3, 6))   # cooldown
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead"), (3, 1, "no_target"),
                                   (3, 2, "out_of_range"), (3, 3, "cooldown")]

"""join: create a new player, or bring a saved one back online."""

from tests.rules.kit import changed, cmd, reason, rejections
from tests.support import ZONE, item, npc, player

ZONE2 = dict(id=2, width=20, height=10, spawn_x=3, spawn_y=4)


def join(id, seq, zone=1, name="ann"):
    return cmd(id, seq, "join", zone=zone, name=name)


def test_a_new_player_is_created_at_the_zone_spawn_with_the_starting_stats(start):
    s = start(player(1, 5, 5), zones=[ZONE, ZONE2], next_id=10)
    result, effects = s.step(join(7, 3, zone=2, name="ann"))
    assert reason(effects) is None
    assert s.entities()[7] == dict(
        id=7, kind=0, zone=2, x=3, y=4, hp=100, max_hp=100, attack=10, defense=2, gold=0,
        potions=0, next_action_tick=0, respawn_tick=0, online=1, name="ann", last_seq=3,
        home_x=0, home_y=0, amount=0, item_type=0)
    assert result.next_id == 10  # 7 < next_id: unchanged
    assert 7 in changed(result)


def test_a_new_id_at_or_above_next_id_moves_next_id_past_it(start):
    s = start(player(1), next_id=5)
    result, _ = s.step(join(5, 1))
    assert result.next_id == 6
    result, _ = s.step(join(40, 1))
    assert result.next_id == 41


def test_a_returning_player_comes_back_where_it_was_saved_keeping_everything(start):
    saved = player(3, 9, 8, online=0, gold=12, potions=2, hp=40, name="bob", last_seq=4,
                   next_action_tick=7)
    s = start(saved, zones=[ZONE, ZONE2])
    before = s.entities()[3]
    result, effects = s.step(join(3, 5, zone=2, name="other"))
    assert reason(effects) is None
    assert s.entities()[3] == {**before, "online": 1, "last_seq": 5}
    assert (before["zone"], before["x"], before["y"], before["name"]) == (1, 9, 8, "bob")
    assert result.next_id == 4


def test_a_dead_player_may_join_and_stays_dead(start):
    s = start(player(3, 2, 2, online=0, hp=0, respawn_tick=9))
    _, effects = s.step(join(3, 1))
    assert reason(effects) is None
    p = s.entities()[3]
    assert (p["online"], p["hp"], p["respawn_tick"], p["x"], p["y"]) == (1, 0, 9, 2, 2)


def test_joining_as_an_npc_or_item_id_is_not_a_player_and_changes_nothing(start):
    s = start(player(1), npc(2, 40, 40), item(3, 50, 50, gold=5))
    before = s.entities()
    result, effects = s.step(join(2, 1), join(3, 1))
    assert rejections(effects) == [(2, 1, "not_a_player"), (3, 1, "not_a_player")]
    assert s.entities() == before
    assert result.changed == b""


def test_an_online_player_is_already_online(start):
    s = start(player(1, 4, 4))
    result, effects = s.step(join(1, 9))
    assert rejections(effects) == [(1, 9, "already_online")]
    assert s.entities()[1]["last_seq"] == 9  # a rejected command still advances last_seq


def test_an_unknown_zone_creates_nothing(start):
    s = start(player(1), next_id=5)
    result, effects = s.step(join(8, 1, zone=99))
    assert rejections(effects) == [(8, 1, "no_such_zone")]
    assert 8 not in s.entities()
    assert result.next_id == 5
    assert result.changed == b""


def test_an_unknown_zone_is_checked_for_returning_players_too(start):
    s = start(player(1, online=0))
    _, effects = s.step(join(1, 2, zone=99))
    assert reason(effects) == "no_such_zone"
    p = s.entities()[1]
    assert (p["online"], p["last_seq"]) == (0, 2)


def test_names_must_be_1_to_32_bytes_for_new_and_returning_players(start):
    s = start(player(1, online=0))
    _, effects = s.step(join(5, 1, name=""), join(6, 1, name="x" * 33), join(1, 1, name=""),
                        join(7, 1, name="é" * 17))  # 34 bytes
    assert rejections(effects) == [(5, 1, "bad_name"), (6, 1, "bad_name"), (1, 1, "bad_name"),
                                   (7, 1, "bad_name")]
    assert set(s.entities()) == {1}
    _, effects = s.step(join(8, 1, name="é" * 16), join(9, 1, name="y" * 32))
    assert reason(effects) is None
    assert s.entities()[8]["name"] == "é" * 16
    assert s.entities()[9]["name"] == "y" * 32


def test_reason_precedence(start):
    s = start(player(1), npc(2, 40, 40), player(3, online=0))
    _, effects = s.step(
        join(2, 1, zone=99, name=""),   # npc id: not_a_player before everything
        join(1, 1, zone=99, name=""),   # online: already_online before zone and name
        join(3, 1, zone=99, name=""),   # no_such_zone before bad_name
        join(4, 1, zone=99, name=""))
    assert rejections(effects) == [(2, 1, "not_a_player"), (1, 1, "already_online"),
                                   (3, 1, "no_such_zone"), (4, 1, "no_such_zone")]

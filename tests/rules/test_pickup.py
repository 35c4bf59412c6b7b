"""pickup: gold adds its amount, a potion adds one potion; the item goes."""

from tests.rules.kit import changed, cmd, reason, rejections, removed
from tests.support import ZONE, item, npc, player

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)


def pick(player_id, seq, item_id):
    return cmd(player_id, seq, "pickup", item=item_id)


def test_gold_adds_its_amount_and_the_item_is_removed(start):
    s = start(player(1, 5, 5, gold=3), item(2, 6, 6, gold=40))
    result, effects = s.step(pick(1, 1, 2))
    assert reason(effects) is None
    assert s.entities()[1]["gold"] == 43
    assert 2 not in s.entities()
    assert removed(result) == [2]
    assert list(changed(result)) == [1]


def test_a_potion_adds_one_potion(start):
    s = start(player(1, 5, 5, potions=2), item(2, 5, 5))
    s.step(pick(1, 1, 2))
    assert s.entities()[1]["potions"] == 3
    assert s.entities()[1]["gold"] == 0
    assert 2 not in s.entities()


def test_what_is_no_item(start):
    s = start(player(1, 5, 5), npc(2, 30, 30), player(3, 5, 6))
    _, effects = s.step(pick(1, 1, 99), pick(1, 2, 2), pick(1, 3, 3), pick(1, 4, 1))
    assert rejections(effects) == [(1, seq, "no_item") for seq in range(1, 5)]


def test_what_is_out_of_range(start):
    s = start(player(1, 5, 5), item(2, 7, 5), item(3, 5, 5, zone=2), zones=[ZONE, ZONE2])
    _, effects = s.step(pick(1, 1, 2), pick(1, 2, 3))
    assert rejections(effects) == [(1, 1, "out_of_range"), (1, 2, "out_of_range")]
    assert set(s.entities()) == {1, 2, 3}


def test_an_item_can_be_picked_up_once(start):
    s = start(player(1, 5, 5), player(2, 6, 5), item(3, 5, 6, gold=5))
    _, effects = s.step(pick(1, 1, 3), pick(2, 1, 3))
    assert rejections(effects) == [(2, 1, "no_item")]
    assert s.entities()[1]["gold"] == 5 and s.entities()[2]["gold"] == 0


def test_reason_precedence(start):
    s = start(player(1, 5, 5, online=0, hp=0, respawn_tick=90),
              player(2, 8, 8, hp=0, respawn_tick=90), player(3, 20, 20), item(4, 30, 30))
    _, effects = s.step(pick(1, 1, 99), pick(2, 1, 99), pick(3, 1, 99), pick(3, 2, 4))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead"), (3, 1, "no_item"),
                                   (3, 2, "out_of_range")]

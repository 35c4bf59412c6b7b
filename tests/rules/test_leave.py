"""leave: the player goes offline and keeps everything."""

from tests.rules.kit import cmd, rejections
from tests.support import player


def test_leave_sets_the_player_offline_and_nothing_else(start):
    s = start(player(1, 5, 6, gold=3, potions=2, hp=50))
    before = s.entities()[1]
    _, effects = s.step(cmd(1, 1, "leave"))
    assert rejections(effects) == []
    assert s.entities()[1] == {**before, "online": 0, "last_seq": 1}


def test_a_dead_player_may_leave(start):
    s = start(player(1, hp=0, respawn_tick=5))
    _, effects = s.step(cmd(1, 1, "leave"))
    assert rejections(effects) == []
    assert s.entities()[1]["online"] == 0


def test_leaving_when_offline_is_rejected(start):
    s = start(player(1, online=0))
    before = s.entities()[1]
    _, effects = s.step(cmd(1, 1, "leave"))
    assert rejections(effects) == [(1, 1, "offline")]
    assert s.entities()[1] == {**before, "last_seq": 1}

"""use: drink a potion, hp + 30 up to max_hp."""

from tests.rules.kit import cmd, reason, rejections
from tests.support import player


def test_a_potion_heals_30(start):
    s = start(player(1, hp=50, potions=2))
    _, effects = s.step(cmd(1, 1, "use"))
    assert reason(effects) is None
    p = s.entities()[1]
    assert (p["hp"], p["potions"]) == (80, 1)


def test_healing_stops_at_max_hp_and_the_potion_is_spent_anyway(start):
    s = start(player(1, hp=90, potions=2), player(2, 3, 3, potions=1))
    s.step(cmd(1, 1, "use"), cmd(2, 1, "use"))
    assert (s.entities()[1]["hp"], s.entities()[1]["potions"]) == (100, 1)
    assert (s.entities()[2]["hp"], s.entities()[2]["potions"]) == (100, 0)


def test_reasons_and_their_precedence(start):
    s = start(player(1, online=0, hp=0, respawn_tick=90), player(2, 5, 5, hp=0, respawn_tick=90),
              player(3, 9, 9, hp=10, potions=0), player(4, 9, 9, online=0, potions=3),
              player(5, 9, 9, hp=0, respawn_tick=90, potions=3))
    _, effects = s.step(cmd(1, 1, "use"), cmd(2, 1, "use"), cmd(3, 1, "use"), cmd(4, 1, "use"),
                        cmd(5, 1, "use"))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead"), (3, 1, "no_potion"),
                                   (4, 1, "offline"), (5, 1, "dead")]
    assert s.entities()[3]["hp"] == 10
    assert s.entities()[4]["potions"] == 3 and s.entities()[5]["potions"] == 3

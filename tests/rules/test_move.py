"""move: one step in -1..1 each way, clamped to the zone."""

import pytest

from tests.rules.kit import changed, cmd, reason, rejections
from tests.support import player

SMALL = dict(id=1, width=10, height=8, spawn_x=0, spawn_y=0)


def at(s, id):
    e = s.entities()[id]
    return e["x"], e["y"]


@pytest.mark.parametrize("dx,dy,to", [(1, 0, (6, 5)), (-1, -1, (4, 4)), (0, 1, (5, 6)), (1, -1, (6, 4))])
def test_a_step_moves_by_dx_dy(start, dx, dy, to):
    s = start(player(1, 5, 5))
    _, effects = s.step(cmd(1, 1, "move", dx=dx, dy=dy))
    assert reason(effects) is None
    assert at(s, 1) == to


@pytest.mark.parametrize("x,y,dx,dy,to", [
    (0, 3, -1, 0, (0, 3)), (9, 3, 1, 0, (9, 3)), (4, 0, 0, -1, (4, 0)), (4, 7, 0, 1, (4, 7)),
    (0, 0, -1, -1, (0, 0)), (9, 7, 1, 1, (9, 7)), (0, 4, -1, 1, (0, 5)),
])
def test_the_new_position_is_clamped_to_the_zone(start, x, y, dx, dy, to):
    s = start(player(1, x, y), zones=[SMALL])
    _, effects = s.step(cmd(1, 1, "move", dx=dx, dy=dy))
    assert reason(effects) is None
    assert at(s, 1) == to


def test_a_step_into_the_wall_or_of_zero_changes_only_last_seq(start):
    s = start(player(1, 0, 3), zones=[SMALL])
    before = s.entities()[1]
    result, effects = s.step(cmd(1, 1, "move", dx=-1, dy=0), cmd(1, 2, "move", dx=0, dy=0))
    assert rejections(effects) == []
    assert changed(result) == {1: {**before, "last_seq": 2}}


def test_several_moves_in_one_tick_all_apply(start):
    s = start(player(1, 5, 5))
    s.step(cmd(1, 1, "move", dx=1, dy=0), cmd(1, 2, "move", dx=1, dy=1))
    assert at(s, 1) == (7, 6)


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, -2), (-5, 1), (1, 9)])
def test_a_step_outside_minus_one_to_one_is_a_bad_step(start, dx, dy):
    s = start(player(1, 5, 5))
    _, effects = s.step(cmd(1, 1, "move", dx=dx, dy=dy))
    assert reason(effects) == "bad_step"
    assert at(s, 1) == (5, 5)


def test_offline_and_dead_players_cannot_move(start):
    s = start(player(1, 5, 5, online=0), player(2, 9, 9, hp=0, respawn_tick=50))
    _, effects = s.step(cmd(1, 1, "move", dx=1, dy=0), cmd(2, 1, "move", dx=1, dy=0))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead")]
    assert at(s, 1) == (5, 5) and at(s, 2) == (9, 9)


def test_reason_precedence(start):
    s = start(player(1, 5, 5, online=0, hp=0, respawn_tick=50), player(2, 9, 9, hp=0, respawn_tick=50))
    _, effects = s.step(cmd(1, 1, "move", dx=3, dy=0), cmd(2, 1, "move", dx=3, dy=0))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead")]

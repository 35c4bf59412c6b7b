"""transfer: bank gold between players, any distance, online or not; in the sender's zone at once
(another zone's one tick later: test_travel.py)."""

from tests.rules.kit import changed, cmd, reason, rejections
from tests.support import ZONE, npc, player

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)


def send(sender, seq, to, amount):
    return cmd(sender, seq, "transfer", to=to, amount=amount)


def test_gold_moves_from_the_sender_to_the_recipient(start):
    s = start(player(1, 1, 1, gold=50), player(2, 60, 60, gold=5))
    result, effects = s.step(send(1, 1, 2, 20))
    assert reason(effects) is None
    assert s.entities()[1]["gold"] == 30 and s.entities()[2]["gold"] == 25
    assert sorted(changed(result)) == [1, 2]


def test_the_recipient_may_be_offline_dead_or_in_another_zone(start):
    s = start(player(1, gold=50), player(2, 5, 5, online=0, hp=0, respawn_tick=90),
              player(3, 5, 5, zone=2, online=0, hp=0, respawn_tick=90), zones=[ZONE, ZONE2])
    _, effects = s.step(send(1, 1, 2, 30), send(1, 2, 3, 20))
    assert reason(effects) is None
    assert s.entities()[1]["gold"] == 0 and s.entities()[2]["gold"] == 30
    s.step()
    assert s.entities()[3]["gold"] == 20


def test_a_dead_sender_may_transfer(start):
    s = start(player(1, gold=9, hp=0, respawn_tick=90), player(2, 30, 30))
    _, effects = s.step(send(1, 1, 2, 9))
    assert reason(effects) is None
    assert s.entities()[2]["gold"] == 9


def test_what_is_no_target(start):
    # An id no entity holds is another zone's to judge: a credit, not no_target (test_travel.py).
    s = start(player(1, gold=50), npc(2, 40, 40))
    _, effects = s.step(send(1, 2, 2, 5), send(1, 3, 1, 5))
    assert rejections(effects) == [(1, 2, "no_target"), (1, 3, "no_target")]
    assert s.entities()[1]["gold"] == 50 and s.entities()[2]["gold"] == 0


def test_amounts_must_be_positive_and_covered(start):
    s = start(player(1, gold=50), player(2, 30, 30))
    _, effects = s.step(send(1, 1, 2, 0), send(1, 2, 2, -3), send(1, 3, 2, 51), send(1, 4, 2, 50))
    assert rejections(effects) == [(1, 1, "bad_amount"), (1, 2, "bad_amount"),
                                   (1, 3, "insufficient_funds")]
    assert s.entities()[1]["gold"] == 0 and s.entities()[2]["gold"] == 50


def test_reason_precedence(start):
    s = start(player(1, online=0, gold=0), player(2, 30, 30, gold=0), player(3, 20, 20))
    _, effects = s.step(send(1, 1, 1, -1),    # offline before no_target
                        send(2, 1, 2, -1),    # no_target before bad_amount
                        send(2, 2, 3, -1),    # bad_amount before insufficient_funds
                        send(2, 3, 3, 1))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "no_target"), (2, 2, "bad_amount"),
                                   (2, 3, "insufficient_funds")]

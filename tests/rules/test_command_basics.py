"""What every command shares: not_a_player and last_seq."""

import pytest

from tests.rules.kit import changed, cmd, rejections
from tests.support import item, npc, player

OPS_BUT_JOIN = [
    cmd(0, 4, "leave"),
    cmd(0, 4, "move", dx=1, dy=0),
    cmd(0, 4, "attack", target=1),
    cmd(0, 4, "pickup", item=3),
    cmd(0, 4, "use"),
    cmd(0, 4, "transfer", to=1, amount=1),
    cmd(0, 4, "say", text="hi"),
]


@pytest.mark.parametrize("command", OPS_BUT_JOIN, ids=lambda c: c["op"])
@pytest.mark.parametrize("issuer", [9, 2, 3], ids=["missing", "npc", "item"])
def test_every_op_but_join_needs_an_existing_player(start, command, issuer):
    s = start(player(1, 5, 5, gold=10, potions=1), npc(2, 30, 30), item(3, 5, 6), next_id=20)
    before = s.entities()
    result, effects = s.step({**command, "player": issuer})
    assert rejections(effects) == [(issuer, 4, "not_a_player")]
    assert s.entities() == before
    assert result.changed == b"" and result.removed == b"" and result.next_id == 20


def test_every_command_of_a_player_advances_last_seq_accepted_or_not(start):
    s = start(player(1, 5, 5, last_seq=2))
    result, effects = s.step(cmd(1, 3, "use"), cmd(1, 7, "move", dx=5, dy=0))
    assert rejections(effects) == [(1, 3, "no_potion"), (1, 7, "bad_step")]
    assert changed(result)[1]["last_seq"] == 7
    assert s.entities()[1]["last_seq"] == 7
    result, _ = s.step(cmd(1, 8, "move", dx=1, dy=0))
    assert changed(result)[1]["last_seq"] == 8

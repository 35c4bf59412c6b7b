"""Effects come in the order things happen, area-of-interest effects last."""

from tests.rules.kit import cmd, non_aoi, sightings
from tests.support import npc, player


def test_respawns_then_npc_deaths_then_commands_then_area_of_interest(start):
    s = start(player(1, 5, 5), player(6, 6, 5, hp=1),
              player(2, 60, 60, hp=0, respawn_tick=1),
              player(4, 20, 20, hp=3), npc(3, 21, 20))
    _, effects = s.step(cmd(1, 1, "use"), cmd(1, 2, "say", text="hi"), cmd(1, 3, "attack", target=6))
    assert [{k: v for k, v in e.items() if k != "tick"} for e in effects] == [
        {"type": "respawned", "entity": 2},
        {"type": "died", "entity": 4, "by": 3},
        {"type": "rejected", "player": 1, "seq": 1, "reason": "no_potion"},
        {"type": "chat", "from": 1, "text": "hi", "recipients": [1, 6]},
        {"type": "died", "entity": 6, "by": 1},
        {"type": "update", "observer": 1, "entity": 1},
        {"type": "update", "observer": 1, "entity": 6},
        {"type": "update", "observer": 2, "entity": 2},
        {"type": "update", "observer": 4, "entity": 3},
        {"type": "update", "observer": 4, "entity": 4},
        {"type": "update", "observer": 6, "entity": 1},
        {"type": "update", "observer": 6, "entity": 6},
    ]
    assert all(e["tick"] == 1 for e in effects)


def test_command_effects_follow_the_batch_order_not_the_player_order(start):
    s = start(player(1, 5, 5), player(2, 6, 6))
    _, effects = s.step(cmd(2, 1, "use"), cmd(1, 1, "say", text="a"), cmd(2, 2, "leave"),
                        cmd(1, 2, "use"), cmd(2, 3, "say", text="b"))
    assert non_aoi(effects) == [
        {"type": "rejected", "player": 2, "seq": 1, "reason": "no_potion"},
        {"type": "chat", "from": 1, "text": "a", "recipients": [1, 2]},
        {"type": "rejected", "player": 1, "seq": 2, "reason": "no_potion"},
        {"type": "rejected", "player": 2, "seq": 3, "reason": "offline"}]
    assert sightings(effects) == [("leave", 1, 2)]  # 1 changed only its last_seq

"""What a tick reports: tick, next_id, changed and removed."""

import pytest

from pipeline.view import WorldView
from tests.rules.kit import changed, cmd, removed
from tests.support import command_frame, item, npc, player, world
from vocabulary.errors import EngineError
from vocabulary.ids import zone_first_id
from vocabulary.records import pack_entity


def test_a_quiet_tick_reports_nothing_but_the_header(start):
    s = start(player(1, 5, 5), npc(2, 50, 50), item(3, 6, 6), tick=7, next_id=40)
    result, effects = s.step()
    assert (result.tick, result.next_id) == (8, 40)
    assert effects == []
    assert (result.effects, result.recipients, result.changed, result.removed, result.transit) == (b"",) * 5


def test_changed_holds_the_new_records_in_ascending_id_and_created_entities(start):
    s = start(player(7, 5, 5), player(3, 6, 5, hp=1, gold=2), player(5, 40, 40, gold=10), next_id=20)
    result, _ = s.step(cmd(7, 1, "attack", target=3), cmd(5, 1, "transfer", to=3, amount=4),
                       cmd(9, 1, "join", zone=1, name="nine"))
    after = s.entities()
    drop = zone_first_id(1)
    assert list(changed(result)) == [3, 5, 7, 9, drop]
    assert changed(result) == {id: after[id] for id in (3, 5, 7, 9, drop)}
    assert result.changed == b"".join(pack_entity(**after[id]) for id in (3, 5, 7, 9, drop))
    assert after[3]["gold"] == 4 and after[drop]["amount"] == 2


def test_removed_holds_the_removed_ids_ascending(start):
    s = start(player(1, 5, 5), item(9, 5, 6), item(4, 6, 6, gold=3), item(6, 7, 7))
    result, _ = s.step(cmd(1, 1, "pickup", item=9), cmd(1, 2, "pickup", item=4))
    assert removed(result) == [4, 9]
    assert list(changed(result)) == [1]


def test_a_rejected_command_changes_last_seq_and_so_the_record(start):
    s = start(player(1, 5, 5))
    before = s.entities()[1]
    result, _ = s.step(cmd(1, 1, "attack", target=99))
    assert changed(result) == {1: {**before, "last_seq": 1}}


def test_a_frame_for_the_wrong_tick_is_an_engine_error_and_the_view_restores_the_world(start):
    """docs/abi.md: after an engine error the caller restores the world with project(replace)."""
    w = world(player(1, 5, 5), tick=3)
    s = start(player(1, 5, 5), tick=3)
    before = bytes(s.engine.canonical())
    for tick in (3, 5, 0):
        frame, _ = command_frame(tick, [cmd(1, 1, "move", dx=1, dy=0)])
        with pytest.raises(EngineError, match=f"tick {tick}"):
            s.engine.transform(frame)
        s.engine.project(WorldView.from_world(w).frame())
        assert bytes(s.engine.canonical()) == before
    result, _ = s.step(cmd(1, 1, "move", dx=1, dy=0))
    assert result.tick == 4

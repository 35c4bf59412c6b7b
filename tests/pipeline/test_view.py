"""The view: apply keeps what changed beside the Map; settle folds it in; both read the same world."""

from __future__ import annotations

from pipeline.view import WorldView
from tests.support import item, player, world
from vocabulary.records import pack_entity
from vocabulary.types import TickResult


def result(tick: int, changed: list[dict], removed: list[int] = ()) -> TickResult:
    return TickResult(tick=tick, next_id=50, effects=b"", recipients=b"",
                      changed=b"".join(pack_entity(**e) for e in changed),
                      removed=b"".join(i.to_bytes(8, "little") for i in removed))


def test_applied_and_settled_views_read_the_same_world():
    before = WorldView.from_world(world(player(1, 5, 5), item(2, 5, 6), player(3, 8, 8), next_id=50))
    after = before.apply(result(1, [player(1, 6, 5, last_seq=4), player(9, 1, 1)], removed=[2]))
    after = after.apply(result(2, [player(3, 9, 9, last_seq=2)]))
    settled = after.settle()
    assert settled.recent == {} and after.recent        # apply left the Map alone
    for view in (after, settled):
        assert view.tick == 2 and view.last_seq(1) == 4 and view.last_seq(3) == 2
        assert 9 in view and 2 not in view and view.get(2) is None and len(view) == 3
        assert view.to_world() == settled.to_world()
    assert before.get(2) is not None and before.last_seq(1) == 0     # the view before is untouched
    assert settled.settle() is settled


def test_an_id_removed_then_created_again_is_the_new_record():
    view = WorldView.from_world(world(item(2, 5, 6), next_id=50))
    view = view.apply(result(1, [], removed=[2])).apply(result(2, [player(2, 1, 1, last_seq=7)]))
    assert view.last_seq(2) == 7 and view.settle().last_seq(2) == 7


def test_a_player_in_flight_keeps_its_last_seq():
    from schema._generated.layout import TransitKind
    from vocabulary.records import pack_transit

    flying = pack_entity(**player(4, 1, 1, zone=2, last_seq=8))
    in_flight = pack_transit(TransitKind.traveller, 1, to_id=4, record=flying)
    view = WorldView.from_world(world(player(1), transit=in_flight))
    assert view.last_seq(4) == 8 and 4 not in view
    assert view.apply(result(1, [player(4, 1, 1, zone=2, last_seq=9)])).last_seq(4) == 9

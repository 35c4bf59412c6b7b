"""The view's entity and online counts, kept per tick, always equal a count of the whole world."""

from __future__ import annotations

from pathlib import Path

from pipeline.engines.frames import COMMAND_FRAME
from pipeline.formats.batches import read_batches
from pipeline.formats.worldfile import load_world
from pipeline.view import WorldView
from tests.support import item, player, world
from vocabulary.records import pack_entity
from vocabulary.types import TickResult

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def counted(view: WorldView) -> tuple[int, int]:
    return view.entity_count, view.online_count


def from_scratch(view: WorldView) -> tuple[int, int]:
    return counted(WorldView.from_world(view.to_world()))


def test_counts_follow_every_tick_of_the_tiny_example(make_engine):
    """Joins, leaves, pickups (removals), deaths and respawns: the example has them all."""
    view = WorldView.from_world(load_world(EXAMPLES / "tiny.world.json"))
    engine = make_engine()
    engine.project(view.frame())
    online_seen = {view.online_count}
    batches = {b.tick: b for b in read_batches(EXAMPLES / "tiny.batches.jsonl", after_tick=0)}
    for tick in range(1, max(batches) + 1):
        batch = batches.get(tick)
        result = engine.transform(COMMAND_FRAME.encode({"tick": tick, "commands": batch.commands if batch else b"",
                                                        "text": batch.text if batch else b"",
                                                        "skip_area_of_interest": 1}))
        view = view.apply(result)
        assert counted(view) == from_scratch(view), tick
        view = view.settle()
        assert counted(view) == from_scratch(view) and view.entity_count == len(view)
        online_seen.add(view.online_count)
    assert len(online_seen) > 2


def test_results_without_previous_records_and_loaded_records_are_counted_too():
    view = WorldView.from_world(world(player(1), item(2), player(3, online=0), next_id=50))
    assert counted(view) == (3, 1)
    result = TickResult(tick=1, next_id=50, effects=b"", recipients=b"",
                        changed=pack_entity(**player(3)) + pack_entity(**player(9, online=0)),
                        removed=(2).to_bytes(8, "little"))
    view = view.apply(result)                  # player 3 came online, 9 is new, item 2 went
    assert counted(view) == (3, 2) == from_scratch(view)
    view = view.with_records(pack_entity(**player(60)) + pack_entity(**player(1, online=0)))
    assert counted(view) == (4, 2) == from_scratch(view)

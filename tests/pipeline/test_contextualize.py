"""Contextualize: what the view lacks is loaded, but never an entity a tick removed."""

from __future__ import annotations

import asyncio

from pipeline.context import TickContext
from pipeline.stages.contextualize import Contextualize
from pipeline.view import WorldView
from tests.support import item, player, world
from vocabulary.records import pack_commands, pack_entity
from vocabulary.types import Batch


class FakeStore:
    """Answers load_entities from a dict, and remembers what it was asked."""

    def __init__(self, rows: dict[int, bytes]) -> None:
        self.rows, self.asked = rows, []

    async def load_entities(self, ids: list[int]) -> bytes:
        self.asked.append(ids)
        return b"".join(self.rows[i] for i in sorted(ids) if i in self.rows)


def run(view: WorldView, store: FakeStore, *commands: dict) -> TickContext:
    packed, text = pack_commands(list(commands))
    ctx = TickContext(tick=view.tick + 1, batch=Batch(view.tick + 1, packed, text), view=view)
    return asyncio.run(Contextualize(store)(ctx))    # type: ignore[arg-type]


def test_an_entity_added_to_the_database_at_or_above_next_id_is_loaded():
    view = WorldView.from_world(world(player(1, 5, 5), next_id=10))
    newcomer = pack_entity(**item(12, 5, 6, gold=3))
    store = FakeStore({12: newcomer})
    ctx = run(view, store, {"player": 1, "seq": 1, "op": "pickup", "item": 12})
    assert store.asked == [[12]] and ctx.loaded == newcomer and 12 in ctx.view


def test_an_id_below_next_id_missing_from_the_view_was_removed_and_stays_removed():
    # Item 3 was picked up last tick; its commit may still be in flight, so its row is still there.
    view = WorldView.from_world(world(player(1, 5, 5), next_id=10))
    store = FakeStore({3: pack_entity(**item(3, 5, 6, gold=7))})
    ctx = run(view, store, {"player": 1, "seq": 1, "op": "pickup", "item": 3})
    assert store.asked == [] and ctx.loaded == b"" and 3 not in ctx.view


def test_an_id_a_zone_created_missing_from_the_view_was_removed_and_stays_removed():
    from vocabulary.ids import zone_first_id

    dropped = zone_first_id(1) + 3          # gold an npc dropped, picked up by the tick whose commit is in flight
    view = WorldView.from_world(world(player(1, 5, 5), next_id=10))
    store = FakeStore({dropped: pack_entity(**item(dropped, 5, 6, gold=9))})
    ctx = run(view, store, {"player": 1, "seq": 1, "op": "pickup", "item": dropped})
    assert store.asked == [] and ctx.loaded == b"" and dropped not in ctx.view

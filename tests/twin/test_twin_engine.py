"""White-box tests of the Python twin: its indexes, and rollback on failure.

The rules themselves are tested for both engines in tests/rules/.
"""

import random

import pytest

from pipeline.engines.twin import engine as twin_engine
from pipeline.engines.twin.engine import PythonEngine
from pipeline.engines.twin.world import World
from schema._generated.layout import Kind
from tests.rules.kit import cmd
from tests.rules.test_reference import ZONES, random_commands, random_world
from tests.support import Session, npc, player, world
from vocabulary.errors import EngineError


def assert_indexes_match_the_entities(w: World) -> None:
    visible = {id for id, e in w.entities.items() if e.visible}
    in_grid = {id for cell in w.grid._cells.values() for id in cell}
    assert in_grid == visible
    for id in visible:
        e = w.entities[id]
        assert e in w.grid.near(e.zone, e.x, e.y, 0)
    assert w.online == {id for id, e in w.entities.items() if e.kind == Kind.player and e.online}
    assert w.wounded == {id for id, e in w.entities.items()
                         if e.kind != Kind.item and e.living and e.hp < e.max_hp}
    assert all(e.record == e.pack() for e in w.entities.values())


@pytest.mark.parametrize("seed", range(4))
def test_indexes_follow_random_ticks(seed):
    rng = random.Random(seed)
    s = Session(PythonEngine(), world(*random_world(rng), zones=ZONES, next_id=30))
    seqs = {}
    for _ in range(40):
        s.step(*random_commands(rng, seqs, sorted(s.entities())))
        assert_indexes_match_the_entities(s.engine._world)
        assert s.engine._world.journal.keys() <= set(range(1, s.engine._world.next_id))


def test_a_failing_tick_leaves_the_world_as_it_was(monkeypatch):
    rng = random.Random(7)
    w = world(*random_world(rng), zones=ZONES, next_id=30)
    batches = [random_commands(rng, {}, list(range(1, 30))) for _ in range(15)]
    failing, reference = Session(PythonEngine(), w), Session(PythonEngine(), w)
    for batch in batches[:10]:
        failing.step(*batch)
        reference.step(*batch)

    def boom(*args):
        raise RuntimeError("injected")

    before = failing.engine.canonical()
    monkeypatch.setattr(twin_engine.World, "changes", boom)     # after every rule of the tick
    with pytest.raises(EngineError, match="injected"):
        failing.step(*batches[10], cmd(1, 99, "leave"))
    failing.tick -= 1
    monkeypatch.undo()
    assert failing.engine.canonical() == before
    assert_indexes_match_the_entities(failing.engine._world)
    for batch in batches[10:]:
        assert failing.step(*batch) == reference.step(*batch)
    assert failing.engine.canonical() == reference.engine.canonical()


def test_failing_sightings_cost_nothing_but_that_ticks_sightings(monkeypatch):
    rng = random.Random(8)
    w = world(*random_world(rng), zones=ZONES, next_id=30)
    batches = [random_commands(rng, {}, list(range(1, 30))) for _ in range(12)]
    failing, reference = Session(PythonEngine(), w), Session(PythonEngine(), w)
    for batch in batches[:6]:
        failing.step(*batch)
        reference.step(*batch)

    def boom(*args):
        raise RuntimeError("injected")

    monkeypatch.setattr(twin_engine, "area_of_interest", boom)
    with pytest.raises(EngineError, match="injected"):
        failing.step(*batches[6])
    monkeypatch.undo()
    reference.step(*batches[6])
    assert failing.engine.canonical() == reference.engine.canonical()   # the tick itself stands
    for batch in batches[7:]:
        assert failing.step(*batch) == reference.step(*batch)           # areas searched afresh


def test_a_respawn_popped_by_a_failing_tick_still_happens(monkeypatch):
    s = Session(PythonEngine(), world(player(1, 5, 5, hp=0, respawn_tick=1), npc(2, 40, 40)))
    monkeypatch.setattr(twin_engine, "npc_behaviour", lambda *args: 1 / 0)
    with pytest.raises(EngineError):
        s.step()
    s.tick -= 1
    monkeypatch.undo()
    _, effects = s.step()
    assert [e["type"] for e in effects] == ["respawned", "update", "enter"]  # the npc comes into view
    assert s.entities()[1]["hp"] == 100

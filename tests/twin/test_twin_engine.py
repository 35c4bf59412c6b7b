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
from vocabulary.ids import zone_first_id


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
        w = s.engine._world
        assert_indexes_match_the_entities(w)
        assert all(id < w.next_id or any(zone_first_id(z) <= id < w.zones[z].next_id for z in w.zones)
                   for id in w.journal), "the journal holds only ids joins or zones gave out"


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


def test_a_failing_tick_restores_what_was_in_flight_and_the_zones_next_id(monkeypatch):
    zones = [dict(id=1, width=16, height=16, spawn_x=1, spawn_y=1),
             dict(id=2, width=16, height=16, spawn_x=2, spawn_y=2)]
    w = world(player(1, 5, 5, gold=20), player(2, 6, 5), npc(3, 5, 6, hp=1, gold=4, next_action_tick=99),
              player(4, 3, 3, zone=2), zones=zones)
    failing, reference = Session(PythonEngine(), w), Session(PythonEngine(), w)
    first = [cmd(2, 1, "travel", zone=2), cmd(1, 1, "transfer", to=4, amount=5)]
    failing.step(*first)
    reference.step(*first)
    second = [cmd(1, 2, "attack", target=3), cmd(1, 3, "travel", zone=2), cmd(4, 1, "transfer", to=1, amount=1)]

    def boom(*args):
        raise RuntimeError("injected")

    before = failing.engine.canonical()
    monkeypatch.setattr(twin_engine.World, "changes", boom)
    with pytest.raises(EngineError, match="injected"):
        failing.step(*second)
    failing.tick -= 1
    monkeypatch.undo()
    assert failing.engine.canonical() == before
    assert_indexes_match_the_entities(failing.engine._world)
    assert failing.step(*second) == reference.step(*second)
    assert failing.engine.canonical() == reference.engine.canonical()

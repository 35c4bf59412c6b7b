"""The wasmtime host against the real compiled module: limits, traps, rollback, cache, swap."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import wasmtime

from pipeline.context import TickContext
from pipeline.engines.enginethread import EngineThread
from pipeline.engines.frames import COMMAND_FRAME, WORLD_FRAME, arrivals_frame
from pipeline.engines.wasm import wasmtime_host
from pipeline.engines.wasm.registry import ModuleRegistry, default_module_path
from pipeline.engines.wasm.wasmtime_host import WasmEngine, capabilities, compile_module, config_key
from pipeline.stages.transform import Transform
from pipeline.view import WorldView
from tests.support import Session, command_frame, npc, player, world
from vocabulary.errors import EngineError, ReducerTrap
from vocabulary.hashing import canonical_bytes
from vocabulary.records import pack_commands, pack_entity
from vocabulary.types import Batch


def crowded_world():
    return world(player(1, 5, 5, gold=30), player(2, 6, 5), npc(3, 7, 7), npc(4, 30, 30))


def test_capabilities_are_reported():
    caps = capabilities()
    assert set(caps) == {"simd", "threads", "bulk_memory"}
    assert all(isinstance(v, bool) for v in caps.values())


def test_canonical_of_a_loaded_world_is_the_reference_encoding():
    w = crowded_world()
    s = Session(WasmEngine(), w)
    assert bytes(s.engine.canonical()) == canonical_bytes(w)


def test_exhausted_fuel_names_the_tick_and_leaves_the_world_unchanged():
    w = crowded_world()
    engine = WasmEngine()
    engine.project(WorldView.from_world(w).frame())
    before = hashlib.sha256(engine.canonical()).hexdigest()
    packed, text = pack_commands([{"player": 1, "seq": 1, "op": "move", "dx": 1, "dy": 0}])
    ctx = TickContext(tick=1, batch=Batch(1, packed, text), view=WorldView.from_world(w))
    budget = engine.fuel["transform"]
    frame = COMMAND_FRAME.encode({"tick": 1, "commands": packed, "text": text})   # what the stage sends
    frame_share = wasmtime_host.FUEL_PER_64_BYTES * (len(frame) // 64)
    engine.fuel["transform"] = 10 - frame_share - engine.world_fuel    # ten instructions in all: never enough
    with pytest.raises(ReducerTrap, match=r"tick 1: transform trapped: .*fuel"):
        asyncio.run(Transform(EngineThread(engine))(ctx))
    engine.fuel["transform"] = budget
    assert hashlib.sha256(engine.canonical()).hexdigest() == before
    ctx = asyncio.run(Transform(EngineThread(engine))(ctx))           # the same tick now runs normally
    assert ctx.result is not None and ctx.result.tick == 1


def test_fuel_follows_the_world_last_replaced_not_a_smaller_frame_since():
    engine = WasmEngine()
    frame = WorldView.from_world(world(*(npc(i, i % 60, i // 60) for i in range(1, 400)))).frame()
    engine.project(frame)
    sized = engine.world_fuel
    assert sized == wasmtime_host.FUEL_PER_64_BYTES * (len(frame) // 64) > 0
    engine.project(arrivals_frame(b""))                                # what is in flight, replaced
    engine.project(WORLD_FRAME.encode({"replace": 0, "entities": pack_entity(**player(500, 1, 1))}))   # an upsert
    assert engine.world_fuel == sized
    engine.project(WorldView.from_world(crowded_world()).frame())     # a smaller world, loaded anew
    assert engine.world_fuel < sized


def test_a_frame_for_the_wrong_tick_traps_with_the_modules_message():
    engine = WasmEngine()
    engine.project(WorldView.from_world(crowded_world()).frame())
    frame, _ = command_frame(5, [])
    with pytest.raises(ReducerTrap, match="tick 5: transform trapped"):
        engine.transform(frame)


def test_memory_limit_stops_a_runaway_world(monkeypatch):
    monkeypatch.setattr(wasmtime_host, "MEMORY_LIMIT", 4 << 20)
    engine = WasmEngine()
    big = world(*(player(i, i % 60, (i // 60) % 60, online=0) for i in range(1, 60_001)))
    with pytest.raises(ReducerTrap, match="project trapped"):
        engine.project(WorldView.from_world(big).frame())


def test_precompiled_cache_is_keyed_by_module_wasmtime_and_settings(tmp_path):
    first = compile_module(default_module_path(), tmp_path)
    cached = list(tmp_path.glob("*.cwasm"))
    assert len(cached) == 1 and first.version in cached[0].name and config_key() in cached[0].name
    again = compile_module(default_module_path(), tmp_path)   # loads the artifact
    assert again.version == first.version
    Session(WasmEngine(again), crowded_world()).step()


def test_a_module_without_the_abi_is_refused(tmp_path):
    path = tmp_path / "other.wasm"
    path.write_bytes(wasmtime.wat2wasm("(module (func (export \"nothing\")))"))
    with pytest.raises(EngineError, match="missing exports"):
        compile_module(path, None)


def test_modules_swap_between_ticks_without_changing_results(tmp_path):
    # A second module: the same code with a custom section, so a different version.
    other = tmp_path / "reducers-b.wasm"
    other.write_bytes(default_module_path().read_bytes() + b"\x00\x06\x05fluxb")
    registry = ModuleRegistry(cache_dir=None)
    a, b = registry.load(default_module_path()), registry.swap(other)
    assert a.version != b.version and registry.current() is b and registry.versions() == sorted([a.version, b.version])

    w = crowded_world()
    straight = Session(WasmEngine(a), w)
    swapped = Session(WasmEngine(a), w)
    view = WorldView.from_world(w)
    moves = [{"player": 1, "seq": n, "op": "move", "dx": 1, "dy": 1} for n in range(1, 4)]
    for n, move in enumerate(moves, start=1):
        expected, _ = straight.step(move)
        got, _ = swapped.step(move)
        assert got == expected
        view = view.apply(got)
        if n == 1:
            swapped.engine.swap(b)
            swapped.engine.project(view.frame())
            assert swapped.engine.version == b.version
    assert bytes(straight.engine.canonical()) == bytes(swapped.engine.canonical())

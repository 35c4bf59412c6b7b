"""The WASM engine: the only module that imports wasmtime.

One call per stage per tick (docs/abi.md): `project` and `transform` each
write one frame into the module's input area and make one call; results are
copied out of linear memory in bulk. Every call runs under a fuel budget and
a memory limit. A trap (a bug in the module, or fuel exhausted) discards the
instance: the engine comes back empty and the caller restores the world from
its view with project(replace) (pipeline/stages/transform.py does).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import wasmtime

from schema._generated.layout import EFFECT_SIZE
from vocabulary.errors import EngineError, ReducerTrap
from vocabulary.types import TickResult

from ..frames import COMMAND_FRAME, TICK_RESULT, WORLD_FRAME, FrameError, TableCodec
from . import abi
from .memory import LinearMemory

log = logging.getLogger(__name__)

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

# Every setting that changes compiled code is here, so the precompiled cache
# key (config_key) changes with it. Fuel makes every call bounded;
# memory_may_move=False keeps views of linear memory valid across growth.
ENGINE_SETTINGS: dict[str, Any] = {
    "consume_fuel": True,
    "memory_may_move": False,
    "cranelift_opt_level": "speed",
}

# A bound on runaway reducers, not a budget to plan by: a command (64 bytes
# of frame) may cost 200k instructions, about a tenth of a millisecond; a
# 10,000-command tick with its area-of-interest work uses about a fifth.
FUEL_BASE = 500_000_000
FUEL_PER_64_BYTES = 200_000
MEMORY_LIMIT = 2 << 30           # bytes of linear memory an instance may hold


def config_key() -> str:
    """Names the wasmtime version and engine settings a precompiled module needs."""
    settings = ",".join(f"{k}={v}" for k, v in sorted(ENGINE_SETTINGS.items()))
    return f"wasmtime{WASMTIME_VERSION}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


@lru_cache(maxsize=1)
def shared_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


_PROBES = {
    "simd": "(module (func (result v128) v128.const i32x4 0 0 0 0))",
    "threads": "(module (memory 1 1 shared))",
    "bulk_memory": "(module (memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))",
}


@lru_cache(maxsize=1)
def capabilities() -> dict[str, bool]:
    """Which WASM proposals this engine's configuration accepts, by compiling a probe of each."""
    found = {}
    for name, wat in _PROBES.items():
        try:
            wasmtime.Module(shared_engine(), bytes(wasmtime.wat2wasm(wat)))
            found[name] = True
        except wasmtime.WasmtimeError:
            found[name] = False
    return found


@dataclass(frozen=True)
class CompiledModule:
    """A compiled reducer module and the version that names it."""

    module: wasmtime.Module
    version: str           # sha256 of the .wasm bytes, first 16 hex digits
    source: Path


def module_version(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()[:16]


def compile_module(wasm_path: Path, cache_dir: Path | None) -> CompiledModule:
    """Compile, or load the precompiled artifact keyed by module, wasmtime version and settings."""
    wasm = wasm_path.read_bytes()
    version = module_version(wasm)
    cached = cache_dir / f"reducers-{version}-{config_key()}.cwasm" if cache_dir else None
    if cached is not None and cached.exists():
        module = wasmtime.Module.deserialize_file(shared_engine(), str(cached))
    else:
        module = wasmtime.Module(shared_engine(), wasm)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_bytes(module.serialize())
            tmp.replace(cached)
    _check_exports(module, wasm_path)
    return CompiledModule(module, version, wasm_path)


def _check_exports(module: wasmtime.Module, path: Path) -> None:
    names = {e.name for e in module.exports}
    missing = [n for n in abi.REQUIRED_EXPORTS if n not in names]
    if missing:
        raise EngineError(0, f"{path}: not a fluxworld reducer module (missing exports {', '.join(missing)})")


class _Instance:
    """One instantiation: a store, its exports and its memory."""

    def __init__(self, compiled: CompiledModule) -> None:
        self.store = wasmtime.Store(shared_engine())
        self.store.set_limits(memory_size=MEMORY_LIMIT)
        self.abort_message = ""
        abort_type = wasmtime.FuncType([wasmtime.ValType.i32()] * 4, [])
        abort = wasmtime.Func(self.store, abort_type, self._abort)
        instance = wasmtime.Instance(self.store, compiled.module, [abort])
        exports = instance.exports(self.store)
        self.fn: dict[str, wasmtime.Func] = {}
        for name in abi.REQUIRED_EXPORTS:
            export = exports[name]
            if name != abi.MEMORY and isinstance(export, wasmtime.Func):
                self.fn[name] = export
        memory = exports[abi.MEMORY]
        if not isinstance(memory, wasmtime.Memory) or len(self.fn) != len(abi.REQUIRED_EXPORTS) - 1:
            raise EngineError(0, f"{compiled.source}: exports are not of the ABI's kinds (docs/abi.md)")
        self.memory = LinearMemory(
            lambda: _address(memory.data_ptr(self.store)), lambda: memory.data_len(self.store))
        self.input_address, self.input_capacity = 0, 0
        version = self.call(abi.ABI_VERSION_EXPORT)
        if version != abi.ABI_VERSION:
            raise EngineError(0, f"module speaks ABI {version}, this host speaks {abi.ABI_VERSION}")

    def _abort(self, message: int, file: int, line: int, column: int) -> None:
        self.abort_message = (f"{self.memory.utf16(message)} at {self.memory.utf16(file)}:{line}:{column}")

    def call(self, name: str, *args: int, fuel: int = FUEL_BASE) -> int:
        self.store.set_fuel(fuel)
        result = self.fn[name](self.store, *args)
        return int(result) if result is not None else 0

    def write_input(self, frame: bytes) -> int:
        if len(frame) > self.input_capacity:
            capacity = max(len(frame), 2 * self.input_capacity, 1 << 16)
            self.input_address = self.call(abi.INPUT, capacity)
            self.input_capacity = capacity
        self.memory.write(self.input_address, frame)
        return self.input_address


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


class WasmEngine:
    """The Rules protocol (pipeline/engines/engine.py) over the compiled AssemblyScript reducers."""

    name = "wasm"

    def __init__(self, compiled: CompiledModule | None = None) -> None:
        if compiled is None:
            from .registry import default_registry
            compiled = default_registry().current()
        self.compiled = compiled
        self._instance = _Instance(compiled)
        # Fuel per call, by export; a frame adds FUEL_PER_64_BYTES per 64 bytes, and a tick's
        # calls as much again for the world last projected: their work grows with the world
        # (npcs act, observers look around), so no valid tick runs out however large it is.
        self.fuel = {abi.PROJECT: FUEL_BASE, abi.TRANSFORM: FUEL_BASE, abi.SIGHTINGS: FUEL_BASE,
                     abi.CANONICAL: 4 * FUEL_BASE}
        self.world_fuel = 0

    @property
    def version(self) -> str:
        return self.compiled.version

    def swap(self, compiled: CompiledModule) -> None:
        """Use another module from now on; the world must be projected again (replace)."""
        self.compiled = compiled
        self._instance = _Instance(compiled)

    def project(self, frame: bytes) -> None:
        self._guarded(abi.PROJECT, frame, WORLD_FRAME)
        share = FUEL_PER_64_BYTES * (len(frame) // 64)
        # A frame that replaces the world sizes it; one that only upserts or replaces what is
        # in flight (a few records) never shrinks what the world last projected was given.
        self.world_fuel = share if WORLD_FRAME.decode(frame)["replace"] else max(self.world_fuel, share)

    def transform(self, frame: bytes) -> TickResult:
        address = self._guarded(abi.TRANSFORM, frame, COMMAND_FRAME, self.world_fuel)
        inst = self._instance
        try:
            size = inst.memory.u32(address)
            data = inst.memory.read(address + 4, size)
            fields = TICK_RESULT.decode(data)
        except (FrameError, EngineError) as exc:
            self._reset()
            raise ReducerTrap(_frame_tick(frame, COMMAND_FRAME), f"unreadable TickResult: {exc}") from None
        return TickResult(
            tick=fields["tick"], next_id=fields["next_id"], effects=bytes(fields["effects"]),
            recipients=bytes(fields["recipients"]), changed=bytes(fields["changed"]),
            removed=bytes(fields["removed"]), previous=bytes(fields["previous"]), zones=bytes(fields["zones"]),
            transit=bytes(fields["transit"]))

    def sightings(self) -> bytes:
        fuel = self.fuel[abi.SIGHTINGS] + self.world_fuel
        address = self._trapping(abi.SIGHTINGS, lambda: -1, lambda inst: inst.call(abi.SIGHTINGS, fuel=fuel))
        count = self._instance.memory.u32(address)
        return self._instance.memory.read(address + 4, count * EFFECT_SIZE)

    def canonical(self) -> memoryview:
        address = self._trapping(abi.CANONICAL, lambda: -1,
                                 lambda inst: inst.call(abi.CANONICAL, fuel=self.fuel[abi.CANONICAL]))
        return self._instance.memory.size_prefixed(address)

    def _guarded(self, export: str, frame: bytes, codec: TableCodec, extra: int = 0) -> int:
        fuel = self.fuel[export] + FUEL_PER_64_BYTES * (len(frame) // 64) + extra

        def call(inst: _Instance) -> int:
            address = inst.write_input(frame)
            return inst.call(export, address, len(frame), fuel=fuel)

        return self._trapping(export, lambda: _frame_tick(frame, codec), call)

    def _trapping(self, export: str, tick: Callable[[], int], call: Callable[[_Instance], int]) -> int:
        inst = self._instance
        try:
            return call(inst)
        except wasmtime.Trap as trap:
            reason = inst.abort_message or _trap_reason(str(trap))
            self._reset()
            raise ReducerTrap(tick(), f"{export} trapped: {reason} (module {self.version})") from None

    def _reset(self) -> None:
        """Throw the instance away; the world is empty until the next project(replace)."""
        self._instance = _Instance(self.compiled)


def _trap_reason(text: str) -> str:
    for line in text.splitlines():
        if "wasm trap:" in line:
            return line.split("wasm trap:", 1)[1].strip()
    return text.strip().splitlines()[-1] if text.strip() else "trap"


def _frame_tick(frame: bytes, codec: TableCodec) -> int:
    """The tick a frame is for, read only when an error needs to name it."""
    try:
        return int(codec.decode(frame)["tick"])
    except FrameError:
        return -1

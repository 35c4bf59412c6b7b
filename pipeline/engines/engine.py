"""The Rules protocol both engines satisfy, and choosing one by name.

docs/abi.md describes the three operations. An engine holds the resident
world; the pipeline feeds it frames and keeps the authoritative view.
"""

from __future__ import annotations

import os
from typing import Protocol

from vocabulary.types import TickResult

ENGINES = ("wasm", "python")
ENV_VAR = "FLUXWORLD_ENGINE"


class Rules(Protocol):
    name: str

    def project(self, frame: bytes) -> None:
        """Materialize a WorldFrame: replace the world, or upsert entities."""

    def transform(self, frame: bytes) -> TickResult:
        """Run one tick of a CommandFrame. Unless the frame skips them, its
        area-of-interest effects are not in the result: sightings() gives them."""

    def sightings(self) -> bytes:
        """The area-of-interest effects (packed Effect structs, sorted) of the
        tick transform just ran; ends that tick. Not called, they are lost."""

    def canonical(self) -> bytes | memoryview:
        """The canonical world encoding the world hash is taken over."""


def default_engine() -> str:
    name = os.environ.get(ENV_VAR, "wasm")
    if name not in ENGINES:
        raise ValueError(f"{ENV_VAR}={name!r}: expected one of {', '.join(ENGINES)}")
    return name


def create_engine(name: str | None = None) -> Rules:
    name = name or default_engine()
    if name == "python":
        from .twin.engine import PythonEngine
        return PythonEngine()
    if name == "wasm":
        from .wasm.wasmtime_host import WasmEngine
        return WasmEngine()
    raise ValueError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")

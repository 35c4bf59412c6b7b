"""Which reducer module is loaded, by version, and where modules come from.

The registry compiles (or loads precompiled) modules and knows the current
one. Swapping is between ticks: a WasmEngine given a new module re-projects
the world from the Python view (pipeline/simulation.py does this).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from vocabulary.errors import BuildError

from .wasmtime_host import WASMTIME_VERSION, CompiledModule, capabilities, compile_module

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_DIR = REPO_ROOT / "reducers_as" / "build"
MODULE_ENV = "FLUXWORLD_MODULE"


def default_module_path() -> Path:
    return Path(os.environ.get(MODULE_ENV, BUILD_DIR / "reducers.wasm"))


class ModuleRegistry:
    def __init__(self, cache_dir: Path | None = BUILD_DIR / "cache") -> None:
        self.cache_dir = cache_dir
        self._modules: dict[str, CompiledModule] = {}
        self._current: CompiledModule | None = None

    def load(self, path: Path) -> CompiledModule:
        """Compile (or fetch from the precompiled cache) the module at `path` and register it."""
        if not path.exists():
            raise BuildError(f"{path}: no reducer module; run `fluxworld build` first")
        compiled = compile_module(path, self.cache_dir)
        if compiled.version not in self._modules:
            caps = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in capabilities().items())
            log.info("reducer module %s from %s on wasmtime %s (%s)", compiled.version, path, WASMTIME_VERSION, caps)
        self._modules.setdefault(compiled.version, compiled)
        return self._modules[compiled.version]

    def current(self) -> CompiledModule:
        if self._current is None:
            self._current = self.load(default_module_path())
        return self._current

    def swap(self, path: Path) -> CompiledModule:
        """Make the module at `path` current; engines pick it up at their next swap."""
        self._current = self.load(path)
        return self._current

    def versions(self) -> list[str]:
        return sorted(self._modules)


@lru_cache(maxsize=1)
def default_registry() -> ModuleRegistry:
    return ModuleRegistry()

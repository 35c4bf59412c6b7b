"""`fluxworld build`: generated code, the AssemblyScript module, its precompiled cache.

Each step is skipped when its inputs have not changed since it last ran
(a content hash of the inputs is kept beside the output), so a build with
nothing to do costs a few milliseconds plus one flatc run for the stale check.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from schema import generate
from vocabulary.errors import BuildError

from .registry import BUILD_DIR, REPO_ROOT, default_module_path, default_registry

AS_DIR = REPO_ROOT / "reducers_as"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(REPO_ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _fresh(stamp: Path, digest: str, output: Path) -> bool:
    return output.exists() and stamp.exists() and stamp.read_text() == digest


def _run(cmd: list[str], cwd: Path) -> None:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise BuildError(f"{cmd[0]} not found: install Node.js 20+ and npm")
    done = subprocess.run([exe, *cmd[1:]], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed in {cwd}:\n{done.stdout}{done.stderr}")


def build(say: Callable[[str], None] = print, force: bool = False) -> Path:
    started = time.perf_counter()
    BUILD_DIR.mkdir(parents=True, exist_ok=True)

    changed = generate.write() if generate.stale() else []
    say(f"schema: {'regenerated ' + str(len(changed)) + ' files' if changed else 'up to date'}")

    lock = AS_DIR / "package-lock.json"
    npm_stamp = AS_DIR / "node_modules" / ".fluxworld-stamp"
    npm_digest = _digest([lock, AS_DIR / "package.json"])
    if force or not _fresh(npm_stamp, npm_digest, AS_DIR / "node_modules" / ".bin" / "asc"):
        say("npm: installing pinned packages (npm ci)")
        _run(["npm", "ci", "--no-audit", "--no-fund"], AS_DIR)
        npm_stamp.write_text(npm_digest)
    else:
        say("npm: up to date")

    wasm = BUILD_DIR / "reducers.wasm"
    sources = [*sorted((AS_DIR / "assembly").rglob("*.ts")), AS_DIR / "asconfig.json", lock]
    wasm_stamp = BUILD_DIR / "reducers.stamp"
    wasm_digest = _digest(sources)
    if force or not _fresh(wasm_stamp, wasm_digest, wasm):
        say("asc: compiling reducers (release, -O3)")
        _run(["npx", "asc", "assembly/index.ts", "--target", "release"], AS_DIR)
        wasm_stamp.write_text(wasm_digest)
    else:
        say("asc: up to date")

    compiled = default_registry().load(default_module_path())
    say(f"module {compiled.version}: {wasm.stat().st_size} bytes, precompiled cache ready")
    say(f"build done in {time.perf_counter() - started:.2f} s")
    return wasm

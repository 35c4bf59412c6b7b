"""Static checks run as ordinary tests, so CI fails on them like on any other."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_passes():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "vocabulary", "pipeline", "schema", "tests",
                           "loadtest", "persistence"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_vocabulary_is_the_floor_and_persistence_stands_beside_pipeline():
    """vocabulary/ imports nothing of fluxworld above it; persistence/ none of the pipeline's
    running parts (only the public file formats, for its CLI and the world hash of a loaded file)."""
    import ast

    def imported(path: Path) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names

    floor = {m for p in (ROOT / "vocabulary").glob("*.py") for m in imported(p)}
    assert not {m for m in floor if m.split(".")[0] in ("pipeline", "persistence", "loadtest")}
    beside = {m for p in (ROOT / "persistence").rglob("*.py") for m in imported(p) if m.startswith("pipeline")}
    assert beside <= {"pipeline.formats.worldfile", "pipeline.formats.batches"}, beside

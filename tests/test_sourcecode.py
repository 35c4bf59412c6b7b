"""Static checks run as ordinary tests, so CI fails on them like on any other."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_passes():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "pipeline", "schema", "tests", "loadtest",
                           "persistence"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

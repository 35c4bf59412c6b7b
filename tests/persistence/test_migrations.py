"""Alembic migrations build exactly the tables persistence/fragments.py describes."""

from __future__ import annotations

import pytest

from persistence.errors import SchemaNotCurrent
from persistence.fragments import COLUMN_TYPES, FRAGMENTS
from persistence.migrator import migrate, require_current, status

COLUMNS_SQL = """
    SELECT column_name, data_type, is_nullable FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position
"""
EXTRA_TABLES = {
    "player_account": [("jid", "text"), ("entity_id", "bigint")],
    "zone": [("id", "bigint"), ("width", "integer"), ("height", "integer"), ("spawn_x", "integer"),
             ("spawn_y", "integer"), ("next_id", "bigint")],
    "world": [("singleton", "boolean"), ("seed", "bigint"), ("tick", "bigint"), ("next_id", "bigint"),
              ("world_hash", "bytea"), ("fence", "bigint"), ("transit", "bytea"), ("lease_holder", "text"),
              ("lease_until", "timestamp with time zone")],
    "command_log": [("tick", "bigint"), ("commands", "bytea"), ("text", "bytea"), ("world_hash", "bytea"),
                    ("committed_at", "timestamp with time zone"), ("sent", "bytea"), ("arrivals", "bytea"),
                    ("zone_hash", "bytea")],
    "world_snapshot": [("tick", "bigint"), ("world", "bytea"), ("world_hash", "bytea"),
                       ("taken_at", "timestamp with time zone")],
    "player_registry": [("id", "bigint"), ("tick", "bigint")],
    "zone_group": [("name", "text"), ("zones", "ARRAY"), ("database", "text")],
}


async def test_a_new_database_has_the_first_revision_pending(fresh_dsn):
    state = await status(fresh_dsn)
    assert (state.current, state.pending) == (None, ("0001", "0002", "0003", "0004", "0005", "0006", "0007"))
    with pytest.raises(SchemaNotCurrent, match="db migrate"):
        await require_current(fresh_dsn)


async def test_migrate_reaches_head_and_is_idempotent(fresh_dsn):
    first = await migrate(fresh_dsn)
    assert first.up_to_date and first.current == first.head == "0007"
    assert await migrate(fresh_dsn) == first


async def test_fragment_tables_match_fragments_py(migrated_dsn, run_sql):
    for fragment in FRAGMENTS:
        rows = run_sql(migrated_dsn, COLUMNS_SQL, fragment.table)
        assert [(r["column_name"], r["data_type"]) for r in rows] == \
            [(c, COLUMN_TYPES[c]) for c in fragment.columns], fragment.table
        assert {r["is_nullable"] for r in rows} == {"NO"}


async def test_the_other_tables(migrated_dsn, run_sql):
    for table, columns in EXTRA_TABLES.items():
        rows = run_sql(migrated_dsn, COLUMNS_SQL, table)
        assert [(r["column_name"], r["data_type"]) for r in rows] == columns, table
    tables = {r["table_name"] for r in run_sql(
        migrated_dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert tables == {f.table for f in FRAGMENTS} | set(EXTRA_TABLES) | {"alembic_version"}


async def test_fragments_reference_identity_deferred_with_cascade(migrated_dsn, run_sql):
    rows = run_sql(migrated_dsn, """
        SELECT conrelid::regclass::text AS source, confrelid::regclass::text AS target,
               confdeltype::text AS confdeltype, condeferrable, condeferred
        FROM pg_constraint WHERE contype = 'f'""")
    found = {r["source"]: (r["target"], r["confdeltype"], r["condeferrable"], r["condeferred"]) for r in rows}
    expected = {f.table: ("entity_identity", "c", True, True) for f in FRAGMENTS if f.table != "entity_identity"}
    assert found == expected


async def test_world_holds_one_row_at_most(migrated_dsn, run_sql):
    insert = "INSERT INTO world (singleton, seed, tick, next_id, world_hash) VALUES ($1, 1, 0, 1, '')"
    run_sql(migrated_dsn, insert, True)
    with pytest.raises(Exception, match="world_singleton"):
        run_sql(migrated_dsn, insert, False)
    with pytest.raises(Exception, match="duplicate key"):
        run_sql(migrated_dsn, insert, True)

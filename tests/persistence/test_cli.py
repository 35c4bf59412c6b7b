"""`fluxworld db|world|log ...` through click, against the test cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from persistence.database import EMBEDDED_DATABASE
from persistence.embedded import pgdata_dir
from pipeline.formats.worldfile import load_world, world_json
from tests.persistence.test_log import cli
from vocabulary.hashing import world_hash

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.world.json"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_init_then_status_on_a_dsn(fresh_dsn):
    result = run("db", "init", "--db", fresh_dsn)
    assert result.exit_code == 0, result.output
    assert ("schema at revision 0007 (head); migrations applied: 0001, 0002, 0003, 0004, 0005, 0006, 0007"
            in result.stdout)
    result = run("db", "status", "--db", fresh_dsn)
    assert result.exit_code == 0, result.output
    assert "schema: revision 0007 (head 0007, up to date)" in result.stdout
    assert "world: none stored" in result.stdout and "log: 0 rows" in result.stdout
    result = run("db", "migrate", "--db", fresh_dsn)
    assert result.exit_code == 0 and "migrations applied: none" in result.stdout


def test_status_of_an_unmigrated_database(fresh_dsn):
    result = run("db", "status", "--db", fresh_dsn)
    assert result.exit_code == 0, result.output
    assert "schema: revision none (head 0007, 7 pending: 0001, 0002, 0003, 0004, 0005, 0006, 0007)" in result.stdout


def test_embedded_is_the_default(pg_server, run_sql):
    result = run("db", "init")
    assert result.exit_code == 0, result.output
    assert f"data directory: {pgdata_dir()}" in result.stdout
    result = run("world", "load", str(TINY), "--replace")
    assert result.exit_code == 0, result.output
    result = run("db", "status")
    assert result.exit_code == 0, result.output
    assert f"world: tick 0, hash {world_hash(load_world(TINY))}" in result.stdout
    assert f"/{EMBEDDED_DATABASE}?" in result.stdout
    # the test's cluster is still up: a CLI run stops only what it started
    assert run_sql(pg_server.uri("postgres"), "SELECT 1 AS one")[0]["one"] == 1


def test_world_load_and_dump(migrated_dsn, tmp_path):
    world = load_world(TINY)
    result = run("world", "load", str(TINY), "--db", migrated_dsn)
    assert result.exit_code == 0, result.output
    assert f"hash {world_hash(world)}" in result.stdout
    result = run("world", "load", str(TINY), "--db", migrated_dsn)
    assert result.exit_code == 1
    assert "already stored" in result.stderr and "--replace" in result.stderr
    assert run("world", "load", str(TINY), "--replace", "--db", migrated_dsn).exit_code == 0
    out = tmp_path / "dumped.world.json"
    result = run("world", "dump", str(out), "--db", migrated_dsn)
    assert result.exit_code == 0, result.output
    assert out.read_text() == world_json(world)
    result = run("db", "status", "--db", migrated_dsn)
    assert f"world: tick 0, hash {world_hash(world)}" in result.stdout


def test_a_bad_world_file_is_bad_input(migrated_dsn, tmp_path):
    bad = tmp_path / "bad.world.json"
    bad.write_text('{"format": "fluxworld.world/1",\n'
                   ' "seed": -1, "tick": 0, "next_id": 1, "zones": [], "entities": []}\n')
    result = run("world", "load", str(bad), "--db", migrated_dsn)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"fluxworld: {bad}:2: seed:")


def test_commands_on_an_unmigrated_database_say_to_migrate(fresh_dsn, tmp_path):
    for args in (["world", "load", str(TINY)], ["world", "dump", str(tmp_path / "w.json")],
                 ["log", "export", str(tmp_path / "b.jsonl")]):
        result = run(*args, "--db", fresh_dsn)
        assert result.exit_code == 1, args
        assert "run `fluxworld db migrate`" in result.stderr


def test_a_world_the_database_refuses_is_one_line_and_nothing_stored(migrated_dsn, run_sql):
    run_sql(migrated_dsn, "ALTER TABLE entity_wealth ADD CONSTRAINT modest CHECK (gold < 10)")
    result = run("world", "load", str(TINY), "--db", migrated_dsn)
    assert result.exit_code == 1
    assert result.stderr.startswith("fluxworld: PostgreSQL refused it: new row for relation \"entity_wealth\" "
                                    "violates check constraint \"modest\"") and "SQLSTATE 23514" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
    assert run_sql(migrated_dsn, "SELECT count(*) AS n FROM world")[0]["n"] == 0


def test_dump_without_a_world(migrated_dsn, tmp_path):
    result = run("world", "dump", str(tmp_path / "w.json"), "--db", migrated_dsn)
    assert result.exit_code == 1
    assert "no world is stored" in result.stderr


@pytest.mark.parametrize("db, code, message", [
    ("mysql://x/y", 2, "--db must be 'embedded' or a postgresql:// DSN"),
    ("postgresql://postgres@127.0.0.1:1/fluxworld", 1, "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1"),
])
def test_bad_or_unreachable_databases(db, code, message):
    result = run("db", "status", "--db", db)
    assert result.exit_code == code
    assert message in result.output


def test_a_missing_database_is_named(pg_server):
    dsn = pg_server.uri("no_such_database")
    result = run("db", "status", "--db", dsn)
    assert result.exit_code == 1
    assert 'database "no_such_database" does not exist' in result.stderr


def test_passwords_stay_out_of_messages():
    result = run("db", "status", "--db", "postgresql://me:secret@127.0.0.1:1/x")
    assert result.exit_code == 1
    assert "secret" not in result.output and "me:***@" in result.output

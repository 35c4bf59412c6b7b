"""The gateway as `serve` runs it: a process of its own, restarted when it dies, gone when its server is."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from persistence.migrator import migrate
from pipeline.link.world import WorldLink
from pipeline.server.runner import Inbox
from pipeline.view import WorldView
from pipeline.xmpp.gateway import SECRET_ENV, GatewayProcess
from tests.xmpp.harness import WORLD

WAIT = 20.0


async def test_a_gateway_that_dies_is_started_again_and_serves_again(prosody, fresh_dsn):
    await migrate(fresh_dsn)
    directory = Path(tempfile.mkdtemp(prefix="fw-link-"))
    link = WorldLink(directory / "world.sock", Inbox(), WorldView.from_world(WORLD), 20.0)
    await link.start()
    gateway = GatewayProcess(prosody.endpoint(), link.path, fresh_dsn)
    try:
        await gateway.start()
        await asyncio.wait_for(link.serving.wait(), WAIT)
        first = gateway.pid
        os.kill(first, signal.SIGKILL)
        for _ in range(int(WAIT / 0.05)):
            if gateway.pid != first and link.serving.is_set():
                break
            await asyncio.sleep(0.05)
        assert gateway.restarts == 1 and gateway.pid != first and link.serving.is_set()
    finally:
        await gateway.stop()
        await link.stop()
        shutil.rmtree(directory, ignore_errors=True)
    assert gateway.process is not None and gateway.process.returncode is not None


def test_a_gateway_whose_server_is_killed_exits(prosody, fresh_dsn):
    """The server's stand-in is a shell that starts the gateway with --parent $$, then is SIGKILLed."""
    asyncio.run(migrate(fresh_dsn))        # the gateway reads accounts from this database
    directory = Path(tempfile.mkdtemp(prefix="fw-link-"))
    endpoint = prosody.endpoint()
    command = (f"{sys.executable} -m pipeline gateway --world {directory / 'world.sock'} "
               f"--xmpp-server {endpoint.host}:{endpoint.port} --component {endpoint.component} "
               f"--db '{fresh_dsn}' --parent $$ & wait")
    shell = subprocess.Popen(["sh", "-c", command], env={**os.environ, SECRET_ENV: endpoint.secret},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway: psutil.Process | None = None
    try:
        deadline = time.monotonic() + WAIT
        while not (children := psutil.Process(shell.pid).children()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (gateway,) = children
        time.sleep(1.0)                     # it is running (and retrying the link, which nobody serves)
        assert gateway.is_running()
        shell.kill()
        shell.wait()
        gateway.wait(timeout=WAIT)          # psutil.TimeoutExpired if it did not exit
    finally:
        shell.kill()
        if gateway is not None and gateway.is_running():
            gateway.kill()                  # a failed test leaves nothing behind
        shutil.rmtree(directory, ignore_errors=True)

"""The XMPP gateway as a process of its own: `fluxworld gateway`, or spawned by `serve`.

It connects to the world server's link socket (pipeline/link; for a world
split into zone groups, to every shard's: pipeline/link/router.py routes
each player's commands to the shard holding it) and to the XMPP server's
component port, and does every per-player thing there:
parsing stanzas, accounts, presence, fan-out and serialising. The world
server's tick loop never runs a line of it, and a gateway can restart (or
several can run) without the world noticing more than a disconnect.

`GatewayProcess` is how `serve` and the load test run one: started after
the link listens, restarted with backoff if it dies, stopped with SIGTERM
(pipeline/server/children.py).
A gateway started with `--parent PID` exits when that process is gone, so a
killed server never leaves one behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from ..link.router import ShardLink
from ..server.children import ChildProcess
from . import Endpoint
from .component import XmppGateway

log = logging.getLogger(__name__)

SECRET_ENV = "FLUXWORLD_XMPP_SECRET"
PARENT_CHECK = 1.0          # seconds between looks at the parent


async def run_gateway(endpoint: Endpoint, world: Path | Sequence[ShardLink], db: str, *, parent: int | None = None,
                      bot_hz: float | None = None, players_domain: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or until `parent` is gone). `world`: the world server's link
    socket, or each shard's (a world split into zone groups)."""
    from persistence.database import open_database

    async with open_database(db, pool_max=2) as database:
        kwargs = {} if bot_hz is None else {"bot_hz": bot_hz}
        gateway = XmppGateway(endpoint, world, database.store(), players_domain=players_domain, **kwargs)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gateway.start()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), PARENT_CHECK)
                except asyncio.TimeoutError:
                    if parent is not None and os.getppid() != parent:
                        log.warning("gateway: the world server (pid %d) is gone; exiting", parent)
                        break
        finally:
            await gateway.stop()


class GatewayProcess(ChildProcess):
    """A `fluxworld gateway` child process, kept running (pipeline/server/children.py)."""

    def __init__(self, endpoint: Endpoint, world: Path | Sequence[ShardLink], db: str, *,
                 bot_hz: float | None = None, players_domain: str | None = None, verbose: bool = False) -> None:
        worlds = [str(world)] if isinstance(world, Path) else \
            [f"{','.join(map(str, sorted(s.zones)))}={s.path}" for s in world]
        super().__init__("gateway", [
            sys.executable, "-m", "pipeline", *(["-v"] if verbose else []), "gateway",
            *(arg for w in worlds for arg in ("--world", w)),
            "--xmpp-server", f"{endpoint.host}:{endpoint.port}",
            "--component", endpoint.component, "--db", db, "--parent", str(os.getpid()),
            *(["--bot-hz", str(bot_hz)] if bot_hz is not None else []),
            *(["--players-domain", players_domain] if players_domain is not None else [])],
            env={**os.environ, SECRET_ENV: endpoint.secret})

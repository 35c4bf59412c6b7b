"""`fluxworld serve --shards N`: a world as N zone groups, each ticked by a shard process, on this machine.

One command for what docs/scale-out.md runs by hand: seed the database if
it holds no world, split the world into N groups of neighbouring zones (once:
a world split already must have N groups), start a shard per group (`serve
--zones`, each listening on a link socket of its own), Prosody (unless
--xmpp-server names a server) and one gateway over every shard's link, and
keep them running until SIGINT/SIGTERM: a shard that dies is started again
(it waits out its lease, then recovers its group). With --drive every shard
takes its players' commands from the file, and the run ends with it.

Each shard serves its own /metrics, /health and console, shard i (from 0)
on the --http port + i: one scrape target a process, as Prometheus wants,
and each console shows its own group.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np

from persistence.database import Database, connect, open_database
from persistence.migrator import migrate
from persistence.shards import ZoneGroup, groups, neighbours, sibling_dsn, split
from schema._generated.layout import ZONE_DTYPE
from vocabulary.errors import InputError

from ..formats.worldfile import load_world
from ..link.router import ShardLink
from ..starter import starter_world
from .children import ChildProcess
from .serve import ServeOptions, xmpp_endpoint

log = logging.getLogger(__name__)


async def serve_shards(options: ServeOptions, count: int) -> int:
    """Returns the tick every group has reached when the shards stop."""
    async with AsyncExitStack() as stack, open_database(options.db) as database:
        await migrate(database.dsn)
        found = await _split(database, options, count)
        links = Path(tempfile.mkdtemp(prefix="fluxworld-shards-"))
        stack.callback(shutil.rmtree, links, True)
        http = [_shard_http(options, i) for i in range(len(found))]
        shards = [ChildProcess(f"shard {g.name}", _shard_args(options, g, links / f"z{i}.sock", http[i]))
                  for i, g in enumerate(found)]
        for shard in shards:
            await shard.start()
        # All at once: a shard stopped alone would leave the others waiting for its next tick.
        stack.push_async_callback(_stop_all, shards)
        started = "; ".join(f"zones {g.name} (pid {s.pid}{'' if h == 'off' else f', http://{h}/metrics'})"
                            for g, s, h in zip(found, shards, http))
        log.info("%d shards: %s", len(shards), started, extra={"event": "shards"})
        if options.xmpp is not None:
            from ..xmpp.gateway import GatewayProcess

            endpoint = await xmpp_endpoint(options.xmpp, stack)
            gateway = GatewayProcess(endpoint, [ShardLink(g.zones, links / f"z{i}.sock") for i, g in enumerate(found)],
                                     database.dsn, verbose=log.isEnabledFor(logging.DEBUG))
            await gateway.start()
            stack.push_async_callback(gateway.stop)
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        finished = asyncio.ensure_future(_all_done(shards))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopped, finished], return_when=asyncio.FIRST_COMPLETED)
        for waiting in (stopped, finished):
            waiting.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.remove_signal_handler(sig)
        await stack.aclose()       # the gateway, then each shard: SIGTERM, its last tick commits
        return min([await _tick(sibling_dsn(database.dsn, g.database)) for g in found])


async def _stop_all(shards: list[ChildProcess]) -> None:
    await asyncio.gather(*(shard.stop() for shard in shards))


async def _all_done(shards: list[ChildProcess]) -> None:
    for shard in shards:
        await shard.done.wait()


async def _split(database: Database, options: ServeOptions, count: int) -> list[ZoneGroup]:
    """The world's zone groups: seeded and split into `count` groups if it is not split yet."""
    found = await groups(database.dsn)
    if found:
        if len(found) != count:
            raise InputError(f"the world is split into {len(found)} zone groups ({'; '.join(g.name for g in found)}), "
                             f"not {count}: serve it with --shards {len(found)}")
        return found
    store = database.store()
    if await store.stored_hash() is None:
        await store.seed(load_world(options.world) if options.world else starter_world())
    world = await store.load_world()
    zones = sorted(np.frombuffer(world.zones, dtype=ZONE_DTYPE)["id"].tolist())
    if len(zones) < count:
        raise InputError(f"the world has {len(zones)} zone(s): --shards {count} needs at least {count} "
                         "(give a world with more zones, e.g. --world examples/two-zones.world.json)")
    made = await split(database.dsn, neighbours(zones, count), progress=lambda line: log.info("%s", line))
    log.info("split the world into %d zone groups", len(made), extra={"event": "split"})
    return made


def _shard_http(options: ServeOptions, i: int) -> str:
    """Shard i's --http: the cluster's port + i; off with no HTTP, or when the default address was
    asked for and that port is taken (as one `serve` runs without HTTP then)."""
    if options.http is None:
        return "off"
    host, port = options.http.host, options.http.port + i
    if not options.http.required and not port_free(host, port):
        log.warning("shard %d: %s:%d is taken; it runs without HTTP", i + 1, host, port)
        return "off"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on (host, port) now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as the server will bind it
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _shard_args(options: ServeOptions, group: ZoneGroup, link: Path, http: str) -> list[str]:
    args = [sys.executable, "-m", "pipeline", "serve", "--zones", group.name, "--no-xmpp", "--link", str(link),
            "--db", options.db, "--engine", options.engine, "--hz", str(options.hz), "--rate", str(options.rate),
            "--burst", str(options.burst), "--http", http, "--lease", str(options.lease),
            "--checkpoint-every", str(options.checkpoint_every)]
    if options.drive is not None:
        args += ["--drive", str(options.drive)]
    if options.ticks is not None:
        args += ["--ticks", str(options.ticks)]
    if options.keep_ticks is not None:
        args += ["--keep-ticks", str(options.keep_ticks)]
    return args


async def _tick(dsn: str) -> int:
    conn = await connect(dsn)
    try:
        return int(await conn.fetchval("SELECT tick FROM world") or 0)
    finally:
        await conn.close()

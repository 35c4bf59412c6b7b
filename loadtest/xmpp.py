"""The xmpp transport: real XMPP bots through Prosody to the world server, then to a bare echo.

This process runs the world server exactly as `serve` does: the tick loop
with its link socket, and the XMPP gateway in a process of its own on that
link; the bots run in worker processes (loadtest/bots.py) and a private
Prosody in its own state directory carries both, so a running `fluxworld
serve` is never touched. The report gives the stanzas a second the gateway
took in and sent out, and the CPU of each process: world server, gateway,
Prosody, bots; and where an acknowledgement's time goes (loadtest/breakdown.py).

The world's players are the scenario's, offline until their bot's presence
joins them; each bot owns one through `player_account`. By default bots run
closed loop with WINDOW commands outstanding, so both the world and the
echo are measured at the rate they sustain, not at a rate chosen for them
(and latency is then mostly queueing). With `open_loop` each bot offers
`rate` commands a second instead, which measures latency under a set load.
The world answers once a tick with `acked`, so a bot's window refills once
a tick: the per-player rate limit is set to what the window allows, so the
ceiling measured is the server's, not the policy's.

Accounting: offered = the bots' commands plus one join and one leave each
(their presence); every one is committed, refused or dropped by the time
the run ends, or the `accounted` check fails.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import psutil

from persistence.database import Database
from persistence.embedded import state_dir
from pipeline.link.world import WorldLink
from pipeline.server.runner import Inbox
from pipeline.server.serve import QUEUE_LIMIT
from pipeline.stages.negotiate import DEFAULT_BURST, DEFAULT_RATE
from pipeline.view import WorldView
from pipeline.xmpp import DEFAULT_COMPONENT, DEFAULT_DOMAIN
from pipeline.xmpp.gateway import GatewayProcess
from pipeline.xmpp.prosody import CLIENT_RATE, ProsodyServer

from .bots import SwarmSpec, run_swarm
from .breakdown import ack_breakdown
from .collector import CpuMeter
from .echo import EchoComponent
from .inproc import LiveWorld, seeded
from .options import LoadOptions
from .scenarios import MmoScenario

PASSWORD = "loadtest"
WINDOW = 16                # commands each bot keeps outstanding (the world acks once a tick)
CONNECT_TIMEOUT = 10.0
SETTLE_TIMEOUT = 10.0      # after the bots leave: their last commands and leaves reach a tick

Progress = Callable[[dict[str, Any]], None]


async def run_xmpp(options: LoadOptions, engine_name: str, database: Database | None, progress: Progress,
                   note: Callable[[str], None]) -> dict[str, Any]:
    assert database is not None, "options.check() refuses xmpp without a database"
    async with AsyncExitStack() as stack:
        servers = [_prosody(i, options) for i in range(options.xmpp_servers)]
        for prosody in servers:
            await asyncio.to_thread(prosody.start)
            stack.callback(prosody.stop)
        # Account k is bot k on server k % n (as SwarmSpec.server_of spreads the bots).
        names = [(f"bot{i}", PASSWORD) for i in range(options.players)]
        for i, prosody in enumerate(servers):
            await asyncio.to_thread(prosody.create_accounts, names[i::len(servers)])
        prosody_cpu = CpuMeter(lambda: [p for prosody in servers for p in _prosody_processes(prosody)])

        scenario = MmoScenario(options.players, options.seed, online=False)
        store = await seeded(scenario, database)
        assert store is not None
        await store.assign_accounts({f"{name}@{servers[k % len(servers)].domain}": int(entity)
                                     for k, ((name, _), entity) in enumerate(zip(names, scenario.players.tolist()))})
        directory = Path(tempfile.mkdtemp(prefix="fw-link-"))
        stack.callback(shutil.rmtree, directory, True)
        links: list[WorldLink] = []

        def link_for(inbox: Inbox) -> WorldLink:
            links.append(WorldLink(directory / "world.sock", inbox, WorldView.from_world(scenario.world), options.hz))
            return links[0]

        if options.flooders:        # as serve runs: its rate limit, inbox bound and per-sender bound
            limits: dict[str, Any] = dict(rate_limit=DEFAULT_RATE, burst=DEFAULT_BURST, inbox_limit=QUEUE_LIMIT,
                                          per_sender=2 * DEFAULT_BURST)
        else:                       # closed loop: at most every bot's window waits at once; the inbox holds them
            limits = dict(rate_limit=WINDOW * options.hz, inbox_limit=2 * WINDOW * len(names))
        world = LiveWorld(options, engine_name, scenario, store, outbox_for=link_for, **limits)
        link = links[0]
        await link.start()
        stack.push_async_callback(link.stop)
        # A gateway a server; with several, each answers for its own server's accounts.
        gateways = [GatewayProcess(prosody.endpoint(), link.path, database.dsn, bot_hz=options.updates_hz,
                                   players_domain=prosody.domain if len(servers) > 1 else None)
                    for prosody in servers]
        for gateway in gateways:
            await gateway.start()
            stack.push_async_callback(gateway.stop)
        await asyncio.wait_for(_all_serving(link, len(gateways)), CONNECT_TIMEOUT)
        gateway_cpu = CpuMeter(lambda: [psutil.Process(g.pid) for g in gateways if g.pid])
        world.start()
        first = servers[0]
        spec = SwarmSpec("127.0.0.1", first.c2s_port, first.domain, first.component, tuple(names),
                         seconds=options.duration, rate=options.rate if options.open_loop else None, window=WINDOW,
                         workload="mmo", processes=options.bot_processes, seed=options.seed,
                         flooders=options.flooders,
                         more_servers=tuple((p.c2s_port, p.domain, p.component) for p in servers[1:]))
        loop = f"open loop, {options.rate:g} commands a second each" if options.open_loop else \
            f"closed loop, {WINDOW} commands outstanding each"
        flood = f"; {options.flooders} of them flood" if options.flooders else ""
        over = f" over {len(servers)} XMPP servers" if len(servers) > 1 else ""
        note(f"xmpp: {options.players} bots log in and join{over}, then {options.duration:g} s {loop}{flood}")
        started = time.monotonic()
        counts_before = link.counts()
        t = world.collector.totals

        def interval(entry: dict[str, Any]) -> None:
            if entry["t"] <= 1.0:       # the clock's first second: what the logins cost is behind us
                prosody_cpu.read()
                gateway_cpu.read()
            t.offered += entry["sent"]
            progress(world.collector.sample())

        swarm = await run_swarm(spec, progress=interval)
        t.offered = swarm["sent"] + swarm["flood_sent"] + 2 * len(names)     # + each bot's join and leave
        await world.drain(lambda: t.committed + t.refused + world.inbox.dropped >= t.offered, SETTLE_TIMEOUT)
        seconds = time.monotonic() - started
        counts_after = link.counts()
        run = await world.report("xmpp", seconds)
        run["cpu"]["other_percent"].update(prosody=round(prosody_cpu.read(), 1), gateway=round(gateway_cpu.read(), 1),
                                           bots=round(100 * swarm["cpu_s"] / seconds, 1))
        stanzas_in, stanzas_out, bytes_out = (after - before for after, before in zip(counts_after, counts_before))
        run["xmpp_servers"] = len(servers)
        run["stanzas_per_s"] = {"in": round(stanzas_in / seconds, 1), "out": round(stanzas_out / seconds, 1),
                                "bytes_out": round(bytes_out / seconds)}
        run["latency_ms"] = swarm["latency_ms"]
        run["ack_breakdown_ms"] = ack_breakdown(swarm["acks"], world.collector.tick_times)
        # The bots' own count, over their clock: the rate the echo is compared with.
        run["rates"]["answered_per_s"] = round(swarm["round_trips_per_s"], 1)
        run["swarm"] = {k: v for k, v in swarm.items() if k not in ("timeline", "latency_ms", "acks")}
        if options.flooders:
            run["flood"] = {"bots": options.flooders, "sent_per_s": round(swarm["flood_sent"] / options.duration, 1),
                            "answered": swarm["flood_answered"], "refused": swarm["flood_refused"]}
        if options.echo:
            run["echo"] = await _echo(servers, spec, note)
        return run
    raise AssertionError("unreachable")


async def _echo(servers: list[ProsodyServer], spec: SwarmSpec, note: Callable[[str], None]) -> dict[str, Any]:
    note(f"echo: the same {len(spec.accounts)} bots against a bare echo component through the same Prosody")
    echoes = [EchoComponent(prosody.endpoint(_echo_of(prosody.domain))) for prosody in servers]
    async with AsyncExitStack() as stack:
        for echo in echoes:
            await stack.enter_async_context(echo)
        others = tuple((p.c2s_port, p.domain, _echo_of(p.domain)) for p in servers[1:])
        swarm = await run_swarm(replace(spec, target=_echo_of(servers[0].domain), workload="echo", flooders=0,
                                        more_servers=others))
    return {"bots": swarm["bots"], "round_trips_per_s": round(swarm["round_trips_per_s"], 1),
            "latency_ms": swarm["latency_ms"], "timeline": swarm["timeline"], "sent": swarm["sent"],
            "answered": swarm["answered"], "cpu_s": swarm["cpu_s"]}


def _prosody(i: int, options: LoadOptions) -> ProsodyServer:
    """The load test's i-th private Prosody, in a state directory of its own that every run
    starts afresh (no accounts); the first serves the default domain, the others subdomains."""
    root = state_dir() / ("loadtest-prosody" if i == 0 else f"loadtest-prosody{i + 1}")
    shutil.rmtree(root, ignore_errors=True)
    domain = DEFAULT_DOMAIN if i == 0 else f"s{i + 1}.{DEFAULT_DOMAIN}"
    # Closed loop measures the ceiling: no client throttled; open loop keeps what serve runs with.
    return ProsodyServer(root, domain=domain, component=DEFAULT_COMPONENT if i == 0 else f"world.{domain}",
                         extra_components=(_echo_of(domain),), client_rate=CLIENT_RATE if options.open_loop else None)


def _echo_of(domain: str) -> str:
    return f"echo.{domain}"


async def _all_serving(link: WorldLink, gateways: int) -> None:
    while link.gateways_serving < gateways:
        await asyncio.sleep(0.05)


def _prosody_processes(prosody: ProsodyServer) -> list[psutil.Process]:
    pid = prosody.pid
    try:
        return [] if pid is None else [psutil.Process(pid)]
    except psutil.Error:
        return []

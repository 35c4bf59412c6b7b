"""The xmpp transport: real XMPP bots through Prosody to the world server, then to a bare echo.

This process runs the world server exactly as `serve` does: the tick loop
with its link socket, and the XMPP gateway in a process of its own on that
link; the bots run in worker processes (loadtest/bots.py) and a private
Prosody in its own state directory carries both, so a running `fluxworld
serve` is never touched. The report gives the stanzas a second the gateway
took in and sent out, and the CPU of each process: world server, gateway,
Prosody, bots.

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
from pipeline.xmpp.gateway import GatewayProcess
from pipeline.xmpp.prosody import CLIENT_RATE, ProsodyServer

from .bots import SwarmSpec, run_swarm
from .collector import CpuMeter
from .echo import ECHO_COMPONENT, EchoComponent
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
        root = state_dir() / "loadtest-prosody"
        shutil.rmtree(root, ignore_errors=True)       # ours alone: every run starts with no accounts
        # Closed loop measures the ceiling: no client throttled; open loop keeps what serve runs with.
        prosody = ProsodyServer(root, extra_components=(ECHO_COMPONENT,),
                                client_rate=CLIENT_RATE if options.open_loop else None)
        await asyncio.to_thread(prosody.start)
        stack.callback(prosody.stop)
        names = [(f"bot{i}", PASSWORD) for i in range(options.players)]
        await asyncio.to_thread(prosody.create_accounts, names)
        prosody_cpu = CpuMeter(lambda: _prosody_processes(prosody))

        scenario = MmoScenario(options.players, options.seed, online=False)
        store = await seeded(scenario, database)
        assert store is not None
        await store.assign_accounts({f"{name}@{prosody.domain}": int(entity)
                                     for (name, _), entity in zip(names, scenario.players.tolist())})
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
        gateway = GatewayProcess(prosody.endpoint(), link.path, database.dsn, bot_hz=options.updates_hz)
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        await asyncio.wait_for(link.serving.wait(), CONNECT_TIMEOUT)
        gateway_cpu = CpuMeter(lambda: [psutil.Process(gateway.pid)] if gateway.pid else [])
        world.start()
        spec = SwarmSpec("127.0.0.1", prosody.c2s_port, prosody.domain, prosody.component, tuple(names),
                         seconds=options.duration, rate=options.rate if options.open_loop else None, window=WINDOW,
                         workload="mmo", processes=options.bot_processes, seed=options.seed,
                         flooders=options.flooders)
        loop = f"open loop, {options.rate:g} commands a second each" if options.open_loop else \
            f"closed loop, {WINDOW} commands outstanding each"
        flood = f"; {options.flooders} of them flood" if options.flooders else ""
        note(f"xmpp: {options.players} bots log in and join, then {options.duration:g} s {loop}{flood}")
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
        run["stanzas_per_s"] = {"in": round(stanzas_in / seconds, 1), "out": round(stanzas_out / seconds, 1),
                                "bytes_out": round(bytes_out / seconds)}
        run["latency_ms"] = swarm["latency_ms"]
        # The bots' own count, over their clock: the rate the echo is compared with.
        run["rates"]["answered_per_s"] = round(swarm["round_trips_per_s"], 1)
        run["swarm"] = {k: v for k, v in swarm.items() if k not in ("timeline", "latency_ms")}
        if options.flooders:
            run["flood"] = {"bots": options.flooders, "sent_per_s": round(swarm["flood_sent"] / options.duration, 1),
                            "answered": swarm["flood_answered"], "refused": swarm["flood_refused"]}
        if options.echo:
            run["echo"] = await _echo(prosody, spec, note)
        return run
    raise AssertionError("unreachable")


async def _echo(prosody: ProsodyServer, spec: SwarmSpec, note: Callable[[str], None]) -> dict[str, Any]:
    note(f"echo: the same {len(spec.accounts)} bots against a bare echo component through the same Prosody")
    echo = EchoComponent(prosody.endpoint(ECHO_COMPONENT))
    async with echo:
        swarm = await run_swarm(SwarmSpec(spec.host, spec.port, spec.domain, ECHO_COMPONENT, spec.accounts,
                                          seconds=spec.seconds, rate=spec.rate, window=spec.window, workload="echo",
                                          processes=spec.processes, seed=spec.seed))
    return {"bots": swarm["bots"], "round_trips_per_s": round(swarm["round_trips_per_s"], 1),
            "latency_ms": swarm["latency_ms"], "timeline": swarm["timeline"], "sent": swarm["sent"],
            "answered": swarm["answered"], "cpu_s": swarm["cpu_s"]}


def _prosody_processes(prosody: ProsodyServer) -> list[psutil.Process]:
    try:
        return [psutil.Process(int((prosody.root / "prosody.pid").read_text().split()[0]))]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []

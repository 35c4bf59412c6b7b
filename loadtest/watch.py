"""`fluxworld loadtest --console`: the run with an operator watching, to price the console.

The world under load gets serve's HTTP side (/metrics and the console,
pipeline/operate) on a free loopback port, and a watcher in its own
process does what an open console page and an eager Prometheus do: reads
every live map frame over the WebSocket (decoding each, as the page does),
asks for one player's panel every second, and scrapes /metrics every
second. Its figures (frames a second, bytes a frame) go in the run's entry;
the tick p99 of runs with and without --console, side by side, is the
console's cost.

The watcher is a process, not a task in the server's loop, as a browser
is: on this 2-core machine it still competes for the CPU, as a browser on
the server's own machine would.
"""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics import TickMetrics
from pipeline.operate.http import HttpOptions, HttpServer
from pipeline.operate.mapframe import decode_frame
from pipeline.operate.state import ServerState

if TYPE_CHECKING:
    from .inproc import LiveWorld

ASK_EVERY = 1.0          # seconds between the watcher's panel requests and scrapes


@asynccontextmanager
async def console_open(world: LiveWorld, dsn: str | None, hz: float, seconds: float,
                       player: int) -> AsyncIterator[dict[str, Any]]:
    """Serve /metrics and the console of `world`, watched for `seconds`; yields the dict the
    watcher's figures land in once the block ends."""
    metrics: TickMetrics = world.pipeline.metrics
    state = ServerState(metrics, hz)
    state.loop, state.dsn, state.view = world.loop, dsn, world.view
    watched = world.pipeline.on_committed

    def committed(ctx: Any) -> None:
        if watched is not None:
            watched(ctx)
        state.recent.committed(ctx)
    world.pipeline.on_committed = committed
    token = secrets.token_urlsafe(24)
    http = HttpServer(state, HttpOptions("127.0.0.1", 0), console_token=token)
    await http.start()
    assert http.address is not None
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.watch", f"http://127.0.0.1:{http.address[1]}", token, str(seconds),
        str(player), stdout=subprocess.PIPE)
    figures: dict[str, Any] = {}
    try:
        yield figures
    finally:
        out, _ = await watcher.communicate()
        figures.update(json.loads(out or b"{}"))
        await http.stop()


async def watch(base: str, token: str, seconds: float, player: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    frames = sizes = entities = asked = 0
    scraped = [""]           # the last /metrics page
    async with aiohttp.ClientSession(headers=headers) as session:
        async def ask() -> None:
            nonlocal asked
            while True:
                for path in (f"/console/api/entity/{player}", "/metrics"):
                    async with session.get(base + path) as response:
                        body = await response.read()
                        asked += response.status == 200
                        if path == "/metrics":
                            scraped[0] = body.decode()
                await asyncio.sleep(ASK_EVERY)

        asking = asyncio.create_task(ask())
        started = time.monotonic()
        async with session.ws_connect(base + "/console/api/live", max_msg_size=0) as ws:
            while (left := seconds - (time.monotonic() - started)) > 0:
                try:
                    message = await ws.receive(timeout=left)
                except asyncio.TimeoutError:
                    break
                if message.type != aiohttp.WSMsgType.BINARY:
                    break
                header, drawn = decode_frame(message.data)
                frames, sizes, entities = frames + 1, sizes + len(message.data), entities + len(drawn)
        asking.cancel()
        elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"frames_per_s": round(frames / elapsed, 2), "frame_kb": round(sizes / max(frames, 1) / 1024, 1),
            "entities_per_frame": entities // max(frames, 1), "answers": asked,
            "watcher_cpu_percent": round(100 * (usage.ru_utime + usage.ru_stime) / elapsed, 1),
            "loop_ms_per_s": round(1000 * _console_seconds(scraped[0]) / elapsed, 2)}


def _console_seconds(page: str) -> float:
    """What the server's /metrics says the console's live work took on its event loop."""
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "fluxworld_console_seconds_total":
                return float(sample.value)
    return 0.0


if __name__ == "__main__":
    base, token, seconds, player = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(asyncio.run(watch(base, token, seconds, player))))

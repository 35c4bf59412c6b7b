"""The HTTP side of `fluxworld serve`: /metrics, /health/live, /health/ready, and the console.

aiohttp serves them on the server's own event loop, beside the tick loop,
so every handler only reads what the server keeps anyway (ServerState):
counters, the current view's counts, a few timestamps. Rendering /metrics
(about 30 kB of text, ~2.5 ms of Python on the 2-core development machine)
is the one piece of real work: it waits for the slack between two ticks
(ServerState.between_ticks), so it never lands inside a tick's compute,
which yields to the loop between stages and while the engine works.

A taken address is said in one line. One given with `--http` stops the
server from starting (whoever asked for it will probe it); the default one
(DEFAULT_ADDRESS) only costs this run its HTTP side, so that a second
server on one machine, or a test suite beside a running server, still runs.
"""

from __future__ import annotations

import errno
import json
import logging
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, generate_latest

from vocabulary.errors import InputError

from .console import Console, LiveWorld
from .health import readiness
from .scrape import LiveCollector
from .state import ServerState
from .token import guard

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = ("127.0.0.1", 8020)

# prometheus_client would add a `_created` timestamp series beside every counter and histogram: a
# third of the page, which Prometheus' text format does not need. The switch is process-wide;
# nothing in fluxworld reads those series.
disable_created_metrics()  # type: ignore[no-untyped-call]
STOP_GRACE = 1.0        # seconds a request in flight may take when the server stops


@dataclass(frozen=True)
class HttpOptions:
    host: str = DEFAULT_ADDRESS[0]
    port: int = DEFAULT_ADDRESS[1]
    required: bool = True    # False (the default address): if it is taken, run without HTTP, saying so


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:PORT for IPv6) as given to --http."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--http {text!r}: expected HOST:PORT (as 127.0.0.1:8020), or off")
    return host, int(port)


class HttpServer:
    def __init__(self, state: ServerState, options: HttpOptions, *, console_token: str | None = None) -> None:
        """With `console_token`, the console too (pipeline/operate/console.py), behind that token."""
        self.state, self.options = state, options
        state.metrics.registry.register(LiveCollector(state))
        app = web.Application(middlewares=[guard(console_token)] if console_token else [])
        app.add_routes([web.get("/metrics", self.metrics), web.get("/health/live", self.live),
                        web.get("/health/ready", self.ready)])
        self.console: Console | None = None
        if console_token:
            self.console = Console(LiveWorld(state, state.recent), registry=state.metrics.registry)
            app.add_routes(self.console.routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_GRACE)
        self.address: tuple[str, int] | None = None     # where it listens, once started

    async def start(self) -> None:
        host, port = self.options.host, self.options.port
        try:
            self.address = await listen(self._runner, host, port)
        except CannotListen as e:
            if self.options.required:
                raise InputError(f"--http {host}:{port}: cannot listen there ({e.why}); give another HOST:PORT, "
                                 "or --http off") from e
            log.warning("http: cannot listen on %s:%d (%s): no /metrics or /health this run; choose an address "
                        "with --http HOST:PORT", host, port, e.why, extra={"event": "http_unavailable"})
            return
        log.info("http: /metrics, /health/live and /health/ready on http://%s:%d", *self.address,
                 extra={"event": "http", "host": host, "port": self.address[1]})

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.close()
        if self.address is not None:
            await self._runner.cleanup()
            self.address = None

    async def metrics(self, request: web.Request) -> web.Response:
        await self.state.between_ticks()
        return web.Response(body=generate_latest(self.state.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def live(self, request: web.Request) -> web.Response:
        view = self.state.current_view()
        return _json(200, {"live": True, "tick": view.tick if view is not None else None})

    async def ready(self, request: web.Request) -> web.Response:
        checks = readiness(self.state)
        failing = [name for name, ok in checks.items() if not ok]
        return _json(503 if failing else 200, {"ready": not failing, "failing": failing, "checks": checks})


class CannotListen(InputError):
    def __init__(self, host: str, port: int, why: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {why}")
        self.why = why


async def listen(runner: web.AppRunner, host: str, port: int) -> tuple[str, int]:
    """Start `runner` on host:port (port 0: any free one) and return where it listens."""
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        raise CannotListen(host, port, "the address is taken" if e.errno == errno.EADDRINUSE
                           else (e.strerror or str(e)).lower()) from e
    return host, runner.addresses[0][1]


def _json(status: int, body: object) -> web.Response:
    return web.Response(status=status, text=json.dumps(body) + "\n", content_type="application/json")

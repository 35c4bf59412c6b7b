"""`fluxworld serve`: the tick loop against PostgreSQL.

Start: open the HTTP side first (pipeline/operate: /metrics, and health
that says "not ready" until the world is recovered), migrate the schema,
seed a world if the database has none, recover (load the world and prove it
matches its command log), load the engine. With XMPP, open the link socket
(pipeline/link) and start the gateway process on it
(pipeline/xmpp/gateway.py). Run: the tick loop until SIGINT/SIGTERM,
`--ticks` ticks, or the end of a `--drive` file. Stop: finish the tick in
flight and its commit, stop the gateway, close the database (and the
embedded PostgreSQL, if this process started it), then the HTTP side.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from persistence.database import open_database
from persistence.migrator import migrate
from persistence.shards import group_of
from persistence.shards import groups as zone_groups
from vocabulary.errors import InputError

from ..context import TickContext
from ..engines.engine import create_engine
from ..feed import Driver, InprocFeed
from ..formats.worldfile import load_world
from ..link.world import WorldLink
from ..metrics import TickMetrics
from ..operate.state import ServerState
from ..ports import Outbox
from ..replay import count_batches
from ..stages.negotiate import Negotiate
from ..starter import starter_world
from ..view import WorldView
from ..xmpp import DEFAULT_COMPONENT, Endpoint
from .checkpointer import DEFAULT_EVERY, Checkpointer
from .recovery import recover
from .runner import Inbox, Pipeline, TickLoop
from .shard import Shard

if TYPE_CHECKING:
    from ..operate.http import HttpOptions

log = logging.getLogger(__name__)

GATEWAY_GRACE = 15.0    # seconds the first tick waits for the gateway to reach the XMPP server
QUEUE_LIMIT = 50_000    # commands waiting for a tick: about 2.5 ticks of the most a tick has carried here
LEASE_SECONDS = 2.0     # a dead shard's zones wait this long for another (docs/scale-out.md)


@dataclass(frozen=True)
class ServeOptions:
    db: str = "embedded"
    engine: str = "wasm"
    hz: float = 20.0
    world: Path | None = None        # seeds an empty database (default: the starter world)
    drive: Path | None = None        # a batches file fed in as live input, tick by tick
    ticks: int | None = None         # stop after this many ticks
    rate: float = 20.0
    burst: int = 10
    xmpp: XmppOptions | None = None  # None: no XMPP, commands only from the in-process feed
    link: Path | None = None         # where gateways connect (default: a fresh private directory)
    http: HttpOptions | None = None  # None: no HTTP side (no /metrics, no /health)
    summary_every: float = 10.0      # seconds between the tick loop's logged summaries
    checkpoint_every: int = DEFAULT_EVERY   # ticks between world snapshots; 0: none
    keep_ticks: int | None = None    # after each snapshot, prune the log to this many ticks (and a snapshot)
    zones: frozenset[int] | None = None  # a shard's zone group (docs/scale-out.md); None: the whole world
    lease: float = LEASE_SECONDS     # a shard's lease on its group, renewed every third of it


@dataclass(frozen=True)
class XmppOptions:
    """Where players connect. `server` None: start a private Prosody under the state directory."""

    server: tuple[str, int] | None = None
    component: str = DEFAULT_COMPONENT
    secret_file: Path | None = None


async def serve(options: ServeOptions) -> int:
    """Returns the tick the world stands at when the server stops."""
    state = ServerState(TickMetrics(), options.hz, xmpp=options.xmpp is not None)
    async with AsyncExitStack() as stack:
        if options.http is not None:
            from persistence.embedded import state_dir

            from ..operate.http import HttpServer
            from ..operate.token import TOKEN_FILE, admin_token

            http = HttpServer(state, options.http, console_token=admin_token(state_dir()))
            await http.start()
            stack.push_async_callback(http.stop)
            if http.address is not None:
                log.info("console: http://%s:%d/console?token=TOKEN, TOKEN in %s", *http.address,
                         state_dir() / TOKEN_FILE, extra={"event": "console"})
        endpoint = None
        if options.xmpp is not None:
            endpoint = await xmpp_endpoint(options.xmpp, stack)
        return await _serve(options, endpoint, state)


async def xmpp_endpoint(options: XmppOptions, stack: AsyncExitStack) -> Endpoint:
    if options.server is None:
        from ..xmpp.prosody import ProsodyServer

        prosody = ProsodyServer(component=options.component)
        await asyncio.to_thread(prosody.start)
        stack.callback(prosody.stop)
        log.info("prosody on 127.0.0.1: c2s port %d, component port %d (%s)", prosody.c2s_port,
                 prosody.component_port, prosody.root)
        return prosody.endpoint()
    if options.secret_file is None:
        raise InputError("--xmpp-server needs --secret-file (the component's secret)")
    try:
        secret = options.secret_file.read_text().strip()
    except OSError as e:
        raise InputError(f"cannot read the component secret: {e}") from e
    return Endpoint(options.server[0], options.server[1], options.component, secret)


async def _serve(options: ServeOptions, endpoint: Endpoint | None, state: ServerState) -> int:
    async with open_database(options.db) as database, AsyncExitStack() as stack:
        await migrate(database.dsn)
        state.dsn = database.dsn
        found = await zone_groups(database.dsn)
        if options.zones is None and found:
            raise InputError(f"this world is split into zone groups ({'; '.join(g.name for g in found)}): "
                             "serve each with --zones (docs/scale-out.md)")
        shard = None
        if options.zones is not None:
            shard = await Shard.open(database.dsn, group_of(found, options.zones), found, options.lease, stack,
                                     state)
            store, checkpoints = shard.store, shard.checkpoints
        else:
            store, checkpoints = database.store(), database.checkpoints()
        if await store.stored_hash() is None:
            world = load_world(options.world) if options.world else starter_world()
            await store.seed(world)
            log.info("seeded a world of %d entities", len(world.entities) // 120, extra={"event": "seeded"})
        # Before recovering: any earlier server's in-flight tick lands whole or never, and it writes no more.
        stop = asyncio.Event()
        fence = await (shard.take(stop) if shard else store.take_writer())
        view = WorldView.from_world(await recover(store))
        engine = create_engine(options.engine)
        engine.project(view.frame())
        state.view, state.recovered_at = view, time.monotonic()
        log.info("world at tick %d, %d entities, engine %s, %g Hz, writer %d", view.tick, len(view),
                 engine.name, options.hz, fence, extra={"event": "recovered", "tick": view.tick})

        # A full inbox sheds with an answer; one player's flood is shed at the door, a few bursts' worth waiting.
        inbox = state.inbox = Inbox(limit=QUEUE_LIMIT, per_sender=2 * options.burst)
        outbox: Outbox = InprocFeed(inbox)
        link = gateway = None
        if endpoint is not None:
            from ..xmpp.gateway import GatewayProcess

            path = options.link or _private_socket()
            outbox = link = state.link = WorldLink(path, inbox, view, options.hz)
            await link.start()
            log.info("link: gateways connect to %s", path)
            gateway = state.gateway = GatewayProcess(endpoint, path, database.dsn,
                                                     verbose=log.isEnabledFor(logging.DEBUG))
            await gateway.start()
            try:    # players who log in at once are not refused; but the world never waits long for XMPP
                await asyncio.wait_for(link.serving.wait(), GATEWAY_GRACE)
            except asyncio.TimeoutError:
                log.warning("link: no gateway serves players after %g s; ticking without", GATEWAY_GRACE)
        elif shard is not None and options.link is not None:
            # A shard's players come through one gateway for the whole world, started on its own
            # (`fluxworld gateway --world` each shard's link): the shard only listens.
            outbox = link = state.link = WorldLink(options.link, inbox, view, options.hz)
            await link.start()
            log.info("link: the world's gateway connects to %s", options.link)
        checkpointer = None
        if options.checkpoint_every:
            checkpointer = state.checkpointer = Checkpointer(checkpoints, options.checkpoint_every,
                                                             fence=fence, keep_ticks=options.keep_ticks)
        pipeline = Pipeline(engine, store, outbox, negotiate=Negotiate(rate=options.rate, burst=options.burst),
                            metrics=state.metrics, on_committed=_each(state.recent.committed,
                                                                      checkpointer.committed if checkpointer else None),
                            zones=options.zones)
        ticks = options.ticks
        before_tick = None
        if options.drive:
            driver = Driver(options.drive, inbox)
            before_tick = driver.before_tick
            if ticks is None:
                ticks = max(0, _last_tick(options.drive) - view.tick)
        loop = state.loop = TickLoop(pipeline, view, inbox, hz=options.hz, summary_every=options.summary_every,
                                     before_tick=before_tick, gate=shard.gate if shard else None)

        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        try:
            await loop.run(stop, max_ticks=ticks)
        finally:
            state.stopped = True
            for sig in (signal.SIGINT, signal.SIGTERM):
                running.remove_signal_handler(sig)
            if checkpointer is not None:
                await checkpointer.close()
            if gateway is not None:
                await gateway.stop()
            if link is not None:
                await link.stop()
                if options.link is None:
                    shutil.rmtree(link.path.parent, ignore_errors=True)
        if shard is not None:
            await shard.close()
        log.info("the run, stage by stage: %s", pipeline.metrics.summary(loop.stages),
                 extra={"event": "final_summary", "tick": loop.committed_tick, **pipeline.metrics.summary_fields()})
        return loop.committed_tick


def _each(*watchers: Callable[[TickContext], None] | None) -> Callable[[TickContext], None]:
    """One on_committed that calls each watcher given, in order."""
    present = [w for w in watchers if w is not None]

    def committed(ctx: TickContext) -> None:
        for watcher in present:
            watcher(ctx)
    return committed


def _private_socket() -> Path:
    """A socket path in a fresh 0700 directory: short enough for AF_UNIX (108 bytes), and ours alone."""
    return Path(tempfile.mkdtemp(prefix="fluxworld-link-")) / "world.sock"


def _last_tick(path: Path) -> int:
    """The tick of a batches file's last line (0 for an empty file)."""
    from ..formats.batches import read_batches

    last = 0
    if count_batches(path):
        for batch in read_batches(path, after_tick=0):
            last = batch.tick
    return last

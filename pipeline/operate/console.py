"""The browser console: the world's map live, an entity's record and history, charts, time travel.

Routes (all behind the admin token, pipeline/operate/token.py):
- GET /console: the page (pipeline/operate/static/console.html and its files);
- WS /console/api/live: a map frame (pipeline/operate/mapframe.py) LIVE_HZ
  times a second, its header carrying the chart figures;
- GET /console/api/world: tick, counts, zones, and the ticks time travel covers;
- GET /console/api/entity/ID[?tick=T]: every field of the entity's record,
  now or at tick T, and (now) its recent commands and the effects naming it;
- GET /console/api/past/T: the frame of the world as it was at tick T, with
  the rebuilt world's hash beside the logged one;
- GET /console/api/diff?a=A&b=B: which entities changed between two ticks, and how.

One frame serves every page watching: a single task builds it in the
slack between ticks (ServerState.between_ticks) and hands it to each
socket, skipping a page whose previous frame is still being sent. Past
worlds are rebuilt by pipeline/operate/timetravel.py in a worker process,
started the first time a page asks for one.

The same page serves a stored world with no server running (`fluxworld
console --db`, pipeline/operate/stored.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

import numpy as np
from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE, ItemType, Kind
from vocabulary.errors import FluxworldError, InputError
from vocabulary.records import unpack_entity
from vocabulary.types import WorldData

from ..view import WorldView
from .mapframe import encode_frame, online_count, zones_json
from .recent import Recent
from .state import ServerState

if TYPE_CHECKING:
    from .timetravel import PastWorld, TimeTravel

log = logging.getLogger(__name__)

LIVE_HZ = 5
STATIC = Path(__file__).parent / "static"
PAGES = {"console.html", "console.js", "console.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class WorldSource(Protocol):
    """What the console reads: the live server's state, or a stored world."""

    @property
    def dsn(self) -> str | None: ...                  # the database time travel reads, once known

    async def current(self) -> WorldView | None: ...

    def header(self) -> dict[str, Any]: ...           # what the world's summary adds: mode, hash

    def figures(self) -> dict[str, Any] | None: ...   # the chart figures since the last call

    async def history(self, entity_id: int) -> dict[str, Any]: ...

    async def wait_for_slack(self) -> None: ...


class LiveWorld:
    """A running `fluxworld serve`: its current view, and what Recent keeps of the last ticks."""

    def __init__(self, state: ServerState, recent: Recent) -> None:
        self.state, self.recent = state, recent

    @property
    def dsn(self) -> str | None:
        return self.state.dsn

    async def current(self) -> WorldView | None:
        return self.state.current_view()

    def header(self) -> dict[str, Any]:
        last = self.recent.last_hash
        return {"mode": "live", "hash": last.hex() if last else None}

    def figures(self) -> dict[str, Any] | None:
        return self.recent.take_figures(int(self.state.metrics.missed._value.get()))

    async def history(self, entity_id: int) -> dict[str, Any]:
        return {"kept_ticks": self.recent.kept, **self.recent.about(entity_id)}

    async def wait_for_slack(self) -> None:
        await self.state.between_ticks()


class Console:
    def __init__(self, source: WorldSource, *, registry: CollectorRegistry | None = None) -> None:
        """With `registry`, /metrics counts the seconds the console's live work took on the event loop."""
        self.source = source
        if registry is not None:
            registry.register(_Seconds(self))
        self.travel: TimeTravel | None = None
        self._sockets: dict[web.WebSocketResponse, asyncio.Task[None] | None] = {}
        self._sender: asyncio.Task[None] | None = None
        self._past: WorldData | None = None      # the last past world asked for, for its entities' records
        self.seconds = 0.0          # spent on the event loop building live frames and panels (/metrics says)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/console", self.page), web.get("/console/{name:.+\\.(?:js|css|html)}", self.file),
                web.get("/console/api/live", self.live), web.get("/console/api/world", self.world),
                web.get("/console/api/entity/{id}", self.entity), web.get("/console/api/past/{tick}", self.past),
                web.get("/console/api/diff", self.diff)]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._sender is not None:
            self._sender.cancel()
        if self.travel is not None:
            await self.travel.__aexit__(None, None, None)
            self.travel = None

    # The page and its files.

    async def page(self, request: web.Request) -> web.StreamResponse:
        return self._static("console.html")

    async def file(self, request: web.Request) -> web.StreamResponse:
        return self._static(request.match_info["name"])

    def _static(self, name: str) -> web.StreamResponse:
        if name not in PAGES:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=_TYPES[Path(name).suffix],
                            headers={"Cache-Control": "no-cache"})

    # The live world.

    async def world(self, request: web.Request) -> web.Response:
        view = await self.source.current()
        span = await self._span()
        if view is None:
            return web.json_response({"tick": None, "span": span})
        return web.json_response({"tick": view.tick, "entities": view.entity_count, "online": view.online_count,
                                  "zones": zones_json(view.zones), "span": span, **self.source.header()})

    async def live(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: deflating a 5,000-player frame (360 kB) takes ~11 ms of the event loop,
        # five times a second; uncompressed it is 1.8 MB/s, nothing for a link to a console.
        ws = web.WebSocketResponse(heartbeat=20, compress=False)
        await ws.prepare(request)
        self._sockets[ws] = None
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_frames())
        try:
            async for message in ws:          # the page says nothing; this waits for it to go
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.pop(ws, None)
        return ws

    async def _send_frames(self) -> None:
        period = 1.0 / LIVE_HZ
        next_at = time.monotonic()
        while self._sockets:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await self.source.wait_for_slack()
            started = time.perf_counter()
            view = await self.source.current()
            if view is None:
                continue
            frame = encode_frame({"tick": view.tick, "entities": view.entity_count, "online": view.online_count,
                                  "zones": zones_json(view.zones), "figures": self.source.figures(),
                                  **self.source.header()}, view.packed())
            for ws, sending in list(self._sockets.items()):
                if sending is None or sending.done():        # a page still reading the last frame skips this one
                    self._sockets[ws] = asyncio.create_task(_send(ws, frame))
            self.seconds += time.perf_counter() - started

    async def entity(self, request: web.Request) -> web.Response:
        entity_id = _int(request.match_info["id"], "entity id")
        tick = request.query.get("tick")
        if tick is None:
            await self.source.wait_for_slack()      # the panel filters the kept ticks: milliseconds, between ticks
            started = time.perf_counter()
            view = await self.source.current()
            record = view.get(entity_id) if view is not None else None
            if record is None:
                raise web.HTTPNotFound(text=f"no entity {entity_id} in the world now")
            panel = {"tick": view.tick if view else None, "record": entity_json(record),
                     **await self.source.history(entity_id)}
            self.seconds += time.perf_counter() - started
            return web.json_response(panel)
        past = await self._world_at(_int(tick, "tick"))
        record = _find(past, entity_id)
        if record is None:
            raise web.HTTPNotFound(text=f"no entity {entity_id} in the world of tick {past.tick}")
        return web.json_response({"tick": past.tick, "record": entity_json(record)})

    # Time travel.

    async def past(self, request: web.Request) -> web.Response:
        tick = _int(request.match_info["tick"], "tick")
        answer = await self._travel_to(tick)
        world = answer.world
        frame = encode_frame({"mode": "past", "tick": world.tick, "entities": len(world.entities) // ENTITY_SIZE,
                              "online": online_count(world.entities),
                              "zones": zones_json(world.zones), "hash": answer.hash,
                              "logged_hash": answer.logged_hash, "replayed": answer.replayed,
                              "seconds": round(answer.seconds, 3)}, world.entities)
        return web.Response(body=frame, content_type="application/octet-stream")

    async def diff(self, request: web.Request) -> web.Response:
        a, b = _int(request.query.get("a", ""), "a"), _int(request.query.get("b", ""), "b")
        travel = await self._time_travel()
        with _answered():
            changes = await travel.diff(a, b)
        return web.json_response({"a": a, "b": b, "changes": changes})

    async def _world_at(self, tick: int) -> WorldData:
        if self._past is not None and self._past.tick == tick:
            return self._past
        return (await self._travel_to(tick)).world

    async def _travel_to(self, tick: int) -> PastWorld:
        travel = await self._time_travel()
        with _answered():
            answer = await travel.world_at(tick)
        self._past = answer.world
        return answer

    async def _span(self) -> tuple[int, int] | None:
        if self.source.dsn is None:
            return None
        return await (await self._time_travel()).span()

    async def _time_travel(self) -> TimeTravel:
        dsn = self.source.dsn
        if dsn is None:
            raise web.HTTPServiceUnavailable(text="time travel starts once the world is recovered")
        if self.travel is None:
            from .timetravel import TimeTravel  # its worker process starts the first time a page asks

            travel = TimeTravel(dsn)
            await travel.__aenter__()
            self.travel = travel
        return self.travel


class _Seconds(Collector):
    def __init__(self, console: Console) -> None:
        self.console = console

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("fluxworld_console_seconds", "Seconds the console's live frames and entity "
                                  "panels took on the server's event loop, between ticks", value=self.console.seconds)


def entity_json(record: bytes) -> dict[str, Any]:
    """Every field of a record, kind and item type by name."""
    fields = unpack_entity(record)
    fields["kind"] = Kind(fields["kind"]).name
    if fields["kind"] == "item":
        fields["item_type"] = ItemType(fields["item_type"]).name
    fields["online"] = bool(fields["online"])
    return fields


def _find(world: WorldData, entity_id: int) -> bytes | None:
    ids = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)["id"]
    at = int(np.searchsorted(ids, entity_id))
    if at < len(ids) and int(ids[at]) == entity_id:
        return world.entities[at * ENTITY_SIZE:(at + 1) * ENTITY_SIZE]
    return None


@contextmanager
def _answered() -> Iterator[None]:
    """Time travel's refusals as HTTP answers: a tick not covered is the asker's (400), a worker that
    died is the server's (503; the next request starts another)."""
    try:
        yield
    except InputError as e:
        raise web.HTTPBadRequest(text=str(e)) from e
    except FluxworldError as e:
        raise web.HTTPServiceUnavailable(text=str(e)) from e


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{what} {text!r} is not an integer") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"{what} {value} is negative")
    return value


async def _send(ws: web.WebSocketResponse, frame: bytes) -> None:
    try:
        await ws.send_bytes(frame)
    except (ConnectionError, RuntimeError):      # the page went while its frame was on its way
        pass


"""A bare echo component: Prosody's ceiling, measured the way the world is.

`with EchoComponent(endpoint):` runs an XEP-0114 component (slixmpp's
ComponentXMPP, as the world's gateway is) that sends every message it gets
straight back with `to` and `from` swapped, payload and all, and does
nothing else. The bots time it exactly as they time the world, through the
same Prosody in the same run, so world/echo is the share of the ceiling the
world server reaches.

It runs in a process of its own, so it shares no GIL with the bots or the
world server. The process is *spawned*, not forked: the parent is an
asyncio program with threads (the default executor, queue feeders),
database and XMPP sockets and an epoll descriptor, and a fork would copy
all of that into the child, where a lock held by another thread at fork
time can deadlock it. A spawned child starts clean, at ~0.3 s of imports,
paid once before the clock starts.

The parent holds one end of a pipe; the child stops when it reads `stop`
from it, or EOF, so it never outlives a parent that died.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from slixmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from pipeline.xmpp import DEFAULT_DOMAIN, Endpoint
from vocabulary.errors import XmppError

ECHO_COMPONENT = f"echo.{DEFAULT_DOMAIN}"
START_TIMEOUT = 20.0        # spawn, import slixmpp, connect, handshake
STOP_TIMEOUT = 5.0


class EchoComponent:
    """The echo in its own process; `start()` returns once it is connected to the server.

    Both calls block (for ~0.5 s and at most their timeouts); from a running
    event loop use `async with`, which runs them in a thread.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.echoed = 0             # messages echoed, known after stop()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    def start(self) -> EchoComponent:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.endpoint, child), name="fluxworld-echo",
                                        daemon=True)
        self._process.start()
        child.close()       # the child holds the only other end: its EOF is ours
        try:
            status = self._pipe.recv() if self._pipe.poll(START_TIMEOUT) else f"no answer within {START_TIMEOUT:g} s"
        except EOFError:
            self._process.join(1.0)
            status = f"its process exited (code {self._process.exitcode}) before it connected"
        if status != "connected":
            self.stop()
            raise XmppError(f"echo component {self.endpoint.component} at {self.endpoint.host}:"
                            f"{self.endpoint.port}: {status}")
        return self

    def stop(self) -> None:
        process, pipe, self._process, self._pipe = self._process, self._pipe, None, None
        if pipe is not None:
            try:
                if not pipe.poll(0):
                    pipe.send("stop")       # else it has stopped already (the server went away) and said so
                if pipe.poll(STOP_TIMEOUT):
                    answer = pipe.recv()
                    self.echoed = answer if isinstance(answer, int) else self.echoed
            except (OSError, EOFError):
                pass        # the child is gone already
            pipe.close()
        if process is not None:
            process.join(STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> EchoComponent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> EchoComponent:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


# ---------------------------------------------------------------- the child process

def _serve(endpoint: Endpoint, pipe: Connection) -> None:
    try:
        echoed = asyncio.run(_echo(endpoint, pipe))
    except Exception as e:   # whatever it was, the parent reads it instead of a timeout
        _tell(pipe, f"{type(e).__name__}: {e}")
        return
    _tell(pipe, echoed)


def _tell(pipe: Connection, what: object) -> None:
    try:
        pipe.send(what)
    except OSError:
        pass                # the parent is gone: nobody to tell


async def _echo(endpoint: Endpoint, pipe: Connection) -> int:
    xmpp = ComponentXMPP(endpoint.component, endpoint.secret)  # type: ignore[no-untyped-call]
    echoed = 0

    def echo(msg: Any) -> None:
        nonlocal echoed
        xml = msg.xml
        if xml.get("type") == "error":
            return          # answering an error could loop
        sender = xml.get("from")
        xml.set("from", xml.get("to"))
        xml.set("to", sender)
        # send_raw writes to the socket at once, skipping slixmpp's send queue and filters:
        # the echo should cost as little as a component can.
        xmpp.send_raw(str(msg))
        echoed += 1

    xmpp.register_handler(Callback("echo", MatchXPath(f"{{{xmpp.default_ns}}}message"), echo))
    loop = asyncio.get_running_loop()
    connected, ended, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    xmpp.add_event_handler("session_start", lambda _: connected.set())
    xmpp.add_event_handler("disconnected", lambda _: ended.set())
    xmpp.add_event_handler("connection_failed", lambda _: ended.set())
    loop.add_reader(pipe.fileno(), stop.set)     # "stop", or EOF when the parent died
    xmpp.connect(endpoint.host, endpoint.port)
    first = await _first(connected, ended, stop, timeout=START_TIMEOUT)
    if first is not connected:
        xmpp.cancel_connection_attempt()
        raise XmppError("could not connect (a wrong secret, or the server does not declare this component)"
                        if first is ended else "stopped before it connected")
    _tell(pipe, "connected")
    await _first(ended, stop, timeout=None)
    loop.remove_reader(pipe.fileno())
    if not ended.is_set():
        await xmpp.disconnect(wait=1.0)
    return echoed


async def _first(*events: asyncio.Event, timeout: float | None) -> asyncio.Event | None:
    """The first of `events` to be set, or None after `timeout`."""
    waits = {asyncio.ensure_future(e.wait()): e for e in events}
    done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return waits[next(iter(done))] if done else None

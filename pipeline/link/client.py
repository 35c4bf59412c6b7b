"""A gateway's side of the link: connect to the world server, follow it, send commands.

`WorldClient` keeps a WorldView that follows the world (a snapshot when it
connects, then every committed tick) and hands each tick and each refusal
to its `listener`. Commands the gateway submits are packed into one
CommandBlock per turn of the event loop: a burst of stanzas becomes one
frame. When the link drops (the world server restarts), the client
reconnects with backoff; commands submitted meanwhile are refused at once
through the listener, as an overloaded server's are, never queued blind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from vocabulary.records import pack_commands
from vocabulary.types import Batch, TickResult

from ..view import WorldView
from . import codec
from .codec import LinkError

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
NOT_LINKED = "dropped: the world server is not reachable, try again"


class Listener(Protocol):
    def on_world(self, view: WorldView) -> None:
        """A fresh snapshot: the world as it stands, replacing whatever came before."""

    def on_tick(self, view: WorldView, result: TickResult, batch: Batch) -> None:
        """A committed tick; `view` is the world after it."""

    def on_refused(self, sender: int, reason: str, command: dict[str, Any] | None) -> None:
        """One of the gateway's commands (or one the world could not take) was refused."""


class WorldClient:
    def __init__(self, path: Path, listener: Listener, hello: str) -> None:
        self.path, self.listener, self.hello = path, listener, hello
        self.view: WorldView | None = None
        self.hz = 20.0                      # the world's ticks a second, as its snapshot says
        self.linked = asyncio.Event()       # connected and holding a snapshot
        self.on_linked: Callable[[bool], None] | None = None    # told when `linked` is set or cleared
        self._writer: asyncio.StreamWriter | None = None
        self._commands: list[dict[str, Any]] = []
        self._senders: list[int] = []
        self._flushing = False
        self._status: tuple[int, ...] = (0, 0, 0, 0, 0)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------ out

    def submit(self, command: dict[str, Any], sender: int) -> None:
        """Queue a well-typed command (pipeline/formats/batches.check_command passed) for the world."""
        if not self.linked.is_set():
            self.listener.on_refused(sender, NOT_LINKED, command)
            return
        self._commands.append(command)
        self._senders.append(sender)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def unreadable(self, sender: int, reason: str) -> None:
        """Something a player sent that is not a command: the world refuses it with `reason`, and counts it."""
        if not self.linked.is_set() or self._writer is None:
            self.listener.on_refused(sender, NOT_LINKED, None)
            return
        self._writer.writelines(codec.encode(codec.UNREADABLE, (sender,), (reason.encode(),)))

    def status(self, serving: bool, stanzas_in: int, stanzas_out: int, bytes_out: int, xmpp_sessions: int) -> None:
        """Tell the world whether players can reach it through this gateway, and what it counted
        (`xmpp_sessions`: its sessions with the XMPP server so far; more than one means it reconnected)."""
        self._status = (int(serving), stanzas_in, stanzas_out, bytes_out, xmpp_sessions)
        if self._writer is not None:
            self._writer.writelines(codec.encode(codec.STATUS, self._status))

    def _flush(self) -> None:
        self._flushing = False
        commands, senders = self._commands, self._senders
        self._commands, self._senders = [], []
        if not commands:
            return
        if self._writer is None or not self.linked.is_set():
            for command, sender in zip(commands, senders):
                self.listener.on_refused(sender, NOT_LINKED, command)
            return
        packed, text = pack_commands(commands)
        self._writer.writelines(codec.encode(codec.BLOCK, (), (packed, text, np.array(senders, "<u8").tobytes())))

    # ------------------------------------------------------------ in

    async def _supervise(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping:
            try:
                reader, self._writer = await asyncio.open_unix_connection(self.path, limit=1 << 20)
            except OSError as e:
                log.warning("link: cannot reach the world server at %s (%s); retrying in %.1f s", self.path,
                            e.strerror, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, BACKOFF_MAX)
                continue
            delay = BACKOFF_FIRST
            self._writer.writelines(codec.encode(codec.HELLO, (), (self.hello.encode(),)))
            self._writer.writelines(codec.encode(codec.STATUS, self._status))
            try:
                await self._follow(reader)
            except (LinkError, ConnectionError, ValueError) as e:
                log.error("link: %s", e)
            finally:
                self.linked.clear()
                if self.on_linked is not None:
                    self.on_linked(False)
                self._flush()
                self._writer.close()
                self._writer = None
            if not self._stopping:
                log.warning("link: the world server went away; reconnecting")

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        while (frame := await codec.read_frame(reader)) is not None:
            if frame.kind == codec.SNAPSHOT:
                world, self.hz = codec.snapshot_of(frame)
                self.view = WorldView.from_world(world)
                self.linked.set()
                if self.on_linked is not None:
                    self.on_linked(True)
                self.listener.on_world(self.view)
            elif frame.kind == codec.TICK:
                if self.view is None:
                    raise LinkError("a tick before the world's snapshot")
                result, batch = codec.tick_of(frame)
                self.view = self.view.apply(result)
                self.listener.on_tick(self.view, result, batch)
                self.view = self.view.settle()
            elif frame.kind == codec.REFUSED:
                for sender, reason, command in json.loads(frame.blobs[0]):
                    self.listener.on_refused(sender, reason, command)
            else:
                raise LinkError(f"a frame of kind {frame.kind}, which the world does not send")

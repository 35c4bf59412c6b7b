"""The world server's side of the link: a local socket gateways connect to.

Commands arrive as CommandBlocks (a gateway packs its players' commands)
and go into the Inbox as they are; negotiate checks them like any other.
Out, WorldLink is the tick loop's Outbox: `refuse` and `deliver` write a
frame to every gateway and return, never waiting on one. A gateway whose
unsent frames pass BACKLOG_LIMIT bytes is cut off: it reconnects and starts
again from a fresh snapshot, and the world never queues without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from vocabulary.types import CommandBlock, Incoming, Unreadable

from ..blocks import block_command, block_senders
from ..context import TickContext
from ..server.runner import Inbox
from ..view import WorldView
from . import codec
from .codec import LinkError

log = logging.getLogger(__name__)

BACKLOG_LIMIT = 64 << 20        # bytes written to a gateway and not yet taken by it
DROPPED = "dropped: the server is overloaded, try again"


class _Gateway:
    def __init__(self, writer: asyncio.StreamWriter, number: int, backlog_limit: int) -> None:
        self.writer, self.name, self.serving = writer, f"gateway {number}", False
        self.backlog_limit = backlog_limit
        self.counts = (0, 0, 0)     # (stanzas in, stanzas out, bytes out) as the gateway last counted them
        self.xmpp_sessions = 0      # sessions with the XMPP server it began (reconnects are the ones after the first)

    def send(self, frame: list[bytes]) -> bool:
        """Write the frame unless the gateway is gone or too far behind; False when it is cut off."""
        if self.writer.is_closing():
            return False
        if self.writer.transport.get_write_buffer_size() > self.backlog_limit:
            log.warning("link: %s is %d bytes behind; cut off (it will start again from a snapshot)", self.name,
                        self.writer.transport.get_write_buffer_size())
            self.writer.transport.abort()
            return False
        self.writer.writelines(frame)
        return True


class WorldLink:
    def __init__(self, path: Path, inbox: Inbox, view: WorldView, hz: float, *,
                 backlog_limit: int = BACKLOG_LIMIT) -> None:
        self.path, self.inbox, self.view, self.hz = path, inbox, view, hz
        self.backlog_limit = backlog_limit
        self._gateways: list[_Gateway] = []
        self._server: asyncio.Server | None = None
        self._connections = 0
        self.serving = asyncio.Event()      # some gateway says it serves players

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)   # a socket a dead server left behind
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=1 << 20)
        self.path.chmod(0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for gateway in self._gateways:
                gateway.writer.close()
            await self._server.wait_closed()
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        gateway = _Gateway(writer, self._connections, self.backlog_limit)
        self._gateways.append(gateway)
        gateway.send(codec.snapshot_frame(self.view.to_world(), self.hz))
        try:
            while (frame := await codec.read_frame(reader)) is not None:
                self._received(gateway, frame)
        except (LinkError, ValueError) as e:
            log.error("link: %s sent what is not a command: %s; disconnected", gateway.name, e)
        except ConnectionError:
            pass
        finally:
            self._gateways.remove(gateway)
            self._update_serving()
            writer.close()
            log.info("link: %s disconnected", gateway.name)

    def _received(self, gateway: _Gateway, frame: codec.Frame) -> None:
        now = time.monotonic()
        if frame.kind == codec.BLOCK:
            block = codec.block_of(frame, now)
            shed = self.inbox.put_block(block)
            if shed:
                self._refuse_dropped(block, shed)
        elif frame.kind == codec.UNREADABLE:
            (sender,), (reason,) = frame.ints, frame.blobs
            if not self.inbox.put(Incoming(Unreadable(reason.decode()), sender, now)):
                self._send_refusals([[sender, DROPPED, None]])
        elif frame.kind == codec.HELLO:
            gateway.name = f"{gateway.name} ({frame.blobs[0].decode(errors='replace')})"
            log.info("link: %s connected", gateway.name)
        elif frame.kind == codec.STATUS:
            serving, stanzas_in, stanzas_out, bytes_out, gateway.xmpp_sessions = frame.ints
            gateway.counts = (stanzas_in, stanzas_out, bytes_out)
            if gateway.serving != bool(serving):
                gateway.serving = bool(serving)
                log.info("link: %s %s", gateway.name, "serves players" if gateway.serving else "cannot serve players")
            self._update_serving()
        else:
            raise LinkError(f"a frame of kind {frame.kind}, which gateways do not send")

    def _refuse_dropped(self, block: CommandBlock, shed: list[int]) -> None:
        senders = block_senders(block).tolist()
        rows = [[senders[i], DROPPED, block_command(block, i)] for i in shed]
        self._send_refusals(rows)

    @property
    def connections(self) -> int:
        """Gateway connections since the link opened (a gateway that reconnects counts again)."""
        return self._connections

    @property
    def gateways_serving(self) -> int:
        """Gateways connected now that say they serve players."""
        return sum(g.serving for g in self._gateways)

    def counts(self) -> tuple[int, int, int]:
        """Stanzas in, stanzas out and bytes out, summed over the gateways connected now (each counts
        from its start)."""
        return (sum(g.counts[0] for g in self._gateways), sum(g.counts[1] for g in self._gateways),
                sum(g.counts[2] for g in self._gateways))

    def xmpp_reconnects(self) -> int:
        """XMPP sessions the gateways connected now began after their first (each counts from its start)."""
        return sum(max(0, g.xmpp_sessions - 1) for g in self._gateways)

    def _update_serving(self) -> None:
        if any(g.serving for g in self._gateways):
            self.serving.set()
        else:
            self.serving.clear()

    def _send_refusals(self, rows: list[list[Any]]) -> None:
        """[sender, reason, command or None] each: every gateway routes those of its own players."""
        self._send_all(codec.encode(codec.REFUSED, (), (json.dumps(rows).encode(),)))

    def _send_all(self, frame: list[bytes]) -> None:
        for gateway in list(self._gateways):
            gateway.send(frame)

    # ------------------------------------------------------------ Outbox

    async def refuse(self, ctx: TickContext) -> None:
        rows = [[r.incoming.sender, r.reason, r.incoming.command if isinstance(r.incoming.command, dict) else None]
                for r in ctx.refusals if r.incoming.sender is not None]
        if rows:
            self._send_refusals(rows)

    async def deliver(self, ctx: TickContext) -> None:
        assert ctx.result is not None and ctx.next_view is not None
        self.view = ctx.next_view
        if self._gateways:
            self._send_all(codec.tick_frame(ctx.result, ctx.batch))

"""The world's side of the link against a real socket: a snapshot first, commands into the
inbox, refusals routed by sender, and a gateway that stops reading is cut off, never waited for."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pipeline.context import TickContext
from pipeline.link import codec
from pipeline.link.world import WorldLink
from pipeline.server.runner import Inbox
from pipeline.view import WorldView
from tests.support import player, world
from vocabulary.records import pack_commands
from vocabulary.types import Batch, CommandBlock, Incoming, Refusal, TickResult

VIEW = WorldView.from_world(world(player(1, 5, 5), player(2, 6, 5), next_id=10))


async def linked(inbox: Inbox, **kwargs) -> tuple[WorldLink, Path]:
    directory = Path(tempfile.mkdtemp(prefix="fw-test-link-"))
    link = WorldLink(directory / "world.sock", inbox, VIEW, 20.0, **kwargs)
    await link.start()
    return link, directory


def test_a_gateway_gets_the_world_then_its_commands_reach_the_inbox_and_refusals_come_back():
    async def go() -> None:
        inbox = Inbox(limit=1)
        link, directory = await linked(inbox)
        try:
            reader, writer = await asyncio.open_unix_connection(link.path)
            snapshot = await codec.read_frame(reader)
            assert codec.snapshot_of(snapshot) == (VIEW.to_world(), 20.0)
            packed, text = pack_commands([{"player": 1, "seq": 1, "op": "say", "text": "hi"},
                                          {"player": 2, "seq": 1, "op": "use"}])
            writer.writelines(codec.encode(codec.BLOCK, (), (packed, text, np.array([1, 2], "<u8").tobytes())))
            refused = await asyncio.wait_for(codec.read_frame(reader), 5)
            assert json.loads(refused.blobs[0]) == [[2, "dropped: the server is overloaded, try again",
                                                     {"player": 2, "seq": 1, "op": "use"}]]
            (block,) = inbox.drain()
            assert isinstance(block, CommandBlock) and len(block) == 1 and block.text == b"hi"
            ctx = TickContext(1, Batch(1, b"", b""), VIEW, refusals=[Refusal(Incoming({"seq": 4}, 1, 0.0), "no")])
            await link.refuse(ctx)
            refused = await asyncio.wait_for(codec.read_frame(reader), 5)
            assert json.loads(refused.blobs[0]) == [[1, "no", {"seq": 4}]]
            writer.close()
        finally:
            await link.stop()
            shutil.rmtree(directory)
    asyncio.run(go())


def test_a_gateway_that_stops_reading_is_cut_off_and_starts_again_from_a_snapshot():
    async def go() -> None:
        link, directory = await linked(Inbox(), backlog_limit=1 << 20)
        try:
            reader, writer = await asyncio.open_unix_connection(link.path)
            big = TickResult(1, 10, b"\0" * (1 << 20), b"", b"", b"")
            for tick in range(1, 40):              # never read: the socket's buffers fill, then the link's
                ctx = TickContext(tick, Batch(tick, b"", b""), VIEW, result=big, next_view=VIEW)
                await link.deliver(ctx)
                await asyncio.sleep(0)
            with_reader = [f async for f in _frames(reader)]
            assert 0 < len(with_reader) < 40                 # what it had in its socket, then the end
            reader, writer = await asyncio.open_unix_connection(link.path)
            assert (await codec.read_frame(reader)).kind == codec.SNAPSHOT
            writer.close()
        finally:
            await link.stop()
            shutil.rmtree(directory)
    asyncio.run(go())


async def _frames(reader: asyncio.StreamReader):
    try:
        while (frame := await asyncio.wait_for(codec.read_frame(reader), 5)) is not None:
            yield frame
    except (codec.LinkError, ConnectionError):
        return

"""The link's frames: what goes in comes out, and what is not a frame is named as such."""

from __future__ import annotations

import asyncio
import struct

import pytest

from pipeline.link import codec
from pipeline.link.codec import LinkError
from vocabulary.types import Batch, TickResult, WorldData


def read_all(data: bytes) -> list[codec.Frame]:
    async def go() -> list[codec.Frame]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        frames = []
        while (frame := await codec.read_frame(reader)) is not None:
            frames.append(frame)
        return frames
    return asyncio.run(go())


def test_frames_round_trip():
    world = WorldData(7, 12, 99, b"z" * 24, b"e" * 240, b"t" * 160)      # what is in flight goes too
    result = TickResult(13, 101, b"f" * 40, b"r" * 16, b"c" * 120, b"x" * 8, zones=b"z" * 24, transit=b"t" * 320)
    batch = Batch(13, b"k" * 48, "héllo".encode())
    data = b"".join(codec.snapshot_frame(world, 20.0) + codec.tick_frame(result, batch)
                    + codec.encode(codec.STATUS, (1, 2**40, 0, 5, 1)))
    snapshot, tick, status = read_all(data)
    assert codec.snapshot_of(snapshot) == (world, 20.0)
    assert codec.tick_of(tick) == (result, batch)
    assert status.kind == codec.STATUS and status.ints == (1, 2**40, 0, 5, 1) and status.blobs == ()


@pytest.mark.parametrize("data, message", [
    (struct.pack("<I", 2) + b"ab", "a frame of 2 bytes"),
    (struct.pack("<I", 10) + b"T", "short of a frame"),
    (b"\x01\x00", "inside a frame's length"),
    (struct.pack("<I", 3) + bytes([ord("B"), 0, 2]), "cannot hold 0 integers and 2 lengths"),
    (struct.pack("<I", 8) + bytes([ord("B"), 0, 1]) + struct.pack("<I", 9) + b"x", "whose parts add up to 16"),
])
def test_what_is_not_a_frame_is_named(data, message):
    with pytest.raises(LinkError, match=message):
        read_all(data)

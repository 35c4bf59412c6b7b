"""Frames of the world-gateway link.

A frame is: u32 length of the rest, then u8 kind, u8 number of integers,
u8 number of byte strings, the integers (i64 each), the byte strings'
lengths (u32 each), then the byte strings. Every message of the link fits
that shape, so one reader and one writer serve both sides, and a byte
string (packed records, effects) is never copied into another encoding.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from vocabulary.types import Batch, CommandBlock, TickResult, WorldData

_LENGTH = struct.Struct("<I")
_HEAD = struct.Struct("<BBB")
MAX_FRAME = 1 << 30

# World -> gateway
SNAPSHOT = ord("S")     # ints: seed, tick, next_id, ticks a second x 1000; blobs: zones, entities, transit
TICK = ord("T")         # ints: tick, next_id; blobs: commands, text, effects, recipients, changed, removed,
                        # zones, transit (what is in flight: a traveller is there, not among the entities)
REFUSED = ord("R")      # blobs: one JSON array of [sender, reason, command or null]
# Gateway -> world
HELLO = ord("H")        # blobs: what the gateway is (e.g. its component JID), for the world's log
STATUS = ord("X")       # ints: serving (1: its XMPP connection is up); stanzas in, out, bytes out, XMPP sessions
                        # begun (totals)
BLOCK = ord("B")        # blobs: packed commands, text, senders (a CommandBlock without its arrival time)
UNREADABLE = ord("U")   # ints: sender; blobs: the reason, UTF-8


class LinkError(Exception):
    """The peer sent something that is not a frame of this link."""


@dataclass(frozen=True)
class Frame:
    kind: int
    ints: tuple[int, ...]
    blobs: tuple[bytes, ...]


def encode(kind: int, ints: tuple[int, ...] = (), blobs: tuple[bytes, ...] = ()) -> list[bytes]:
    """The frame as buffers for `writelines` (the blobs themselves are not copied)."""
    head = _HEAD.pack(kind, len(ints), len(blobs)) + struct.pack(f"<{len(ints)}q{len(blobs)}I", *ints,
                                                                 *map(len, blobs))
    length = len(head) + sum(map(len, blobs))
    if length > MAX_FRAME:
        raise LinkError(f"a frame of {length} bytes, above the link's {MAX_FRAME}")
    return [_LENGTH.pack(length), head, *blobs]


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None at a clean end of stream."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise LinkError("the stream ended inside a frame's length") from e
        return None
    if not _HEAD.size <= length <= MAX_FRAME:
        raise LinkError(f"a frame of {length} bytes")
    try:
        data = await reader.readexactly(length)
    except asyncio.IncompleteReadError as e:
        raise LinkError(f"the stream ended {length - len(e.partial)} bytes short of a frame") from e
    kind, n_ints, n_blobs = _HEAD.unpack_from(data)
    at = _HEAD.size
    fixed = struct.Struct(f"<{n_ints}q{n_blobs}I")
    if at + fixed.size > length:
        raise LinkError(f"a frame of {length} bytes cannot hold {n_ints} integers and {n_blobs} lengths")
    values = fixed.unpack_from(data, at)
    at += fixed.size
    ints, sizes = values[:n_ints], values[n_ints:]
    if at + sum(sizes) != length:
        raise LinkError(f"a frame of {length} bytes whose parts add up to {at + sum(sizes)}")
    view = memoryview(data)
    blobs = []
    for size in sizes:
        blobs.append(bytes(view[at:at + size]))
        at += size
    return Frame(kind, tuple(ints), tuple(blobs))


def snapshot_frame(world: WorldData, hz: float) -> list[bytes]:
    return encode(SNAPSHOT, (world.seed, world.tick, world.next_id, round(hz * 1000)),
                  (world.zones, world.entities, world.transit))


def snapshot_of(frame: Frame) -> tuple[WorldData, float]:
    """The world and the server's ticks a second."""
    seed, tick, next_id, millihertz = frame.ints
    zones, entities, transit = frame.blobs
    return WorldData(seed, tick, next_id, zones, entities, transit), millihertz / 1000


def tick_frame(result: TickResult, batch: Batch) -> list[bytes]:
    return encode(TICK, (result.tick, result.next_id), (batch.commands, batch.text, result.effects,
                                                       result.recipients, result.changed, result.removed,
                                                       result.zones, result.transit))


def tick_of(frame: Frame) -> tuple[TickResult, Batch]:
    tick, next_id = frame.ints
    commands, text, effects, recipients, changed, removed, zones, transit = frame.blobs
    return (TickResult(tick, next_id, effects, recipients, changed, removed, zones=zones, transit=transit),
            Batch(tick, commands, text))


def block_frame(block: CommandBlock) -> list[bytes]:
    return encode(BLOCK, (), (block.commands, block.text, block.senders))


def block_of(frame: Frame, received: float) -> CommandBlock:
    commands, text, senders = frame.blobs
    return CommandBlock(commands, text, senders, received)

"""FlatBuffers frames, encoded and decoded by hand on the per-tick path.

MEASURED.md: flatbuffers' pure-Python Builder and generated readers cost
micro-seconds per field, so they never run per tick. Every table here is
written as one struct-packed header (root offset, vtable, inline fields)
followed by its vectors, each a length word and a payload copied in bulk.
tests/schema/test_frames.py proves both directions against flatc's own
generated Python code.

    [root u32][vtable][pad][table: soffset, inline fields][vector]...[vector]
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from schema._generated import layout

_SCALAR_CODES = {"bool": "B", "byte": "b", "ubyte": "B", "short": "h", "ushort": "H",
                 "int": "i", "uint": "I", "long": "q", "ulong": "Q"}


class FrameError(ValueError):
    """A buffer that is not a well-formed frame of the expected table."""


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class TableCodec:
    """Encoder and decoder for one table of schema/world.fbs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields = layout.TABLES[name]
        inline = layout.TABLE_INLINE_SIZE[name]
        vtable_size = 4 + 2 * len(self.fields)
        self.table_pos = _align(4 + vtable_size, 8)
        self.header_size = self.table_pos + inline
        vtable = struct.pack(f"<{2 + len(self.fields)}H", vtable_size, inline,
                             *(offset for _, _, _, offset in self.fields))
        self._prefix = struct.pack("<I", self.table_pos) + vtable
        self._prefix += bytes(self.table_pos - len(self._prefix))
        self._prefix += struct.pack("<i", self.table_pos - 4)
        self.scalars = [(n, off, _SCALAR_CODES[t]) for n, _, t, off in self.fields if not t.startswith("[")]
        self.vectors = [(n, off, layout.ELEMENTS[t[1:-1]]) for n, _, t, off in self.fields if t.startswith("[")]
        self._slots = {n: (slot, t) for n, slot, t, _ in self.fields}

    def encode(self, values: Mapping[str, Any], *, size_prefixed: bool = False) -> bytes:
        """values: every scalar as an int, every vector as its packed payload bytes."""
        head = bytearray(self._prefix)
        head += bytes(self.header_size - len(head))
        parts: list[bytes] = []
        end = self.header_size
        for name, offset, code in self.scalars:
            struct.pack_into("<" + code, head, self.table_pos + offset, values.get(name, 0))
        for name, offset, (size, align) in self.vectors:
            payload = values.get(name, b"")
            if len(payload) % size:
                raise FrameError(f"{self.name}.{name}: {len(payload)} bytes is not a whole number "
                                 f"of {size}-byte elements")
            start = _align(end + 4, max(align, 4)) - 4
            parts.append(bytes(start - end))
            parts.append(struct.pack("<I", len(payload) // size))
            parts.append(payload)
            struct.pack_into("<I", head, self.table_pos + offset, start - (self.table_pos + offset))
            end = start + 4 + len(payload)
        body = bytes(head) + b"".join(parts)
        if size_prefixed:
            # The prefix shifts everything by 4: keep 8-byte payloads aligned.
            return struct.pack("<I", len(body)) + body
        return body

    def decode(self, buf: bytes | memoryview, base: int = 0) -> dict[str, Any]:
        """Scalars as ints, vectors as memoryviews of their payloads."""
        view = memoryview(buf)
        try:
            table = base + struct.unpack_from("<I", view, base)[0]
            vtable = table - struct.unpack_from("<i", view, table)[0]
            vt_size = struct.unpack_from("<H", view, vtable)[0]
            out: dict[str, Any] = {}
            for name, (slot, type_name) in self._slots.items():
                entry = 4 + 2 * slot
                voff = struct.unpack_from("<H", view, vtable + entry)[0] if entry < vt_size else 0
                if not type_name.startswith("["):
                    code = _SCALAR_CODES[type_name]
                    out[name] = struct.unpack_from("<" + code, view, table + voff)[0] if voff else 0
                    continue
                size = layout.ELEMENTS[type_name[1:-1]][0]
                if not voff:
                    out[name] = view[0:0]
                    continue
                vec = table + voff + struct.unpack_from("<I", view, table + voff)[0]
                count = struct.unpack_from("<I", view, vec)[0]
                if vec + 4 + count * size > len(view):
                    raise FrameError(f"{self.name}.{name}: vector runs past the end of the buffer")
                out[name] = view[vec + 4: vec + 4 + count * size]
            return out
        except struct.error as exc:
            raise FrameError(f"{self.name}: truncated frame ({exc})") from None


WORLD_FRAME = TableCodec("WorldFrame")
COMMAND_FRAME = TableCodec("CommandFrame")
TICK_RESULT = TableCodec("TickResult")


def arrivals_frame(transit: bytes, entities: bytes = b"") -> bytes:
    """A WorldFrame that replaces what is in flight with `transit` (packed Transit structs,
    in the world's transit order) and upserts `entities`; header and zones stay (docs/abi.md)."""
    return WORLD_FRAME.encode({"replace": 0, "arrivals": 1, "entities": entities, "transit": transit})

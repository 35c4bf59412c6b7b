"""The only code that reads or writes WASM linear memory by address.

Every access is bounds-checked against the memory's current length before a
raw memmove; an out-of-range pointer from the module is a bug in the module
and raises MemoryBoundsError instead of reading the host's memory.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Callable

from vocabulary.errors import EngineError


class MemoryBoundsError(EngineError):
    """The module handed back an address outside its memory."""


class LinearMemory:
    """Bounds-checked access to one instance's memory.

    `base` and `length` are asked for on every access: memory can grow
    during any call into the module.
    """

    def __init__(self, base: Callable[[], int], length: Callable[[], int]) -> None:
        self._base, self._length = base, length

    def _check(self, address: int, size: int) -> int:
        length = self._length()
        if address < 0 or size < 0 or address + size > length:
            raise MemoryBoundsError(-1, f"[{address}, {address + size}) is outside linear memory of {length} bytes")
        return self._base() + address

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        ctypes.memmove(self._check(address, len(data)), bytes(data), len(data))

    def read(self, address: int, size: int) -> bytes:
        return ctypes.string_at(self._check(address, size), size)

    def view(self, address: int, size: int) -> memoryview:
        """A zero-copy view, valid until the next call into the module."""
        pointer = self._check(address, size)
        return memoryview((ctypes.c_ubyte * size).from_address(pointer)).cast("B")

    def u32(self, address: int) -> int:
        value: int = struct.unpack("<I", self.read(address, 4))[0]
        return value

    def size_prefixed(self, address: int) -> memoryview:
        """The bytes after a u32 length word at `address` (zero-copy)."""
        return self.view(address + 4, self.u32(address))

    def utf16(self, address: int) -> str:
        """An AssemblyScript string: UTF-16LE, its byte length in the u32 before it."""
        if address < 4:
            return ""
        return self.read(address, self.u32(address - 4)).decode("utf-16-le", errors="replace")

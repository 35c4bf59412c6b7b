"""Starting from what PostgreSQL holds: load the world and prove it whole.

The world read back must hash to what the world header says and to the
newest command log row, at the same tick. Anything else means a write went
missing or was applied twice, and the server refuses to run on it.
"""

from __future__ import annotations

from typing import Protocol

from vocabulary.errors import RecoveryError
from vocabulary.hashing import world_hash
from vocabulary.types import WorldData


class RecoverableStore(Protocol):
    async def load_world(self) -> WorldData: ...
    async def stored_hash(self) -> tuple[int, bytes] | None: ...
    async def last_log(self) -> tuple[int, bytes] | None: ...


async def recover(store: RecoverableStore) -> WorldData:
    header = await store.stored_hash()
    if header is None:
        raise RecoveryError("the database holds no world: seed one with `fluxworld world load WORLD`")
    world = await store.load_world()
    digest = bytes.fromhex(world_hash(world))
    tick, stored = header
    if (world.tick, digest) != (tick, stored):
        raise RecoveryError(f"the stored world hashes to {digest.hex()} at tick {world.tick}, but its header "
                            f"says {stored.hex()} at tick {tick}: the fragment tables and the header disagree")
    last = await store.last_log()
    if last is not None and last != (world.tick, digest):
        raise RecoveryError(f"the stored world at tick {world.tick} hashes to {digest.hex()}, but the newest "
                            f"command log row (tick {last[0]}) says {last[1].hex()}")
    return world

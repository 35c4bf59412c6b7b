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
    async def stored_hash(self) -> tuple[int, bytes] | None: ...
    async def recovery_state(self) -> tuple[WorldData, tuple[int, bytes], tuple[int, bytes] | None]: ...


async def recover(store: RecoverableStore) -> WorldData:
    """Everything is read in one snapshot, so a server killed with its tick statement in flight
    (which may still commit, as one statement does) is seen committed or not, never half."""
    if await store.stored_hash() is None:
        raise RecoveryError("the database holds no world: seed one with `fluxworld world load WORLD`")
    world, header, last = await store.recovery_state()
    digest = bytes.fromhex(world_hash(world))
    tick, stored = header
    if (world.tick, digest) != (tick, stored):
        raise RecoveryError(f"the stored world hashes to {digest.hex()} at tick {world.tick}, but its header "
                            f"says {stored.hex()} at tick {tick}: the fragment tables and the header disagree")
    if last is not None and last != (world.tick, digest):
        raise RecoveryError(f"the stored world at tick {world.tick} hashes to {digest.hex()}, but the newest "
                            f"command log row (tick {last[0]}) says {last[1].hex()}")
    return world

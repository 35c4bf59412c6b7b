"""Starting from what PostgreSQL holds: load the world and prove it whole.

The world read back from the fragment tables must hash to what the world
header says, at the same tick, and to the newest command log row. The
fragment tables are the newest snapshot of the world with the log after it
empty, so recovery reads them, not an older snapshot and the log after it:
that would replay minutes of ticks on every start. When the log has been
pruned to nothing (`fluxworld log prune --keep-ticks 0`), the newest world
snapshot must then be of the same tick with the same hash; a log that ends,
or a snapshot that stands, at another tick means a write went missing or
was applied twice, and the server refuses to run on it.
"""

from __future__ import annotations

from typing import Protocol

from vocabulary.errors import RecoveryError
from vocabulary.hashing import world_hash
from vocabulary.types import RecoveryState, WorldData


class RecoverableStore(Protocol):
    async def stored_hash(self) -> tuple[int, bytes] | None: ...
    async def recovery_state(self) -> RecoveryState: ...


async def recover(store: RecoverableStore) -> WorldData:
    """Everything is read in one snapshot, so a server killed with its tick statement in flight
    (which may still commit, as one statement does) is seen committed or not, never half."""
    if await store.stored_hash() is None:
        raise RecoveryError("the database holds no world: seed one with `fluxworld world load WORLD`")
    state = await store.recovery_state()
    world = state.world
    digest = bytes.fromhex(world_hash(world))
    tick, stored = state.header
    if (world.tick, digest) != (tick, stored):
        raise RecoveryError(f"the stored world hashes to {digest.hex()} at tick {world.tick}, but its header "
                            f"says {stored.hex()} at tick {tick}: the fragment tables and the header disagree")
    last, snapshot = state.last_log, state.last_snapshot
    if last is not None and last != (world.tick, digest):
        raise RecoveryError(f"the stored world at tick {world.tick} hashes to {digest.hex()}, but the newest "
                            f"command log row (tick {last[0]}) says {last[1].hex()}")
    if snapshot is not None and snapshot[0] > world.tick:
        raise RecoveryError(f"the stored world is at tick {world.tick}, but a world snapshot of the later "
                            f"tick {snapshot[0]} is stored")
    if last is None and snapshot is not None and snapshot != (world.tick, digest):
        raise RecoveryError(f"the stored world at tick {world.tick} hashes to {digest.hex()}, the command log is "
                            f"empty, and the newest world snapshot (tick {snapshot[0]}) says {snapshot[1].hex()}: "
                            "the ticks after that snapshot are missing from the log")
    return world

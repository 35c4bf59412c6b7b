"""The records that cross between the parts of fluxworld. Imports only the generated layout."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from schema._generated.layout import COMMAND_SIZE


@dataclass(frozen=True)
class TickResult:
    """What one tick reports, in the binary layouts of schema/world.fbs.

    Both engines return exactly this; parity means equality of every field.
    `effects` is packed Effect structs, `changed` packed Entity records in
    ascending id, `recipients` and `removed` little-endian u64 arrays.
    `previous` holds, beside each changed record, that entity's record at the
    start of the tick (all zero for an entity the tick created), so that
    plan need not look it up. `zones` is every Zone struct after the tick (a
    drop moves its zone's next_id) and `transit` the Transit structs in flight
    after it, in order: a traveller's record is there, not in `changed`.
    """

    tick: int
    next_id: int
    effects: bytes
    recipients: bytes
    changed: bytes
    removed: bytes
    previous: bytes = b""
    zones: bytes = b""
    transit: bytes = b""

    def with_sightings(self, sightings: bytes) -> TickResult:
        """The result with the tick's area-of-interest effects after the others
        (Rules.sightings() gives them separately: docs/abi.md)."""
        return replace(self, effects=self.effects + sightings)


@dataclass(frozen=True)
class WorldData:
    """A whole world in its binary layout: what world files load into.

    `zones` is packed Zone structs and `entities` packed Entity records, both
    in ascending id, and `transit` packed Transit structs in the world's
    transit order (travellers by id, then credits and refunds as made): the
    canonical encoding's payloads (docs/rules.md, "World hash").
    """

    seed: int
    tick: int
    next_id: int
    zones: bytes
    entities: bytes
    transit: bytes = b""


@dataclass(frozen=True)
class RecoveryState:
    """What recovery checks, read in one database snapshot: the world in the fragment tables, and the
    (tick, world hash) of the header, of the newest command log row and of the newest world snapshot."""

    world: WorldData
    header: tuple[int, bytes]
    last_log: tuple[int, bytes] | None
    last_snapshot: tuple[int, bytes] | None


@dataclass(frozen=True)
class Batch:
    """One tick's accepted commands: packed Command structs plus their text.

    Command.text_offset/text_len index into `text` (join names, say texts).
    `source` names where the batch came from (file and line) for errors.
    `arrivals`, in a zone group's log only (docs/scale-out.md): what its tick
    took from the mail, the world's transit before the tick runs.
    """

    tick: int
    commands: bytes
    text: bytes
    source: str = ""
    arrivals: bytes | None = None


@dataclass(frozen=True)
class SqlStatement:
    """One parameterised statement: values only ever travel in `args`."""

    sql: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True)
class SqlCopy:
    """Bulk rows: COPY `records` into `temp_table` (a per-connection temp copy of
    `table`), from where the tick's statement moves them into `table`."""

    table: str
    temp_table: str
    columns: tuple[str, ...]
    records: list[tuple[object, ...]]


@dataclass(frozen=True)
class TickWrite:
    """Everything one tick commits, atomically (the actuate stage).

    First each of `copies` fills its temp table; then `statement` runs: ONE
    statement (pipeline/stages/plan.py) that moves the world header to
    (tick, next_id, world_hash), appends the command log row (tick, commands,
    text, world_hash) -- the accepted batch exactly as replay reads it -- and
    writes every changed fragment. It returns the new tick, or NULL having
    written nothing when the stored world is not before `tick`.
    """

    tick: int
    next_id: int
    world_hash: bytes
    commands: bytes
    text: bytes
    statement: SqlStatement
    copies: tuple[SqlCopy, ...] = ()
    rows: int = 0                       # fragment rows written or deleted


@dataclass(frozen=True)
class Incoming:
    """One command as a transport received it. `sender` is the sender's player
    entity id (None: trusted, e.g. a recorded batch)."""

    command: Any
    sender: int | None
    received: float                     # time.monotonic() at arrival
    reply_to: object = None             # the transport's handle for answering


@dataclass(frozen=True)
class CommandBlock:
    """Many commands at once, already packed: what an in-process source (the
    load test's simulated players) puts in the inbox instead of one dict each.

    `commands` is packed Command structs indexing into `text`, like a Batch;
    `senders` holds each command's sender entity id (little-endian u64; 0 for
    trusted input). Negotiate applies the same checks as to single commands,
    vectorised where it can.
    """

    commands: bytes
    text: bytes
    senders: bytes
    received: float                     # time.monotonic() at arrival

    def __len__(self) -> int:
        return len(self.commands) // COMMAND_SIZE


@dataclass(frozen=True)
class Unreadable:
    """What a transport puts in `Incoming.command` when it could not read a
    command at all (bad syntax, an oversized stanza): negotiate refuses it
    with `reason`, so every refusal is answered and counted in one place."""

    reason: str


@dataclass(frozen=True)
class Refusal:
    incoming: Incoming
    reason: str

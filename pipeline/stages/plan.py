"""Stage 5, plan: which fragments changed, and the SQL that writes them.

The reducers report the changed records and what each was before the tick;
this stage compares the two, fragment by fragment (persistence/fragments.py),
so a write that changes nothing is dropped and a move writes one narrow
position row. The comparison is vectorised with numpy over the changed
records only: O(changes), never O(world).

The whole tick is ONE statement, so that it costs one round trip and the
server works on it while the next tick is computed (the tick loop overlaps
them): data-modifying CTEs move the world header, append the command log row
and upsert every changed fragment, in one implicit transaction. Every write
is joined to the header's update, so when the stored world is not before
this tick (the header does not move) nothing at all is written and the
statement returns NULL. Fragment rows travel as `unnest($n::bigint[], ...)`
arrays up to UNNEST_MAX rows a table; beyond that they are COPYed into a temp
table first and the statement moves them from there. Measured here, the two
upsert at the same speed from 1,000 to 30,000 rows (about 7 µs a row of the
server's time), so COPY is kept for huge ticks only: each COPY costs round
trips of its own that cannot overlap with computing the next tick. Values
only ever travel as parameters.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from persistence.codec import column_values
from persistence.fragments import COLUMN_TYPES, FRAGMENTS, Fragment, field_bytes
from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE, ZONE_DTYPE, Kind
from vocabulary.types import SqlCopy, SqlStatement, TickWrite

from ..context import TickContext

UNNEST_MAX = 20_000
_KIND_OFFSET = field_bytes("kind")[0]


def _fragment_bytes() -> np.ndarray[Any, Any]:
    """Which bytes of a record each fragment's fields are (bytes x fragments)."""
    mine = np.zeros((ENTITY_SIZE, len(FRAGMENTS)), dtype=bool)
    for f, fragment in enumerate(FRAGMENTS):
        for start, end in fragment.byte_ranges():
            mine[start:end, f] = True
    return mine


_FRAGMENT_BYTES = _fragment_bytes()
_KIND_HAS = np.array([[kind in fragment.kinds for fragment in FRAGMENTS] for kind in range(256)], dtype=bool)


def _upsert_tail(fragment: Fragment) -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in fragment.fields)
    return f"ON CONFLICT (id) DO UPDATE SET {updates}"


# $1..$10 are the tick's own: tick, next_id, world_hash, commands, text, then what is in flight after
# it (which the log row keeps as what the tick sent), its zones' ids and next_ids (a gold drop moves its
# zone's; the others are written unchanged), what it took from the mail of a sharded world's groups and
# the hash of its group's zones (docs/scale-out.md; empty and NULL for a world in one process).
# The fence: a server that took the world (WorldStore.take_writer) writes only while the header holds its
# token; a connection without one (a tool, a test) is not fenced.
_HEADER = ("header AS (UPDATE world SET tick = $1, next_id = $2, world_hash = $3, transit = $6 WHERE tick < $1 "
           "AND fence = coalesce(nullif(current_setting('fluxworld.fence', true), '')::bigint, fence) RETURNING tick), "
           "log AS (INSERT INTO command_log (tick, commands, text, world_hash, sent, arrivals, zone_hash) "
           "SELECT $1, $4, $5, $3, $6, $9, $10 FROM header), "
           "zones AS (UPDATE zone SET next_id = z.next_id FROM unnest($7::bigint[], $8::bigint[]) AS z(id, next_id), "
           "header WHERE zone.id = z.id AND zone.next_id <> z.next_id)")
# A shard registers the players its tick created, and wakes the shards waiting for its tick (NOTIFY is sent
# at commit); the main SELECT reads the notifying CTE, since a SELECT CTE nobody reads never runs.
_NOTIFY = "notify AS (SELECT pg_notify('fluxworld_tick', tick::text) FROM header)"
_FINAL = {False: "SELECT tick FROM header", True: "SELECT header.tick FROM header, notify"}


def _registry_cte(arg: int) -> str:
    return (f"registered AS (INSERT INTO player_registry (id, tick) SELECT unnest(${arg}::bigint[]), $1 FROM header "
            "ON CONFLICT (id) DO NOTHING)")


def _delete_cte(arg: int) -> str:
    return f"gone AS (DELETE FROM entity_identity WHERE id = ANY(${arg}::bigint[]) AND EXISTS (SELECT 1 FROM header))"


def _unnest_cte(fragment: Fragment, first_arg: int) -> str:
    cols = ", ".join(fragment.columns)
    arrays = ", ".join(f"${i}::{COLUMN_TYPES[c]}[]" for i, c in enumerate(fragment.columns, start=first_arg))
    return (f"{fragment.table}_rows AS (INSERT INTO {fragment.table} ({cols}) "
            f"SELECT u.* FROM unnest({arrays}) AS u({cols}), header {_upsert_tail(fragment)})")


def _copied_cte(fragment: Fragment) -> str:
    cols = ", ".join(fragment.columns)
    return (f"tmp_{fragment.table}_rows AS (DELETE FROM tmp_{fragment.table} RETURNING *), "
            f"{fragment.table}_rows AS (INSERT INTO {fragment.table} ({cols}) "
            f"SELECT {', '.join(f'm.{c}' for c in fragment.columns)} FROM tmp_{fragment.table}_rows AS m, header "
            f"{_upsert_tail(fragment)})")


Columns = list[list[object]]   # one list of values per column, in Fragment.columns order


def fragment_changes(new: bytes, previous: bytes) -> dict[str, Columns]:
    """Per fragment table, the columns of the rows to write: fragments of `new` records that differ.

    `new` is packed Entity records; `previous` beside them, each the record of
    the same id before the tick, all zero (id 0) for an entity that did not
    exist. The reducers report both (TickResult.changed and .previous).
    """
    count = len(new) // ENTITY_SIZE
    if count == 0:
        return {}
    if len(previous) != len(new):
        raise ValueError(f"{len(previous)} bytes of previous records for {len(new)} bytes of changed ones")
    new_bytes = np.frombuffer(new, dtype=np.uint8).reshape(count, ENTITY_SIZE)
    old_bytes = np.frombuffer(previous, dtype=np.uint8).reshape(count, ENTITY_SIZE)
    created = np.frombuffer(previous, dtype=ENTITY_DTYPE)["id"] == 0
    kind = new_bytes[:, _KIND_OFFSET]
    # A new entity, or an id reclaimed by another kind, writes every fragment it has.
    whole = created | (kind != old_bytes[:, _KIND_OFFSET])
    # Which fragments differ, one row per record: the bytes that differ, through each fragment's bytes.
    differ = ((new_bytes != old_bytes) @ _FRAGMENT_BYTES) | whole[:, None]
    differ &= _KIND_HAS[kind]
    records = np.frombuffer(new, dtype=ENTITY_DTYPE)
    out: dict[str, Columns] = {}
    for f, fragment in enumerate(FRAGMENTS):
        if not differ[:, f].any():
            continue
        chosen = records[differ[:, f]]
        out[fragment.table] = [column_values(chosen, c) for c in fragment.columns]
    return out


@dataclass(frozen=True)
class ShardPart:
    """What a shard's tick writes beside an unsharded one's (docs/scale-out.md)."""

    arrivals: bytes           # packed Transit records it took from the groups' mail, in the order it took them
    zone_hash: bytes          # its group's zone hash after the tick
    players: list[int]        # the players it created, for the registry


def tick_write(tick: int, next_id: int, world_hash: bytes, commands: bytes, text: bytes,
               changes: dict[str, Columns], removed: list[int], *, transit: bytes = b"",
               zones: bytes = b"", shard: ShardPart | None = None) -> TickWrite:
    """What one tick commits: its header, its log row and its fragment `changes`, less `removed`;
    `transit` (packed Transit structs) replaces what is in flight, `zones` (packed Zone structs)
    carries the zones' next_ids."""
    statement, copies = tick_statement((tick, next_id, world_hash, commands, text), changes, removed,
                                       transit=transit, zones=zones, shard=shard)
    return TickWrite(tick=tick, next_id=next_id, world_hash=world_hash, commands=commands, text=text,
                     statement=statement, copies=copies,
                     rows=len(removed) + sum(len(columns[0]) for columns in changes.values()))


def tick_statement(head: tuple[int, int, bytes, bytes, bytes], changes: dict[str, Columns],
                   removed: list[int], *, transit: bytes = b"", zones: bytes = b"",
                   shard: ShardPart | None = None) -> tuple[SqlStatement, tuple[SqlCopy, ...]]:
    """The tick's one statement and the COPYs that must run before it.

    `head` is (tick, next_id, world_hash, commands, text). An id in both
    `changes` and `removed` was reclaimed within the tick (an item picked up,
    then its id joined as a player): it is upserted whole and not deleted,
    since one statement cannot both delete and upsert a row. Upserting writes
    every fragment the new kind has, and the item's fragments are a subset of
    those, so nothing of the old entity is left behind.
    """
    zone_array = np.frombuffer(zones, dtype=ZONE_DTYPE)
    ctes, copies = [_HEADER], []
    args: list[object] = [*head, transit, zone_array["id"].astype(np.int64).tolist(),
                          zone_array["next_id"].astype(np.int64).tolist(),
                          shard.arrivals if shard else b"", shard.zone_hash if shard else None]
    if shard is not None:
        ctes.append(_NOTIFY)
        if shard.players:
            ctes.append(_registry_cte(len(args) + 1))
            args.append(shard.players)
    if changes.get("entity_identity"):
        reclaimed = set(changes["entity_identity"][0])
        removed = [i for i in removed if i not in reclaimed]
    if removed:
        ctes.append(_delete_cte(len(args) + 1))
        args.append(removed)
    for fragment in FRAGMENTS:
        columns = changes.get(fragment.table)
        if not columns or not columns[0]:
            continue
        if len(columns[0]) <= UNNEST_MAX:
            ctes.append(_unnest_cte(fragment, len(args) + 1))
            args.extend(columns)
        else:   # COPY wants rows: built only here
            ctes.append(_copied_cte(fragment))
            copies.append(SqlCopy(fragment.table, f"tmp_{fragment.table}", fragment.columns, list(zip(*columns))))
    return SqlStatement(_statement_text(tuple(ctes), shard is not None), tuple(args)), tuple(copies)


@functools.lru_cache(maxsize=256)
def _statement_text(ctes: tuple[str, ...], notify: bool) -> str:
    """Few shapes recur (which fragments changed, which were copied): the same text each
    time, so asyncpg's statement cache prepares each shape once."""
    return f"WITH {', '.join(ctes)} {_FINAL[notify]}"


class Plan:
    async def __call__(self, ctx: TickContext) -> TickContext:
        result = ctx.result
        assert result is not None, "plan runs after transform"
        changes = fragment_changes(result.changed, result.previous)
        removed = [i for (i,) in struct.iter_unpack("<Q", result.removed)]
        if ctx.hashing is not None:
            ctx.world_hash, ctx.zone_hashes = await ctx.hashing
        assert ctx.world_hash is not None, "transform hashes the world"
        shard = None
        if ctx.arrivals is not None:
            assert len(ctx.zone_hashes) == 1, "a shard's engine thread takes its zones' zone hash"
            shard = ShardPart(ctx.arrivals, ctx.zone_hashes[0], created_players(result.changed, result.previous))
        ctx.write = tick_write(result.tick, result.next_id, ctx.world_hash, ctx.batch.commands, ctx.batch.text,
                               changes, removed, transit=result.transit, zones=result.zones, shard=shard)
        return ctx


def created_players(changed: bytes, previous: bytes) -> list[int]:
    """The ids of the players a tick made: new entities, or ids reclaimed by a player."""
    new = np.frombuffer(changed, dtype=ENTITY_DTYPE)
    old = np.frombuffer(previous, dtype=ENTITY_DTYPE)
    made = (new["kind"] == Kind.player) & ((old["id"] == 0) | (old["kind"] != Kind.player))
    return [int(i) for i in new["id"][made]]

"""Stage 5, plan: which fragments changed, and the SQL that writes them.

The reducers report the changed records; this stage compares each with its
record in the previous view, fragment by fragment (persistence/fragments.py),
so a write that changes nothing is dropped and a move writes one narrow
position row. The comparison is vectorised with numpy over the changed
records only: O(changes), never O(world).

SQL is generated per fragment table, values only ever as parameters:
up to UNNEST_MAX rows an `INSERT ... SELECT FROM unnest($1::bigint[], ...)
ON CONFLICT DO UPDATE`; beyond that a COPY into a temp table and one upsert
from it (MEASURED.md: the faster of the two at each size).
"""

from __future__ import annotations

import struct

import numpy as np

from persistence.codec import column_values
from persistence.fragments import COLUMN_TYPES, FRAGMENTS, Fragment, field_bytes
from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE

from ..context import TickContext
from ..types import SqlCopy, SqlStatement, TickWrite

UNNEST_MAX = 1_000
_KIND_OFFSET = field_bytes("kind")[0]


def _upsert_tail(fragment: Fragment) -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in fragment.fields)
    return f"ON CONFLICT (id) DO UPDATE SET {updates}"


def _unnest_sql(fragment: Fragment) -> str:
    arrays = ", ".join(f"${i}::{COLUMN_TYPES[c]}[]" for i, c in enumerate(fragment.columns, start=1))
    return (f"INSERT INTO {fragment.table} ({', '.join(fragment.columns)}) "
            f"SELECT * FROM unnest({arrays}) {_upsert_tail(fragment)}")


def _copy_then_sql(fragment: Fragment) -> str:
    cols = ", ".join(fragment.columns)
    return f"INSERT INTO {fragment.table} ({cols}) SELECT {cols} FROM tmp_{fragment.table} {_upsert_tail(fragment)}"


# The SQL texts are fixed per fragment: built once, reused every tick.
_UNNEST = {f.table: _unnest_sql(f) for f in FRAGMENTS}
_COPY_THEN = {f.table: _copy_then_sql(f) for f in FRAGMENTS}
DELETE_SQL = "DELETE FROM entity_identity WHERE id = ANY($1::bigint[])"


Columns = list[list[object]]   # one list of values per column, in Fragment.columns order


def fragment_changes(new: bytes, previous: list[bytes | None]) -> dict[str, Columns]:
    """Per fragment table, the columns of the rows to write: fragments of `new` records that differ.

    `new` is packed Entity records; `previous[i]` the record of the same id
    before the tick, or None for an entity that did not exist.
    """
    count = len(new) // ENTITY_SIZE
    if count == 0:
        return {}
    new_bytes = np.frombuffer(new, dtype=np.uint8).reshape(count, ENTITY_SIZE)
    blank = bytes(ENTITY_SIZE)
    old_bytes = np.frombuffer(b"".join(p or blank for p in previous), dtype=np.uint8).reshape(count, ENTITY_SIZE)
    created = np.fromiter((p is None for p in previous), dtype=bool, count=count)
    kind = new_bytes[:, _KIND_OFFSET]
    # A new entity, or an id reclaimed by another kind, writes every fragment it has.
    whole = created | (kind != old_bytes[:, _KIND_OFFSET])
    records = np.frombuffer(new, dtype=ENTITY_DTYPE)
    out: dict[str, Columns] = {}
    for fragment in FRAGMENTS:
        differs = whole.copy()
        for start, end in fragment.byte_ranges():
            differs |= (new_bytes[:, start:end] != old_bytes[:, start:end]).any(axis=1)
        differs &= np.isin(kind, list(fragment.kinds))
        if not differs.any():
            continue
        chosen = records[differs]
        out[fragment.table] = [column_values(chosen, c) for c in fragment.columns]
    return out


def fragment_statements(changes: dict[str, Columns], removed: list[int]) -> tuple[SqlStatement | SqlCopy, ...]:
    """Deletes first (they cascade), then identity before the fragments that reference it.

    unnest takes the columns as they are; COPY wants rows, built only then."""
    out: list[SqlStatement | SqlCopy] = []
    if removed:
        out.append(SqlStatement(DELETE_SQL, (removed,)))
    for fragment in FRAGMENTS:
        columns = changes.get(fragment.table)
        if not columns or not columns[0]:
            continue
        if len(columns[0]) <= UNNEST_MAX:
            out.append(SqlStatement(_UNNEST[fragment.table], tuple(columns)))
        else:
            out.append(SqlCopy(fragment.table, f"tmp_{fragment.table}", fragment.columns, list(zip(*columns)),
                               SqlStatement(_COPY_THEN[fragment.table])))
    return tuple(out)


class Plan:
    async def __call__(self, ctx: TickContext) -> TickContext:
        result = ctx.result
        assert result is not None and ctx.world_hash is not None, "plan runs after transform"
        entities = ctx.view.entities
        ids = np.frombuffer(result.changed, dtype=ENTITY_DTYPE)["id"].tolist()
        changes = fragment_changes(result.changed, [entities.get(i) for i in ids])
        removed = [i for (i,) in struct.iter_unpack("<Q", result.removed)]
        ctx.write = TickWrite(tick=result.tick, next_id=result.next_id, world_hash=ctx.world_hash,
                              commands=ctx.batch.commands, text=ctx.batch.text,
                              statements=fragment_statements(changes, removed),
                              rows=len(removed) + sum(len(columns[0]) for columns in changes.values()))
        return ctx

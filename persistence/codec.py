"""Packed Entity records <-> fragment table columns, vectorised with numpy.

Splitting: each fragment takes the records whose kind has it and hands out
its columns as Python lists (what COPY and unnest parameters want).
Assembling: each table's columns arrive as arrays (one `array_agg` per
column, rows in whatever order PostgreSQL read them), are placed by id into
a zeroed record array, and come out as packed records in ascending id. A
field no fragment of the entity's kind carries stays 0, exactly as
pipeline/formats/worldfile.py packs it, so the world hash survives a round trip.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from schema._generated.layout import ENTITY_DTYPE
from vocabulary.records import NAME_MAX

from .errors import DatabaseError
from .fragments import FRAGMENTS, Fragment

Columns = Mapping[str, Sequence[object]]   # column name -> values, one table's rows


def fragment_columns(records: np.ndarray, fragment: Fragment) -> list[list[object]]:
    """`fragment`'s columns for those of `records` whose kind has it."""
    chosen = records[np.isin(records["kind"], sorted(fragment.kinds))]
    return [column_values(chosen, name) for name in fragment.columns]


def fragment_rows(records: np.ndarray, fragment: Fragment) -> list[tuple[object, ...]]:
    return list(zip(*fragment_columns(records, fragment)))


def column_values(records: np.ndarray, field: str) -> list[object]:
    if field == "name":
        return names(records)
    if field == "online":
        return list(records["online"].astype(bool).tolist())
    return list(records[field].tolist())


def names(records: np.ndarray) -> list[object]:
    """The names as text. A name's bytes after name_len are zero in a canonical
    record, so the 32-byte field read as a NUL-stripped bytes string is the name;
    a name holding NUL (which text cannot store either) is refused."""
    raw = np.ascontiguousarray(records["name"]).view(f"S{NAME_MAX}").ravel()
    if (np.char.str_len(raw) != records["name_len"]).any():
        bad = records["id"][np.char.str_len(raw) != records["name_len"]][0]
        raise ValueError(f"entity {bad}: name is not canonical (NUL bytes, or bytes past name_len)")
    return [b.decode() for b in raw.tolist()]


def assemble(tables: Mapping[str, Columns]) -> bytes:
    """Packed records, ascending id, from every fragment table's columns.

    Raises DatabaseError when the tables disagree: a fragment row whose
    entity's kind lacks that fragment, or an entity missing a fragment row.
    """
    identity = tables["entity_identity"]
    ids = np.sort(np.asarray(identity["id"], dtype=np.uint64))
    records = np.zeros(len(ids), dtype=ENTITY_DTYPE)
    records["id"] = ids
    for fragment in FRAGMENTS:
        columns = tables[fragment.table]
        at = _positions(ids, np.asarray(columns["id"], dtype=np.uint64), fragment.table)
        # identity first: every other fragment's check reads `kind`
        for field in fragment.fields:
            _put(records, at, field, columns[field])
        if fragment.table != "entity_identity":
            _check_kinds(records, at, fragment)
    return records.tobytes()


def _positions(ids: np.ndarray, row_ids: np.ndarray, table: str) -> np.ndarray:
    at = np.searchsorted(ids, row_ids)
    found = at < len(ids)
    found[found] = ids[at[found]] == row_ids[found]
    if not found.all():
        raise DatabaseError(f"{table} has a row for entity {row_ids[~found][0]}, which has no identity row")
    return at


def _check_kinds(records: np.ndarray, at: np.ndarray, fragment: Fragment) -> None:
    kinds = sorted(fragment.kinds)
    wrong = ~np.isin(records["kind"][at], kinds)
    if wrong.any():
        raise DatabaseError(f"{fragment.table} has a row for entity {records['id'][at][wrong][0]}, "
                            f"whose kind {records['kind'][at][wrong][0]} has no such fragment")
    expected = np.isin(records["kind"], kinds)
    if expected.sum() != len(at):
        has = np.zeros(len(records), dtype=bool)
        has[at] = True
        missing = records["id"][expected & ~has][0]
        raise DatabaseError(f"entity {missing} has no {fragment.table} row")


def _put(records: np.ndarray, at: np.ndarray, field: str, values: Sequence[object]) -> None:
    if field != "name":
        records[field][at] = np.asarray(values, dtype=records.dtype.fields[field][0])  # type: ignore[index]
        return
    encoded = [str(v).encode() for v in values]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    if (lengths > NAME_MAX).any():
        raise DatabaseError(f"a name in entity_identity is longer than {NAME_MAX} bytes")
    padded = np.array(encoded, dtype=f"S{NAME_MAX}")  # NUL-padded to 32 bytes
    records["name"][at] = padded.view(np.uint8).reshape(-1, NAME_MAX)
    records["name_len"][at] = lengths

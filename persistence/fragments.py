"""How an entity record is split into fragments, one PostgreSQL table each.

A fragment is a group of fields that change together. The plan stage
compares a changed record with its previous version fragment by fragment and
writes only the fragments that differ, so a move writes one narrow row of
`position`, not the whole entity. Migrations (persistence/migrations/) create
exactly these tables; a test checks the two agree.

Which fragments an entity has depends on its kind: every entity has
identity, position and wealth; players and npcs have vitals; players have
session. Integers are stored as bigint/integer (every value fits: ids, ticks
and gold stay below 2^62, docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from schema._generated.layout import ENTITY_DTYPE, Kind


@dataclass(frozen=True)
class Fragment:
    table: str
    fields: tuple[str, ...]          # Entity fields, in column order after `id`
    kinds: frozenset[int]            # entity kinds that have this fragment

    @property
    def columns(self) -> tuple[str, ...]:
        return ("id", *self.fields)

    def byte_ranges(self) -> list[tuple[int, int]]:
        """(start, end) of each field in the 120-byte Entity record."""
        out = []
        for name in self.fields:
            start, end = field_bytes(name)
            if name == "name":   # the name is its length byte and its 32 bytes
                start = field_bytes("name_len")[0]
            out.append((start, end))
        return out


def field_bytes(name: str) -> tuple[int, int]:
    """(start, end) of one field in the Entity record."""
    fields = ENTITY_DTYPE.fields
    assert fields is not None
    dtype, offset = fields[name][:2]
    return offset, offset + dtype.itemsize


ALL = frozenset({Kind.player, Kind.npc, Kind.item})
LIVING = frozenset({Kind.player, Kind.npc})

FRAGMENTS: tuple[Fragment, ...] = (
    # What an entity is; written when it is created (an id can be reclaimed
    # by a join, so this too is upserted).
    Fragment("entity_identity", ("kind", "item_type", "name", "home_x", "home_y"), ALL),
    Fragment("entity_position", ("zone", "x", "y"), ALL),
    Fragment("entity_wealth", ("gold", "potions", "amount"), ALL),
    Fragment("entity_vitals", ("hp", "max_hp", "attack", "defense", "next_action_tick", "respawn_tick"), LIVING),
    Fragment("entity_session", ("online", "last_seq"), frozenset({Kind.player})),
)

# SQL column types by Entity field (name is the decoded UTF-8 text).
COLUMN_TYPES: dict[str, str] = {
    "id": "bigint", "kind": "smallint", "item_type": "smallint", "name": "text",
    "home_x": "integer", "home_y": "integer", "zone": "bigint", "x": "integer", "y": "integer",
    "gold": "bigint", "potions": "integer", "amount": "bigint", "hp": "integer", "max_hp": "integer",
    "attack": "integer", "defense": "integer", "next_action_tick": "bigint", "respawn_tick": "bigint",
    "online": "boolean", "last_seq": "bigint",
}

"""The first schema: one table per entity fragment, zones, the world header, the command log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

The fragment tables are written out here rather than generated from
persistence/fragments.py: a revision is a fixed record of what it did, and
tests/persistence/test_migrations.py checks the two agree. Every column is
NOT NULL: a record has no absent fields, only zeros. The other fragment
tables reference entity_identity with deferred checks, so a tick may write
its fragments in any order, and deleting an identity removes the rest.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _fragment(table: str, *columns: sa.Column[Any], references: bool = True) -> None:
    constraints: list[sa.Constraint] = []
    if references:
        constraints.append(sa.ForeignKeyConstraint(["id"], ["entity_identity.id"], ondelete="CASCADE",
                                                   deferrable=True, initially="DEFERRED"))
    op.create_table(table, sa.Column("id", sa.BigInteger, primary_key=True), *columns, *constraints)


def _col(name: str, type_: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False)


def upgrade() -> None:
    _fragment("entity_identity",
              _col("kind", sa.SmallInteger), _col("item_type", sa.SmallInteger), _col("name", sa.Text),
              _col("home_x", sa.Integer), _col("home_y", sa.Integer), references=False)
    _fragment("entity_position", _col("zone", sa.BigInteger), _col("x", sa.Integer), _col("y", sa.Integer))
    _fragment("entity_wealth", _col("gold", sa.BigInteger), _col("potions", sa.Integer), _col("amount", sa.BigInteger))
    _fragment("entity_vitals",
              _col("hp", sa.Integer), _col("max_hp", sa.Integer), _col("attack", sa.Integer),
              _col("defense", sa.Integer), _col("next_action_tick", sa.BigInteger),
              _col("respawn_tick", sa.BigInteger))
    _fragment("entity_session", _col("online", sa.Boolean), _col("last_seq", sa.BigInteger))

    op.create_table(
        "zone",
        sa.Column("id", sa.BigInteger, primary_key=True),
        _col("width", sa.Integer), _col("height", sa.Integer),
        _col("spawn_x", sa.Integer), _col("spawn_y", sa.Integer),
    )
    # At most one row: the primary key is a boolean that must be true.
    op.create_table(
        "world",
        sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.true()),
        _col("seed", sa.BigInteger), _col("tick", sa.BigInteger), _col("next_id", sa.BigInteger),
        _col("world_hash", sa.LargeBinary),
        sa.CheckConstraint("singleton", name="world_singleton"),
    )
    # One row per committed tick: the primary key is what refuses a tick applied twice.
    op.create_table(
        "command_log",
        sa.Column("tick", sa.BigInteger, primary_key=True),
        _col("commands", sa.LargeBinary), _col("text", sa.LargeBinary), _col("world_hash", sa.LargeBinary),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("command_log", "world", "zone", "entity_session", "entity_vitals", "entity_wealth",
                  "entity_position", "entity_identity"):
        op.drop_table(table)

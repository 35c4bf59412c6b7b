"""Zones as shards: leases, what each tick sent and received, who is a player.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

docs/scale-out.md. A sharded world keeps each zone group (the zones one
shard process ticks) in a database of its own, every table as an unsharded
world has them; these columns and tables are what the shards add:

- `world.lease_holder`, `world.lease_until`: the shard holding the group.
  Taking the group increments `fence` (0004), so a holder that lost its
  lease (paused, partitioned) can never write again.
- `command_log.sent`: the packed Transit records the tick sent (the world's
  transit after it), which other groups read as their next tick's mail;
  `command_log.arrivals`: what the tick took from every group's mail before
  it ran, so the group's log replays alone; `command_log.zone_hash`: the
  hash of the group's zones after the tick (docs/rules.md "Zone hash"),
  which a replay of all groups' logs in one process must match.
- `player_registry`: every player the group created, with its tick. Players
  are never removed nor change kind, so a row, once committed, answers "is
  this id a player?" for every later tick, whichever group holds it now.
- `zone_group`: in the world's own database (the one split), the groups and
  the databases holding them.
"""

from __future__ import annotations

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE world ADD COLUMN lease_holder text, ADD COLUMN lease_until timestamptz")
    op.execute("ALTER TABLE command_log ADD COLUMN sent bytea NOT NULL DEFAULT ''::bytea, "
               "ADD COLUMN arrivals bytea NOT NULL DEFAULT ''::bytea, ADD COLUMN zone_hash bytea")
    op.execute("CREATE TABLE player_registry (id bigint PRIMARY KEY, tick bigint NOT NULL)")
    op.execute("CREATE TABLE zone_group (name text PRIMARY KEY, zones integer[] NOT NULL, "
               "database text NOT NULL UNIQUE)")


def downgrade() -> None:
    op.execute("DROP TABLE zone_group")
    op.execute("DROP TABLE player_registry")
    op.execute("ALTER TABLE command_log DROP COLUMN zone_hash, DROP COLUMN arrivals, DROP COLUMN sent")
    op.execute("ALTER TABLE world DROP COLUMN lease_until, DROP COLUMN lease_holder")

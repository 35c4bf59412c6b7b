"""Zones hand out ids from their own ranges, and what is in flight between ticks is stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

GAME_RULES.md "Zones" (docs/rules.md): each zone creates ids from its own
range, starting at 2^62 + id * 2^30, so `zone.next_id` is the next one it
hands out; a world stored before keeps the ids it made (all below 2^62) and
its zones start at their ranges' beginnings.

`world.transit` holds the world's transit after the stored tick: the packed
160-byte Transit structs (schema/world.fbs), in the world's transit order,
exactly the canonical encoding's last payload. It lives on the header row
because a tick's one statement moves the header anyway, so transit moves
with the tick or not at all, and it is small: only what the last tick sent
between zones, gone at the next.
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE zone ADD COLUMN next_id bigint")
    op.execute("UPDATE zone SET next_id = 4611686018427387904 + id::bigint * 1073741824")   # 2^62 + id * 2^30
    op.execute("ALTER TABLE zone ALTER COLUMN next_id SET NOT NULL")
    op.execute("ALTER TABLE world ADD COLUMN transit bytea NOT NULL DEFAULT ''::bytea")


def downgrade() -> None:
    op.execute("ALTER TABLE world DROP COLUMN transit")
    op.execute("ALTER TABLE zone DROP COLUMN next_id")

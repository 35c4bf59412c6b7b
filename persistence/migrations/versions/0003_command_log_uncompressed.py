"""The command log's batches are stored uncompressed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

PostgreSQL compresses a large bytea with pglz by default: a tick of 5,000
commands is 320 KB, which pglz squeezes 5x but at about 17 MB/s of the
server's CPU, 18 ms a tick (the embedded build has no lz4). At 100,000
commands a second that would take a whole core, more than the fragment
writes, so the log trades disk for CPU: STORAGE EXTERNAL keeps large values
out of line and uncompressed (1.8 ms for the same row).
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE command_log ALTER COLUMN commands SET STORAGE EXTERNAL, "
               "ALTER COLUMN text SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE command_log ALTER COLUMN commands SET STORAGE EXTENDED, "
               "ALTER COLUMN text SET STORAGE EXTENDED")

"""World snapshots: the whole world at a checkpoint tick, so the command log before it can go.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A row holds the world after tick `tick` as its canonical encoding
(vocabulary/hashing.py: header, zones, then every 120-byte entity record in
id order), compressed with zlib, beside that encoding's SHA-256, which equals
the command log's hash of the same tick. The canonical encoding is what the
hash is defined over, so a snapshot is checked by hashing it and needs no
format of its own. zlib, because the standard library has it (no dependency)
and fixed 120-byte records, full of zero and repeated bytes, shrink about
8x at level 1 at some 300 MB/s (a 100,000-entity world: 12.0 MB to 1.5 MB
in 40 ms, with the GIL released; level 6 gives 1.16 MB in three times the
time). PostgreSQL's own TOAST compression (pglz) would shrink it too, but
only inside the server: zlib also keeps the bytes small on the wire, both
when a snapshot is written and when `log export --world` reads one.
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE world_snapshot (
            tick bigint PRIMARY KEY,
            world bytea NOT NULL,
            world_hash bytea NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now()
        )""")
    # Stored already compressed: PostgreSQL's compressing it again would only cost CPU.
    op.execute("ALTER TABLE world_snapshot ALTER COLUMN world SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("DROP TABLE world_snapshot")

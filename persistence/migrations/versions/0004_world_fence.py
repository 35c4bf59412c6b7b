"""The world header holds a fence: the token of the one server allowed to write it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A server that starts takes the next token (WorldStore.take_writer) before it
recovers, and every tick statement it runs writes only while the header
still holds its token. A server that was killed, paused or partitioned with
a tick statement in flight can then never write again once another has
started: its statement either commits before the new token is taken (and
recovery sees that tick whole) or finds the fence moved and writes nothing.
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE world ADD COLUMN fence bigint NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE world DROP COLUMN fence")

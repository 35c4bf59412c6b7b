"""Player accounts: each XMPP bare JID owns one player entity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Kept apart from the fragment tables: an account is not world state (it is
not in the world hash or the command log); it only says which entity a JID
may command. No foreign key to entity_identity: an account is allocated
before its player's first join creates the entity.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "player_account",
        sa.Column("jid", sa.Text, primary_key=True),
        sa.Column("entity_id", sa.BigInteger, nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("player_account")

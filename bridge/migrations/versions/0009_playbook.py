"""The DM playbook: a conversation's inquiry type (confirmed and suggested) and the customer's opt-out

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("inquiry_type", sa.String(), nullable=True))
        batch.add_column(sa.Column("suggested_type", sa.String(), nullable=True))
        batch.add_column(sa.Column("opted_out_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("opted_out_at")
        batch.drop_column("suggested_type")
        batch.drop_column("inquiry_type")

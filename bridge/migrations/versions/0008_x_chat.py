"""X Chat: the sealed identity, sealed events waiting to be opened, how a customer last wrote, X usage by day

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "x_chat_identity",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("key_version", sa.String(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "x_chat_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("conversation", sa.String(), nullable=False),
        sa.Column("encoded_event", sa.Text(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account", "event_id", name="uq_x_chat_event"),
    )
    op.create_index("ix_x_chat_event_due", "x_chat_event", ["state", "next_at"])
    op.create_table(
        "x_usage",
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind"),
    )
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("via", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("via")
    op.drop_table("x_usage")
    op.drop_index("ix_x_chat_event_due", table_name="x_chat_event")
    op.drop_table("x_chat_event")
    op.drop_table("x_chat_identity")

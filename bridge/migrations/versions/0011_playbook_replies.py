"""The DM playbook, replies: automatic replies sent (cooldowns) and CSAT surveys (see docs/design.md,
"The DM playbook")

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_auto_reply_conversation", "auto_reply", ["conversation_id", "kind", "sent_at"])
    op.create_table(
        "csat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.Float(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("answer_id", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("audit_id"),
    )
    op.create_index("ix_csat_conversation", "csat", ["conversation_id", "asked_at"])


def downgrade() -> None:
    op.drop_index("ix_csat_conversation", table_name="csat")
    op.drop_table("csat")
    op.drop_index("ix_auto_reply_conversation", table_name="auto_reply")
    op.drop_table("auto_reply")

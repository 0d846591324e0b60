"""desk: assignment, priority and escalation, snooze, templates, audit

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("last_outbound_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("assigned_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("priority", sa.String(), nullable=False, server_default="normal"))
        batch.add_column(sa.Column("team", sa.String(), nullable=True))
        batch.add_column(sa.Column("escalation_reason", sa.String(), nullable=True))
        batch.add_column(sa.Column("snoozed_until", sa.Float(), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.Float(), nullable=True))
        batch.create_index("ix_conversation_status", ["status"])
        batch.create_index("ix_conversation_snoozed_until", ["snoozed_until"])
    op.create_table(
        "template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_conversation", "audit", ["conversation_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_conversation", table_name="audit")
    op.drop_table("audit")
    op.drop_table("template")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_snoozed_until")
        batch.drop_index("ix_conversation_status")
        for column in (
            "resolved_at",
            "snoozed_until",
            "escalation_reason",
            "team",
            "priority",
            "assigned_at",
            "last_outbound_at",
        ):
            batch.drop_column(column)

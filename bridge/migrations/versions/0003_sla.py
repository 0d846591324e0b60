"""sla: per-conversation SLA state and the sweep's index

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("sla_policy", sa.String()),
    ("sla_kind", sa.String()),
    ("sla_state", sa.String()),
    ("sla_due_at", sa.Float()),
    ("sla_next_at", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.create_index("ix_conversation_sla_next_at", ["sla_next_at"])
    op.create_index("ix_sent_message_conversation_id", "sent_message", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_sent_message_conversation_id", table_name="sent_message")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_sla_next_at")
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)

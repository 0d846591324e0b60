"""engine robustness: indexes for the hot outbox queries; a Slack event's processing error

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    op.create_index("ix_outbox_kind_state", "outbox", ["kind", "state"])
    op.create_index("ix_outbox_conversation", "outbox", ["conversation_id", "target", "state"])
    op.create_index("ix_outbox_claims", "outbox", ["state", "claimed_by", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_claims", table_name="outbox")
    op.drop_index("ix_outbox_conversation", table_name="outbox")
    op.drop_index("ix_outbox_kind_state", table_name="outbox")
    with op.batch_alter_table("slack_event", schema=None) as batch_op:
        batch_op.drop_column("error")

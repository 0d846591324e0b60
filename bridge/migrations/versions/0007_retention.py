"""retention: partial indexes over the rows that still hold content, for the pruning job

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# the same predicates as bridge.store.tables.UNPRUNED (a migration must not import the live models)
INDEXES = (
    ("slack_event", ["processed_at"], "payload <> '{}'"),
    # state leads so SQLite prefers this to ix_outbox_claims (state, …) for the pruning query
    ("outbox", ["state", "created_at"], "state = 'sent' AND payload <> '{}'"),
    ("inbound_event", ["stored_at"], "text <> ''"),
    ("audit", ["at"], "action IN ('relay', 'template') AND detail <> ''"),
)


def upgrade() -> None:
    for table, columns, where in INDEXES:
        op.create_index(
            f"ix_{table}_unpruned", table, columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where)
        )


def downgrade() -> None:
    for table, _columns, _where in INDEXES:
        op.drop_index(f"ix_{table}_unpruned", table_name=table)

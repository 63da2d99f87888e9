"""Indexes for searching and summarising the audit trail.

`ix_audit_ts` (ts, id) serves newest-first pages and time ranges; `ix_audit_outcome_ts`
(outcome, ts) the security summaries, which count one outcome over a time range.

Revision ID: 0009_audit_query_indexes
Revises: 0008_a2a_tasks
"""

from __future__ import annotations

from alembic import op

revision = "0009_audit_query_indexes"
down_revision = "0008_a2a_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_ts", "audit_records", ["ts", "id"])
    op.create_index("ix_audit_outcome_ts", "audit_records", ["outcome", "ts"])


def downgrade() -> None:
    op.drop_index("ix_audit_outcome_ts", table_name="audit_records")
    op.drop_index("ix_audit_ts", table_name="audit_records")

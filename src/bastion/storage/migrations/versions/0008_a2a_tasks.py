"""A2A tasks in the database, so a restart or a second replica still knows them.

`a2a_tasks` (agent, task id, owner, context id, state, status timestamp in epoch ms, update
order `seq`, the task as A2A JSON, the process running it and when it last said so) and
`a2a_task_clocks` (an agent's update counter and last status timestamp).

Revision ID: 0008_a2a_tasks
Revises: 0007_field_evidence
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_a2a_tasks"
down_revision = "0007_field_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "a2a_tasks",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("context_id", sa.String(256), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status_ms", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("runner", sa.String(64), nullable=True),
        sa.Column("runner_seen", sa.Float, nullable=True),
    )
    op.create_index("ix_a2a_tasks_owner_seq", "a2a_tasks", ["agent", "owner", "seq"])
    op.create_index("ix_a2a_tasks_agent_seq", "a2a_tasks", ["agent", "seq"])
    op.create_index("ix_a2a_tasks_state", "a2a_tasks", ["agent", "state", "status_ms"])
    op.create_table(
        "a2a_task_clocks",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("a2a_task_clocks")
    op.drop_index("ix_a2a_tasks_state", table_name="a2a_tasks")
    op.drop_index("ix_a2a_tasks_agent_seq", table_name="a2a_tasks")
    op.drop_index("ix_a2a_tasks_owner_seq", table_name="a2a_tasks")
    op.drop_table("a2a_tasks")

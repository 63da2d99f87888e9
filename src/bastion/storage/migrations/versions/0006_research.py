"""Research: conversations and runs, the research agent's own data.

`research_conversations` (owner, title, timestamps; indexed for a principal's conversations,
newest first) and `research_runs` (a conversation's turns in `seq` order: question, mode,
status, result JSON, error, correlation id, timestamps).

Revision ID: 0006_research
Revises: 0005_invoice_claims
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_research"
down_revision = "0005_invoice_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "research_conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_research_conversations_owner_created",
        "research_conversations",
        ["owner", "created_at", "id"],
    )
    op.create_table(
        "research_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("research_conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index(
        "uq_research_runs_conversation_seq",
        "research_runs",
        ["conversation_id", "seq"],
        unique=True,
    )
    op.create_index("ix_research_runs_status_started", "research_runs", ["status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_research_runs_status_started", table_name="research_runs")
    op.drop_index("uq_research_runs_conversation_seq", table_name="research_runs")
    op.drop_table("research_runs")
    op.drop_index("ix_research_conversations_owner_created", table_name="research_conversations")
    op.drop_table("research_conversations")

"""SQLAlchemy models for the research system's own data: conversations and their runs.

Only `bastion.research.store.ResearchStore` reads and writes these tables (the gateway goes
through research methods). A conversation belongs to one owner principal; its runs are its
turns, numbered from 1 in `seq`. A run is `running` until it ends `done` (with its result
object as JSON), `failed` (with an error) or `cancelled`. Ids are opaque and unguessable (see
`bastion.research.model`). Schema changes go through an Alembic migration in
`storage/migrations/versions/` (these tables: 0006).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models import Base

RunState = Literal["running", "done", "failed", "cancelled"]
RUN_STATES: tuple[str, ...] = get_args(RunState)


class ResearchConversation(Base):
    """A principal's conversation with the research agent; `title` is its first question."""

    __tablename__ = "research_conversations"
    __table_args__ = (
        # A principal's conversations, newest first (keyset pagination on created_at, id).
        Index("ix_research_conversations_owner_created", "owner", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ResearchRun(Base):
    """One question asked in a conversation and what became of it."""

    __tablename__ = "research_runs"
    __table_args__ = (
        # A conversation's runs in order (and one run per place in it).
        Index("uq_research_runs_conversation_seq", "conversation_id", "seq", unique=True),
        # Runs left running by a crash (`fail_orphans`).
        Index("ix_research_runs_status_started", "status", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("research_conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(256))
    question: Mapped[str] = mapped_column(Text)
    # What the client asked for: auto, chat or research (the result says which one ran).
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

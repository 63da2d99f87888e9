"""SQLAlchemy models for the durable A2A task store (`runtime.task_store_db`).

`a2a_tasks` holds one row per task of an agent: its owner principal, context id, state,
status timestamp (epoch milliseconds), its place in the update order (`seq`), the whole task
as A2A JSON (history and artifacts bounded by the store), and which process runs it now
(`runner`, renewed in `runner_seen`). `a2a_task_clocks` holds each agent's update counter and
last status timestamp, so that replicas sharing a database number their changes in one order.
Schema changes go through an Alembic migration in `storage/migrations/versions/` (these
tables: 0008).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models import Base


class A2ATask(Base):
    """One A2A task of one agent."""

    __tablename__ = "a2a_tasks"
    __table_args__ = (
        # A principal's tasks, most recently updated first (ListTasks, per-owner bound).
        Index("ix_a2a_tasks_owner_seq", "agent", "owner", "seq"),
        # The agent's tasks in update order (the store-wide bound).
        Index("ix_a2a_tasks_agent_seq", "agent", "seq"),
        # Unfinished tasks whose runner died, and finished tasks past retention.
        Index("ix_a2a_tasks_state", "agent", "state", "status_ms"),
    )

    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    context_id: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(32))
    status_ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    task: Mapped[str] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    runner_seen: Mapped[float | None] = mapped_column(Float, nullable=True)


class A2ATaskClock(Base):
    """An agent's task update counter and the last status timestamp it handed out."""

    __tablename__ = "a2a_task_clocks"

    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_ms: Mapped[int] = mapped_column(BigInteger)

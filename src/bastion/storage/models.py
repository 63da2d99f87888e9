"""SQLAlchemy models for the runtime: API keys and the audit trail.

Schema changes go through an Alembic migration in `storage/migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key, stored only as a hash. `key_id` is the public half of the key."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    # "sha256" or "hmac-sha256" (peppered); pepper_version names the pepper used.
    hash_scheme: Mapped[str] = mapped_column(String(16))
    pepper_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditRecord(Base):
    """One audited request, linked into an HMAC hash chain per `chain`."""

    __tablename__ = "audit_records"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_audit_chain_seq"),
        Index("ix_audit_correlation", "correlation_id"),
        Index("ix_audit_principal", "principal"),
        # The console's audit search (newest first, time ranges) and security summaries.
        Index("ix_audit_ts", "ts", "id"),
        Index("ix_audit_outcome_ts", "outcome", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[float] = mapped_column(Float)
    principal: Mapped[str] = mapped_column(String(256))
    auth_method: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(256))
    correlation_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    client: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

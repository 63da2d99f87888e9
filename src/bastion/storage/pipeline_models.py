"""SQLAlchemy models for the document archive: documents, their extracted data and history.

A document is one upload by one owner: its id is opaque (see `bastion.pipeline.model`), its
`sha256` names its bytes in the object store, and `blobs` counts the live documents that share
those bytes (an owner has at most one live document per sha256). Deleting a document keeps a
tombstone row (`deleted_at` set, extracted data removed) and its history. Full-text
search lives outside these models, in migration 0002: an FTS5 table `documents_fts` kept in step
by triggers on SQLite, a generated `search_vector` tsvector column with a GIN index on
PostgreSQL. Schema changes go through an Alembic migration in `storage/migrations/versions/`.
`invoice_claims` (migration 0005) holds, per issuer and invoice number, the one document that
claimed them: the duplicate check's atomic decision.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models import Base

DocumentStatus = Literal["queued", "processing", "archived", "failed"]
FindingSource = Literal["validation", "guardrail"]
HistoryEvent = Literal[
    "received",
    "queued",
    "processing",
    "extracted",
    "validated",
    "archived",
    "failed",
    "deleted",
    "reprocessed",
]
DOCUMENT_STATUSES: tuple[str, ...] = get_args(DocumentStatus)
HISTORY_EVENTS: tuple[str, ...] = get_args(HistoryEvent)

# Columns indexed for full-text search (the FTS5 table and the tsvector use the same ones).
FTS_COLUMNS = ("issuer", "customer", "invoice_number", "text_excerpt", "filename")

_PK = BigInteger().with_variant(Integer, "sqlite")


_LIVE = text("deleted_at IS NULL")


class Document(Base):
    """One uploaded document: an opaque id, its owner, and the SHA-256 of its bytes."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_created", "created_at", "id"),
        Index("ix_documents_owner_created", "owner", "created_at", "id"),
        # The same bytes from the same owner are one live document.
        Index(
            "uq_documents_owner_sha256",
            "owner",
            "sha256",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index("ix_documents_status_created", "status", "created_at", "id"),
        Index("ix_documents_duplicate_key", "invoice_number_key", "issuer_key"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # Who may read it (besides holders of `gateway.read_all_documents`).
    owner: Mapped[str] = mapped_column(String(256))
    filename: Mapped[str] = mapped_column(String(512))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    document_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Searchable headline fields, and normalised keys for duplicate detection.
    issuer: Mapped[str | None] = mapped_column(String(512), nullable=True)
    customer: Mapped[str | None] = mapped_column(String(512), nullable=True)
    invoice_number: Mapped[str | None] = mapped_column(String(128), nullable=True)
    issuer_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    invoice_number_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    text_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    uploaded_by: Mapped[str] = mapped_column(String(256))
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    deleted_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DocumentField(Base):
    """One extracted field of a document (`value` is any JSON value; `evidence` where and how
    it was read, `Evidence` of `pipeline/model.py`, null for fields archived before 0007)."""

    __tablename__ = "document_fields"
    __table_args__ = (UniqueConstraint("document_id", "name", name="uq_document_fields_name"),)

    id: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("documents.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class LineItemRow(Base):
    """One invoice line, in document order (`position` from 0)."""

    __tablename__ = "line_items"
    __table_args__ = (UniqueConstraint("document_id", "position", name="uq_line_items_position"),)

    id: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("documents.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)


class FindingRow(Base):
    """A validation or guardrail finding recorded on a document."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_document", "document_id"),)

    id: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("documents.id", ondelete="CASCADE")
    )
    source: Mapped[str] = mapped_column(String(16))
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)


class HistoryRow(Base):
    """One event in a document's life; kept after the document is deleted."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_document", "document_id", "id"),)

    id: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("documents.id", ondelete="CASCADE")
    )
    at: Mapped[float] = mapped_column(Float)
    event: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    principal: Mapped[str | None] = mapped_column(String(256), nullable=True)


class Blob(Base):
    """Stored bytes and how many live documents use them (the object goes with the last)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    refcount: Mapped[int] = mapped_column(Integer)


class IngestedFile(Base):
    """A file the watched-folder ingester has already submitted (path + content)."""

    __tablename__ = "ingested_files"
    __table_args__ = (
        UniqueConstraint("path", "sha256", name="uq_ingested_files_path_sha"),
        Index("ix_ingested_files_path", "path", "size", "mtime"),
    )

    id: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[float] = mapped_column(Float)


class InvoiceClaim(Base):
    """The document that holds an issuer + invoice number (normalised keys): the first document
    to claim them. Its primary key makes the claim atomic; see `pipeline/invoice_claims.py`."""

    __tablename__ = "invoice_claims"
    __table_args__ = (Index("ix_invoice_claims_document", "document_id"),)

    issuer_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    invoice_number_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("documents.id", ondelete="CASCADE")
    )
    # The claimant's total as canonical decimal text, and its currency (None when unknown).
    total: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The principal that uploaded the claiming document.
    owner: Mapped[str] = mapped_column(String(256))
    claimed_at: Mapped[float] = mapped_column(Float)

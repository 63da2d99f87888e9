"""Pipeline schema: the document archive and its full-text index.

Full text on SQLite is an FTS5 table `documents_fts` (one row per document, tokenised with
unicode61 without diacritic folding) kept in step by triggers; on PostgreSQL a generated
`search_vector` tsvector column with a GIN index. Both index the same text: issuer, customer,
invoice number, text excerpt and filename, lower-cased with every run of non-alphanumeric
characters turned into a space, so both dialects split words the same way.

Revision ID: 0002_pipeline
Revises: 0001_runtime
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_pipeline"
down_revision = "0001_runtime"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _document_fk() -> sa.Column[str]:
    return sa.Column(
        "document_id",
        sa.String(64),
        sa.ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("document_type", sa.String(16), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("issuer", sa.String(512), nullable=True),
        sa.Column("customer", sa.String(512), nullable=True),
        sa.Column("invoice_number", sa.String(128), nullable=True),
        sa.Column("issuer_key", sa.String(512), nullable=True),
        sa.Column("invoice_number_key", sa.String(128), nullable=True),
        sa.Column("text_excerpt", sa.Text, nullable=True),
        sa.Column("uploaded_by", sa.String(256), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
    )
    op.create_index("ix_documents_created", "documents", ["created_at", "id"])
    op.create_index("ix_documents_status_created", "documents", ["status", "created_at", "id"])
    op.create_index("ix_documents_duplicate_key", "documents", ["invoice_number_key", "issuer_key"])

    op.create_table(
        "document_fields",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        _document_fk(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.UniqueConstraint("document_id", "name", name="uq_document_fields_name"),
    )
    op.create_table(
        "line_items",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        _document_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("quantity", sa.Float, nullable=True),
        sa.Column("unit_price", sa.Float, nullable=True),
        sa.Column("amount", sa.Float, nullable=True),
        sa.UniqueConstraint("document_id", "position", name="uq_line_items_position"),
    )
    op.create_table(
        "findings",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        _document_fk(),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("field", sa.String(64), nullable=True),
    )
    op.create_index("ix_findings_document", "findings", ["document_id"])
    op.create_table(
        "history",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        _document_fk(),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("principal", sa.String(256), nullable=True),
    )
    op.create_index("ix_history_document", "history", ["document_id", "id"])
    op.create_table(
        "ingested_files",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.Float, nullable=False),
        sa.UniqueConstraint("path", "sha256", name="uq_ingested_files_path_sha"),
    )
    op.create_index("ix_ingested_files_path", "ingested_files", ["path", "size", "mtime"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_fts_up()
    elif dialect == "postgresql":
        _postgres_fts_up()


def _sqlite_fts_up() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE documents_fts USING fts5(document_id UNINDEXED,"
        " issuer, customer, invoice_number, text_excerpt, filename,"
        " tokenize = 'unicode61 remove_diacritics 0')"
    )
    op.execute(
        "CREATE TRIGGER documents_fts_ai AFTER INSERT ON documents BEGIN"
        " INSERT INTO documents_fts"
        " (document_id, issuer, customer, invoice_number, text_excerpt, filename)"
        " VALUES (new.id, new.issuer, new.customer, new.invoice_number, new.text_excerpt,"
        " new.filename); END"
    )
    op.execute(
        "CREATE TRIGGER documents_fts_au"
        " AFTER UPDATE OF issuer, customer, invoice_number, text_excerpt, filename ON documents"
        " BEGIN DELETE FROM documents_fts WHERE document_id = old.id;"
        " INSERT INTO documents_fts"
        " (document_id, issuer, customer, invoice_number, text_excerpt, filename)"
        " VALUES (new.id, new.issuer, new.customer, new.invoice_number, new.text_excerpt,"
        " new.filename); END"
    )
    op.execute(
        "CREATE TRIGGER documents_fts_ad AFTER DELETE ON documents BEGIN"
        " DELETE FROM documents_fts WHERE document_id = old.id; END"
    )


def _postgres_fts_up() -> None:
    op.execute(
        "ALTER TABLE documents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS"
        " (to_tsvector('simple', regexp_replace(lower("
        "coalesce(issuer, '') || ' ' || coalesce(customer, '') || ' ' ||"
        " coalesce(invoice_number, '') || ' ' || coalesce(text_excerpt, '') || ' ' ||"
        " coalesce(filename, '')), '[^[:alnum:]]+', ' ', 'g'))) STORED"
    )
    op.execute("CREATE INDEX ix_documents_search ON documents USING GIN (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("documents_fts_ai", "documents_fts_au", "documents_fts_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS documents_fts")
    op.drop_table("ingested_files")
    op.drop_table("history")
    op.drop_table("findings")
    op.drop_table("line_items")
    op.drop_table("document_fields")
    op.drop_table("documents")

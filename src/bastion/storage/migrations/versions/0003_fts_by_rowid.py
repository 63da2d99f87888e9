"""Key the SQLite full-text index on the documents' rowid.

0002's triggers deleted a document's index row by `document_id`, a column FTS5 does not index,
so every update of an archived document scanned the whole index: archiving got slower as the
archive grew. The index rows now share the document's rowid, and updates and deletes find them
directly. PostgreSQL (a generated tsvector column) is unchanged.

Revision ID: 0003_fts_by_rowid
Revises: 0002_pipeline
"""

# ruff: noqa: S608 -- the statements are built from this module's constants only.
from __future__ import annotations

from alembic import op

revision = "0003_fts_by_rowid"
down_revision = "0002_pipeline"
branch_labels = None
depends_on = None

_COLUMNS = "issuer, customer, invoice_number, text_excerpt, filename"
_NEW_VALUES = "new.issuer, new.customer, new.invoice_number, new.text_excerpt, new.filename"


def _drop(triggers: tuple[str, ...]) -> None:
    for trigger in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS documents_fts")


def _create(by_rowid: bool) -> None:
    key = "rowid" if by_rowid else "document_id"
    old_key = "old.rowid" if by_rowid else "old.id"
    insert_cols = f"rowid, document_id, {_COLUMNS}" if by_rowid else f"document_id, {_COLUMNS}"
    insert_vals = f"new.rowid, new.id, {_NEW_VALUES}" if by_rowid else f"new.id, {_NEW_VALUES}"
    op.execute(
        f"CREATE VIRTUAL TABLE documents_fts USING fts5(document_id UNINDEXED, {_COLUMNS},"
        " tokenize = 'unicode61 remove_diacritics 0')"
    )
    select_cols = f"rowid, id, {_COLUMNS}" if by_rowid else f"id, {_COLUMNS}"
    op.execute(f"INSERT INTO documents_fts ({insert_cols}) SELECT {select_cols} FROM documents")
    op.execute(
        "CREATE TRIGGER documents_fts_ai AFTER INSERT ON documents BEGIN"
        f" INSERT INTO documents_fts ({insert_cols}) VALUES ({insert_vals}); END"
    )
    op.execute(
        f"CREATE TRIGGER documents_fts_au AFTER UPDATE OF {_COLUMNS} ON documents"
        f" BEGIN DELETE FROM documents_fts WHERE {key} = {old_key};"
        f" INSERT INTO documents_fts ({insert_cols}) VALUES ({insert_vals}); END"
    )
    op.execute(
        "CREATE TRIGGER documents_fts_ad AFTER DELETE ON documents BEGIN"
        f" DELETE FROM documents_fts WHERE {key} = {old_key}; END"
    )


_TRIGGERS = ("documents_fts_ai", "documents_fts_au", "documents_fts_ad")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop(_TRIGGERS)
        _create(by_rowid=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop(_TRIGGERS)
        _create(by_rowid=False)

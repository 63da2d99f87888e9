"""Documents get an owner, an opaque id and a separate sha256; shared bytes are counted.

Each upload is now its own record, owned by its uploader: `documents.owner` (who may read it)
and `documents.sha256` (its bytes in the object store), with at most one live document per
owner and sha256 (a partial unique index). `blobs(sha256, refcount)` counts the live documents
that use each stored object, so deleting one never removes bytes another still needs.

Existing rows keep their id (the SHA-256 of their bytes, still a valid document id); their
owner is `uploaded_by` and their sha256 the old id. Each live row's bytes get a count of one.
A downgrade drops the new columns and table; documents created since keep their opaque ids.

Revision ID: 0004_document_owners
Revises: 0003_fts_by_rowid
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_document_owners"
down_revision = "0003_fts_by_rowid"
branch_labels = None
depends_on = None

_LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    # SQLite adds a NOT NULL column only with a default; every row is filled in just below.
    op.add_column(
        "documents", sa.Column("sha256", sa.String(64), nullable=False, server_default="")
    )
    op.add_column(
        "documents", sa.Column("owner", sa.String(256), nullable=False, server_default="")
    )
    op.execute("UPDATE documents SET sha256 = id, owner = uploaded_by")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("documents", "sha256", server_default=None)
        op.alter_column("documents", "owner", server_default=None)
    op.create_index("ix_documents_owner_created", "documents", ["owner", "created_at", "id"])
    op.create_index(
        "uq_documents_owner_sha256",
        "documents",
        ["owner", "sha256"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("refcount", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO blobs (sha256, refcount) SELECT sha256, COUNT(*) FROM documents"
        " WHERE deleted_at IS NULL GROUP BY sha256"
    )


def downgrade() -> None:
    op.drop_table("blobs")
    op.drop_index("uq_documents_owner_sha256", table_name="documents")
    op.drop_index("ix_documents_owner_created", table_name="documents")
    op.drop_column("documents", "owner")
    op.drop_column("documents", "sha256")

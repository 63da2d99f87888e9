"""Invoice claims: one holder per issuer + invoice number, for the duplicate check.

The duplicate rule used to look for an archived document with the same issuer and number, which
documents processed in parallel could not see. `invoice_claims` has the normalised keys as its
primary key, so exactly one claim per invoice gets in (see `pipeline/invoice_claims.py`).

The table is filled from the archive: for each issuer + number, the oldest archived, undeleted
document whose outcome was not `invalid` holds the claim, with its total and currency.

Revision ID: 0005_invoice_claims
Revises: 0004_document_owners
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from bastion.money import canonical_amount, canonical_currency

revision = "0005_invoice_claims"
down_revision = "0004_document_owners"
branch_labels = None
depends_on = None

# The tables as this revision knows them (the models may move on).
_documents = sa.table(
    "documents",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("outcome", sa.String),
    sa.column("issuer_key", sa.String),
    sa.column("invoice_number_key", sa.String),
    sa.column("owner", sa.String),
    sa.column("created_at", sa.Float),
    sa.column("deleted_at", sa.Float),
)
_fields = sa.table(
    "document_fields",
    sa.column("document_id", sa.String),
    sa.column("name", sa.String),
    sa.column("value", sa.JSON),
)


def upgrade() -> None:
    claims = op.create_table(
        "invoice_claims",
        sa.Column("issuer_key", sa.String(512), primary_key=True),
        sa.Column("invoice_number_key", sa.String(128), primary_key=True),
        sa.Column(
            "document_id",
            sa.String(64),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("total", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_invoice_claims_document", "invoice_claims", ["document_id"])
    _backfill(op.get_bind(), claims)


def _backfill(conn: sa.Connection, claims: sa.Table) -> None:
    holders = conn.execute(
        sa.select(
            _documents.c.id,
            _documents.c.issuer_key,
            _documents.c.invoice_number_key,
            _documents.c.owner,
            _documents.c.created_at,
        )
        .where(
            _documents.c.status == "archived",
            _documents.c.deleted_at.is_(None),
            _documents.c.outcome.in_(("valid", "needs_review")),
            _documents.c.issuer_key.is_not(None),
            _documents.c.invoice_number_key.is_not(None),
        )
        .order_by(_documents.c.created_at, _documents.c.id)
    ).all()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in holders:
        rows.setdefault(
            (doc.issuer_key, doc.invoice_number_key),
            {
                "issuer_key": doc.issuer_key,
                "invoice_number_key": doc.invoice_number_key,
                "document_id": doc.id,
                "owner": doc.owner,
                "claimed_at": doc.created_at,
            },
        )
    if not rows:
        return
    amounts: dict[str, dict[str, Any]] = {}
    ids = [row["document_id"] for row in rows.values()]
    for start in range(0, len(ids), 500):
        for field in conn.execute(
            sa.select(_fields.c.document_id, _fields.c.name, _fields.c.value).where(
                _fields.c.document_id.in_(ids[start : start + 500]),
                _fields.c.name.in_(("total", "currency")),
            )
        ):
            amounts.setdefault(field.document_id, {})[field.name] = field.value
    for row in rows.values():
        values = amounts.get(row["document_id"], {})
        row["total"] = canonical_amount(values.get("total"))
        row["currency"] = canonical_currency(values.get("currency"))
    conn.execute(sa.insert(claims), list(rows.values()))


def downgrade() -> None:
    op.drop_index("ix_invoice_claims_document", table_name="invoice_claims")
    op.drop_table("invoice_claims")

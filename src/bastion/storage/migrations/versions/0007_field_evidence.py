"""Field evidence: where and how each extracted field was read.

`document_fields.evidence` (JSON, nullable) holds a field's evidence: page, box
`[x0, top, x1, bottom]` in PDF points from the page's top left, the label matched, the reading
rule, the extractor's own score and whether the document's totals added up. Fields archived
before this revision have none (null).

Revision ID: 0007_field_evidence
Revises: 0006_research
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_field_evidence"
down_revision = "0006_research"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("document_fields", sa.Column("evidence", sa.JSON, nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("document_fields") as batch:
        batch.drop_column("evidence")

"""Invoice claims: which document holds an issuer + invoice number, decided atomically.

The duplicate rule asks the archive to claim a document's issuer and invoice number;
`claim` runs inside `ArchiveRepository.claim_invoice`'s write transaction, the only way in.
The table's primary key (issuer_key, invoice_number_key) makes the decision atomic on SQLite and
PostgreSQL alike: `INSERT ... ON CONFLICT DO NOTHING` lets exactly one claimant in, and every
later one reads the holder, whatever the number of workers.

Policy:

* Only an eligible document claims: one its other rules do not find invalid. An ineligible one
  is still checked against the holder, so a duplicate is flagged whatever else is wrong with it.
* The holder asking again (a reprocess) keeps its claim, with its total refreshed; asking while
  no longer eligible releases it.
* A holder that was deleted, or failed in the pipeline, no longer holds anything: the next
  eligible claimant takes the claim over (the claim row is locked while it does).
* Duplicates are found across all uploaders, but the answer names the holder only when
  `may_name_other` allows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bastion.pipeline.model import DuplicateClaim
from bastion.storage import Document, InvoiceClaim

_CLAIMS = cast(Table, InvoiceClaim.__table__)
_DOCUMENTS = cast(Table, Document.__table__)


_ATTEMPTS = 3


class ClaimContendedError(RuntimeError):
    """The claim was released and taken again under this claimant, more than once."""


def may_name_other(uploader: str, other_owner: str, *, reads_all: Callable[[], bool]) -> bool:
    """Whether a finding shown to `uploader` may name the document `other_owner` uploaded:
    when `uploader` may read it, as its own or through the `gateway.read_all_documents` grant
    (`reads_all()`, asked only for another owner's document)."""
    return bool(uploader) and (uploader == other_owner or reads_all())


def same_amount(
    total: str | None, currency: str | None, other_total: str | None, other_currency: str | None
) -> bool:
    """Whether two claims are for the same amount; an unknown total or currency matches."""
    if total is not None and other_total is not None and total != other_total:
        return False
    return currency is None or other_currency is None or currency == other_currency


def _insert_if_free(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on the claims table, in the dialect's own syntax."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(_CLAIMS).on_conflict_do_nothing()


def claim(
    conn: Connection,
    dialect: str,
    *,
    document_id: str,
    owner: str,
    issuer_key: str,
    number_key: str,
    total: str | None,
    currency: str | None,
    eligible: bool,
    owner_reads_all: Callable[[], bool],
) -> DuplicateClaim:
    """Claim (issuer_key, number_key) for `document_id`, or learn who holds it (see the module
    docstring for the policy). `owner_reads_all()`: whether the document's owner may read every
    owner's documents. Runs in the caller's write transaction."""
    key = (_CLAIMS.c.issuer_key == issuer_key, _CLAIMS.c.invoice_number_key == number_key)
    mine = {
        "document_id": document_id,
        "owner": owner,
        "total": total,
        "currency": currency,
        "claimed_at": time.time(),
    }
    # When the insert finds the key taken (or this document may not claim), the claim is read
    # locked. The holder's document is read apart, so a concurrent takeover is re-read whole.
    read_claim = select(_CLAIMS).where(*key)
    if dialect != "sqlite":
        read_claim = read_claim.with_for_update()
    for _ in range(_ATTEMPTS):
        if eligible:
            # RETURNING says whether the row went in (a rowcount is not reliable for an INSERT
            # on every driver: psycopg's reads -1, and the claim was read and written again).
            inserted = conn.execute(
                _insert_if_free(dialect).returning(_CLAIMS.c.document_id),
                {"issuer_key": issuer_key, "invoice_number_key": number_key, **mine},
            )
            if inserted.first() is not None:
                return DuplicateClaim(duplicate=False)
        held = conn.execute(read_claim).first()
        if held is None and not eligible:
            return DuplicateClaim(duplicate=False)
        if held is not None:
            break
        # PostgreSQL: the holder released its claim between the two statements; try again.
    else:
        raise ClaimContendedError(f"the claim on invoice {number_key!r} kept changing hands")
    if held.document_id == document_id:
        if eligible:
            conn.execute(update(_CLAIMS).where(*key).values(**mine))
        else:
            conn.execute(delete(_CLAIMS).where(*key))
        return DuplicateClaim(duplicate=False)
    holder = conn.execute(
        select(_DOCUMENTS.c.status, _DOCUMENTS.c.deleted_at).where(
            _DOCUMENTS.c.id == held.document_id
        )
    ).first()
    released = holder is None or holder.deleted_at is not None or holder.status == "failed"
    if released:
        if eligible:
            conn.execute(update(_CLAIMS).where(*key).values(**mine))
        return DuplicateClaim(duplicate=False)
    return DuplicateClaim(
        duplicate=True,
        other_id=(
            held.document_id
            if may_name_other(owner, held.owner, reads_all=owner_reads_all)
            else None
        ),
        same_amount=same_amount(total, currency, held.total, held.currency),
    )

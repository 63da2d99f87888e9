"""Invoice claims (`ArchiveRepository.claim_invoice`), on SQLite and PostgreSQL: one holder per
issuer and invoice number, however many documents claim at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bastion.money import canonical_amount
from bastion.pipeline.archive_repo import (
    ArchiveRepository,
    DocumentDeletedError,
    DocumentNotFoundError,
)
from bastion.pipeline.invoice_claims import may_name_other, same_amount
from bastion.pipeline.model import DuplicateClaim
from bastion.storage.database import shared_engine
from tests.storage.test_archive_repo import sha

ISSUER, NUMBER = "ACME GmbH", "INV-2024-001"


@pytest.fixture
def repo(db_url: str) -> ArchiveRepository:
    return ArchiveRepository(shared_engine(db_url))


def upload(repo: ArchiveRepository, n: int, principal: str = "alice") -> str:
    return repo.record_upload(
        sha(f"claim-{n}"),
        owner=principal,
        filename=f"{n}.pdf",
        content_type="application/pdf",
        size=1,
        principal=principal,
    ).id


def claim(repo: ArchiveRepository, doc_id: str, **kw: Any) -> DuplicateClaim:
    kw.setdefault("total", 119.0)
    kw.setdefault("currency", "EUR")
    kw.setdefault("eligible", True)
    issuer = kw.pop("issuer", ISSUER)
    number = kw.pop("number", NUMBER)
    return repo.claim_invoice(doc_id, issuer, number, **kw)


def test_the_first_claimant_holds_and_later_ones_are_duplicates(repo: ArchiveRepository) -> None:
    first, second, third = (upload(repo, n) for n in range(3))
    assert claim(repo, first) == DuplicateClaim(duplicate=False)
    # Compared case- and punctuation-blind, like the archive's duplicate keys.
    seen = claim(repo, second, issuer="acme gmbh", number="inv 2024 001", total="119.00")
    assert seen == DuplicateClaim(duplicate=True, other_id=first, same_amount=True)
    # The holder asking again (a reprocess) still holds it; the loser is still a duplicate.
    assert claim(repo, first) == DuplicateClaim(duplicate=False)
    assert claim(repo, second).other_id == first
    # Another invoice number from the same issuer is free.
    assert claim(repo, third, number="INV-2024-002") == DuplicateClaim(duplicate=False)


def test_another_amount_or_currency_is_told_apart(repo: ArchiveRepository) -> None:
    holder, more, dollars, unknown = (upload(repo, n) for n in range(4))
    claim(repo, holder)
    assert claim(repo, more, total=1190.0).same_amount is False
    assert claim(repo, dollars, currency="usd").same_amount is False
    assert claim(repo, unknown, total=None, currency=None).same_amount is True
    assert claim(repo, more, total=1190.0).duplicate is True


def test_the_holder_is_named_only_to_its_own_uploader(repo: ArchiveRepository) -> None:
    holder = upload(repo, 0, "alice")
    mine, theirs = upload(repo, 1, "alice"), upload(repo, 2, "bob")
    claim(repo, holder)
    assert claim(repo, mine) == DuplicateClaim(duplicate=True, other_id=holder)
    assert claim(repo, theirs) == DuplicateClaim(duplicate=True, other_id=None)
    # An uploader the policy lets read every owner's documents is told which one it is.
    granted = claim(repo, theirs, reads_all=lambda owner: owner == "bob")
    assert granted == DuplicateClaim(duplicate=True, other_id=holder)


def test_only_eligible_documents_claim(repo: ArchiveRepository) -> None:
    invalid, valid, later = (upload(repo, n) for n in range(3))
    # Invalid for other reasons: checked, but it claims nothing.
    assert claim(repo, invalid, eligible=False) == DuplicateClaim(duplicate=False)
    assert claim(repo, valid) == DuplicateClaim(duplicate=False)
    assert claim(repo, invalid, eligible=False).other_id == valid
    # The holder, reprocessed and now invalid, releases the claim to the next document.
    assert claim(repo, valid, eligible=False) == DuplicateClaim(duplicate=False)
    assert claim(repo, later) == DuplicateClaim(duplicate=False)
    assert claim(repo, valid).other_id == later


def test_a_deleted_or_failed_holder_releases_its_claim(repo: ArchiveRepository) -> None:
    deleted, failed, taker, last = (upload(repo, n) for n in range(4))
    claim(repo, deleted)
    assert repo.delete_document(deleted, principal="alice", correlation_id=None)
    assert claim(repo, failed) == DuplicateClaim(duplicate=False)
    repo.set_status(failed, "failed", reason="timeout")
    # An ineligible document neither sees a released claim nor takes it over.
    assert claim(repo, last, eligible=False) == DuplicateClaim(duplicate=False)
    assert claim(repo, taker) == DuplicateClaim(duplicate=False)
    assert claim(repo, last).other_id == taker


def test_unknown_deleted_and_keyless_documents(repo: ArchiveRepository) -> None:
    with pytest.raises(DocumentNotFoundError):
        claim(repo, sha("nobody"))
    gone = upload(repo, 0)
    repo.delete_document(gone, principal="alice", correlation_id=None)
    with pytest.raises(DocumentDeletedError):
        claim(repo, gone)
    first, second = upload(repo, 1), upload(repo, 2)
    assert claim(repo, first, number="--") == DuplicateClaim(
        duplicate=False
    )  # no key: nothing to claim
    assert claim(repo, second, number="--") == DuplicateClaim(duplicate=False)


def test_twenty_concurrent_claims_have_exactly_one_holder(repo: ArchiveRepository) -> None:
    docs = [upload(repo, n, "alice" if n % 2 else "bob") for n in range(20)]
    start = threading.Barrier(8)

    def one(doc_id: str) -> DuplicateClaim:
        if docs.index(doc_id) < 8:
            start.wait(timeout=30)  # the first eight claim at the same moment
        return claim(repo, doc_id, total=119.0 + (docs.index(doc_id) % 3 == 0))

    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(docs, pool.map(one, docs), strict=True))
    holders = [doc for doc, answer in answers.items() if not answer.duplicate]
    assert len(holders) == 1
    holder = holders[0]
    holder_total = 119.0 + (docs.index(holder) % 3 == 0)
    holder_owner = "alice" if docs.index(holder) % 2 else "bob"
    for doc, answer in answers.items():
        if doc == holder:
            continue
        n = docs.index(doc)
        assert answer.same_amount is ((119.0 + (n % 3 == 0)) == holder_total)
        named = ("alice" if n % 2 else "bob") == holder_owner
        assert answer.other_id == (holder if named else None)


def test_helpers() -> None:
    assert canonical_amount(1487.5) == canonical_amount("1487.50") == "1487.5"
    assert canonical_amount(100) == canonical_amount(100.0) == "100"
    for bad in (None, True, "n/a", float("nan"), float("inf"), {"amount": 1}):
        assert canonical_amount(bad) is None
    assert same_amount("1", "EUR", "1", None) and not same_amount("1", "EUR", "2", "EUR")
    assert may_name_other("alice", "alice", reads_all=lambda: False)
    assert may_name_other("alice", "bob", reads_all=lambda: True)
    assert not may_name_other("alice", "bob", reads_all=lambda: False)
    assert not may_name_other("", "", reads_all=lambda: True)

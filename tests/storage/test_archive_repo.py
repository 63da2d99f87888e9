"""The archive repository, on SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.pipeline.archive_repo import (
    ArchiveRepository,
    DocumentDeletedError,
    DocumentNotFoundError,
    UploadRecord,
    normalise_key,
)
from bastion.pipeline.model import (
    Evidence,
    ExtractedField,
    ExtractionResult,
    Finding,
    ValidationResult,
    is_document_id,
)
from bastion.pipeline.watch_ledger import WatchLedger
from bastion.storage.database import shared_engine
from bastion.storage.pipeline_models import DocumentField, FindingRow, LineItemRow


def sha(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def invoice(
    number: str = "INV-2024-001",
    issuer: str = "Zebra Logistics GmbH",
    customer: str = "Müller & Söhne KG",
    lines: int = 2,
    total: float = 119.0,
) -> ExtractionResult:
    fields: dict[str, Any] = {
        "invoice_number": number,
        "issuer": issuer,
        "customer": customer,
        "issue_date": "2024-03-01",
        "total": total,
        "currency": "EUR",
        "line_items": [
            {"description": f"Item {i}", "quantity": 1.0, "unit_price": 50.0, "amount": 50.0}
            for i in range(lines)
        ],
    }
    return ExtractionResult(
        document_type="invoice",
        confidence=0.93,
        fields={k: ExtractedField(value=v, confidence=0.9, page=1) for k, v in fields.items()},
        pages=1,
        findings=[Finding(rule_id="guard.scanned", severity="info", message="image only page")],
    )


VALID = ValidationResult(outcome="valid")
INVALID = ValidationResult(
    outcome="invalid",
    findings=[
        Finding(rule_id="totals.sum", severity="error", message="sum mismatch", field="total"),
        Finding(rule_id="iban.checksum", severity="warning", message="bad IBAN", field="iban"),
    ],
)


@pytest.fixture
def repo(db_url: str) -> ArchiveRepository:
    return ArchiveRepository(shared_engine(db_url))


def record(
    repo: ArchiveRepository, sha256: str, filename: str = "invoice.pdf", owner: str = "alice"
) -> UploadRecord:
    return repo.record_upload(
        sha256,
        owner=owner,
        filename=filename,
        content_type="application/pdf",
        size=1234,
        principal=owner,
        correlation_id="corr-up",
    )


def upload(
    repo: ArchiveRepository, sha256: str, filename: str = "invoice.pdf", owner: str = "alice"
) -> str:
    """The id of `owner`'s document for the bytes `sha256`."""
    return record(repo, sha256, filename, owner).id


def archived(repo: ArchiveRepository, doc_id: str, result: ExtractionResult, **kw: Any) -> bool:
    return repo.archive(
        doc_id,
        result,
        kw.pop("validation", VALID),
        correlation_id="corr-arch",
        principal="svc-archivist",
        **kw,
    )


def events(repo: ArchiveRepository, doc_id: str) -> list[str]:
    doc = repo.get_document(doc_id)
    assert doc is not None
    return [h["event"] for h in doc["history"]]


def row_counts(repo: ArchiveRepository, doc_id: str) -> tuple[int, int, int]:
    with Session(repo.engine) as s:
        return (
            s.scalar(select(func.count()).where(DocumentField.document_id == doc_id)) or 0,
            s.scalar(select(func.count()).where(LineItemRow.document_id == doc_id)) or 0,
            s.scalar(select(func.count()).where(FindingRow.document_id == doc_id)) or 0,
        )


def test_record_upload_and_status(repo: ArchiveRepository) -> None:
    first = record(repo, sha(1))
    doc_id = first.id
    assert first.created and first.status == "queued" and is_document_id(doc_id)
    doc = repo.get_document(doc_id)
    assert doc is not None
    assert doc["status"] == "queued" and doc["outcome"] is None
    assert (doc["filename"], doc["size"], doc["uploaded_by"]) == ("invoice.pdf", 1234, "alice")
    assert (doc["owner"], doc["sha256"]) == ("alice", sha(1))
    assert doc["fields"] == {} and doc["line_items"] == [] and doc["findings"] == []
    assert doc["history"][0]["principal"] == "alice"
    assert doc["history"][0]["correlation_id"] == "corr-up"

    again = record(repo, sha(1), filename="again.pdf")  # same bytes: not a second document
    assert (again.id, again.created, again.status) == (doc_id, False, "queued")
    repo.set_status(doc_id, "queued", principal="gateway")
    repo.set_status(doc_id, "processing", correlation_id="c2")
    repo.set_status(doc_id, "failed", reason="encrypted", detail="password protected")
    doc = repo.get_document(doc_id)
    assert doc is not None
    assert doc["filename"] == "invoice.pdf"
    assert (doc["status"], doc["failure_reason"]) == ("failed", "encrypted")
    assert [h["event"] for h in doc["history"]] == [
        "received",
        "received",
        "queued",
        "processing",
        "failed",
    ]
    assert doc["history"][-1]["detail"] == "password protected"
    repo.set_status(doc_id, "queued")
    assert repo.get_document(doc_id)["failure_reason"] is None  # type: ignore[index]

    with pytest.raises(ValueError):
        repo.set_status(doc_id, "bogus")
    with pytest.raises(DocumentNotFoundError):
        repo.set_status(sha("missing"), "processing")
    with pytest.raises(ValueError):
        repo.add_event(doc_id, "bogus")
    with pytest.raises(ValueError):
        upload(repo, "../etc/passwd")  # not a sha256
    repo.add_event(doc_id, "extracted", detail="2 pages")
    assert events(repo, doc_id)[-1] == "extracted"
    assert repo.get_document(sha("missing")) is None


def test_archive_stores_everything(repo: ArchiveRepository) -> None:
    doc_id = upload(repo, sha(2))
    result = invoice()
    evidence = {
        "page": 1,
        "bbox": [400.0, 700.5, 460.25, 712.0],
        "label": "Total",
        "rule": "label_right",
        "score": 0.9,
        "arithmetic": "agrees",
    }
    result.fields["total"].evidence = Evidence.model_validate(evidence)
    assert archived(repo, doc_id, result, validation=INVALID, text_excerpt="Rechnung Nr") is False
    doc = repo.get_document(doc_id)
    assert doc is not None
    assert doc["status"] == "archived" and doc["outcome"] == "invalid"
    assert doc["document_type"] == "invoice" and doc["confidence"] == pytest.approx(0.93)
    assert (doc["issuer"], doc["invoice_number"]) == ("Zebra Logistics GmbH", "INV-2024-001")
    shown = ("value", "confidence", "page")
    assert {n: {k: f[k] for k in shown} for n, f in doc["fields"].items()} == (
        result.to_public()["fields"]
    )
    # Each field's evidence is stored with it, as JSON; a field read without any has none.
    assert doc["fields"]["total"]["evidence"] == evidence
    stored = Evidence.model_validate(doc["fields"]["total"]["evidence"])
    assert stored == result.fields["total"].evidence
    assert doc["fields"]["issuer"]["evidence"] is None
    assert [i["description"] for i in doc["line_items"]] == ["Item 0", "Item 1"]
    assert doc["line_items"][0] == {
        "position": 0,
        "description": "Item 0",
        "quantity": 1.0,
        "unit_price": 50.0,
        "amount": 50.0,
    }
    assert [(f["source"], f["rule_id"], f["field"]) for f in doc["findings"]] == [
        ("guardrail", "guard.scanned", None),
        ("validation", "totals.sum", "total"),
        ("validation", "iban.checksum", "iban"),
    ]
    assert doc["history"][-1]["event"] == "archived"
    assert doc["history"][-1]["principal"] == "svc-archivist"
    assert doc["history"][-1]["correlation_id"] == "corr-arch"


def test_archive_records_the_extraction_and_validation_stages(repo: ArchiveRepository) -> None:
    """The orchestrator's stage times become `extracted` and `validated` events, in order
    before `archived`; a time in the future (a skewed clock) is capped at the archive's."""
    doc_id = upload(repo, sha(9))
    now = time.time()
    archived(repo, doc_id, invoice(), extracted_at=now - 2.0, validated_at=now + 3600)
    doc = repo.get_document(doc_id)
    assert doc is not None
    history = doc["history"]
    assert [h["event"] for h in history] == ["received", "extracted", "validated", "archived"]
    extracted, validated, done = history[1:]
    assert extracted["at"] == pytest.approx(now - 2.0)
    assert extracted["detail"] == "invoice, 1 pages"
    assert validated["detail"] == "outcome valid" and validated["at"] <= done["at"]
    assert {h["correlation_id"] for h in history[1:]} == {"corr-arch"}


def test_archive_is_idempotent_on_reprocessing(repo: ArchiveRepository) -> None:
    doc_id = upload(repo, sha(3))
    assert archived(repo, doc_id, invoice(lines=3), validation=INVALID) is False
    assert row_counts(repo, doc_id) == (7, 3, 3)
    assert archived(repo, doc_id, invoice(lines=1, total=50.0)) is True
    assert archived(repo, doc_id, invoice(lines=1, total=50.0)) is True
    assert row_counts(repo, doc_id) == (7, 1, 1)
    doc = repo.get_document(doc_id)
    assert doc is not None
    assert doc["outcome"] == "valid" and doc["fields"]["total"]["value"] == 50.0
    assert events(repo, doc_id) == [
        "received",
        "archived",
        "reprocessed",
        "archived",
        "reprocessed",
        "archived",
    ]
    items, _ = repo.list_documents()
    assert [d["id"] for d in items] == [doc_id]


def test_concurrent_archives_of_one_document(repo: ArchiveRepository) -> None:
    doc_id = upload(repo, sha(4))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: archived(repo, doc_id, invoice(lines=n)), [2] * 6))
    assert results.count(False) == 1
    assert row_counts(repo, doc_id) == (7, 2, 1)


def test_archive_refuses_unknown_and_deleted(repo: ArchiveRepository) -> None:
    with pytest.raises(DocumentNotFoundError):
        archived(repo, sha("nope"), invoice())
    doc_id = upload(repo, sha(5))
    assert repo.delete_document(doc_id, principal="admin", correlation_id="c-del") == "deleted"
    with pytest.raises(DocumentDeletedError):
        archived(repo, doc_id, invoice())


def test_delete_keeps_a_tombstone(repo: ArchiveRepository) -> None:
    doc_id = upload(repo, sha(6))
    archived(repo, doc_id, invoice(), validation=INVALID, text_excerpt="secret words")
    assert repo.search("secret")
    assert repo.delete_document(doc_id, principal="admin", correlation_id="c-del") == "deleted"
    doc = repo.get_document(doc_id)
    assert doc is not None
    assert doc["deleted_at"] is not None
    assert doc["fields"] == {} and doc["line_items"] == [] and doc["findings"] == []
    assert doc["issuer"] is None and doc["customer"] is None and doc["invoice_number"] is None
    assert row_counts(repo, doc_id) == (0, 0, 0)
    last = doc["history"][-1]
    assert (last["event"], last["principal"], last["correlation_id"]) == (
        "deleted",
        "admin",
        "c-del",
    )
    assert repo.search("secret") == [] and repo.search("zebra") == []
    gone = "not_found"
    assert repo.delete_document(doc_id, principal="admin", correlation_id="c") == gone
    assert repo.delete_document(sha("missing"), principal="admin", correlation_id="c") == gone
    assert repo.list_documents()[0] == []
    assert [d["id"] for d in repo.list_documents(include_deleted=True)[0]] == [doc_id]
    # Uploading the same bytes again is a new document, processed afresh; the tombstone stays.
    again = record(repo, sha(6))
    assert again.created and again.id != doc_id
    doc = repo.get_document(again.id)
    assert doc is not None and doc["deleted_at"] is None and doc["status"] == "queued"
    assert repo.get_document(doc_id)["deleted_at"] is not None  # type: ignore[index]


def test_list_documents_keyset_pagination(repo: ArchiveRepository) -> None:
    ids = [upload(repo, sha(f"list-{i}")) for i in range(7)]
    archived(repo, ids[0], invoice())
    newest_first = list(reversed(ids))

    page1, cur1 = repo.list_documents(limit=3)
    assert [d["id"] for d in page1] == newest_first[:3] and cur1
    upload(repo, sha("late"))  # a new document does not shift later pages
    page2, cur2 = repo.list_documents(cursor=cur1, limit=3)
    page3, cur3 = repo.list_documents(cursor=cur2, limit=3)
    assert [d["id"] for d in page2] == newest_first[3:6]
    assert [d["id"] for d in page3] == newest_first[6:]
    assert cur3 is None

    archived_only, cur = repo.list_documents(status="archived")
    assert [d["id"] for d in archived_only] == [ids[0]] and cur is None
    assert archived_only[0]["issuer"] == "Zebra Logistics GmbH"
    assert repo.list_documents(status="failed") == ([], None)
    with pytest.raises(ValueError):
        repo.list_documents(status="nope")
    with pytest.raises(ValueError):
        repo.list_documents(cursor="garbage!")
    with pytest.raises(ValueError):
        repo.list_documents(cursor="WyJ4IiwxXQ")  # ["x",1]: well-formed but wrong types


def test_list_pagination_with_identical_timestamps(repo: ArchiveRepository) -> None:
    ids = [upload(repo, sha(f"tie-{i}")) for i in range(5)]
    from bastion.storage.pipeline_models import Document

    with Session(repo.engine) as s, s.begin():
        for d in s.scalars(select(Document)):
            d.created_at = 1_700_000_000.5
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = repo.list_documents(cursor=cursor, limit=2)
        seen += [d["id"] for d in page]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_search(repo: ArchiveRepository) -> None:
    a = upload(repo, sha("s-a"), filename="zebra-march.pdf")
    b = upload(repo, sha("s-b"), filename="scan_0042.pdf")
    c = upload(repo, sha("s-c"), filename="other.pdf")
    archived(repo, a, invoice(), text_excerpt="Rechnung für Beratung")
    archived(
        repo,
        b,
        invoice(number="RE/2023/17", issuer="Acme Ltd", customer="Globex"),
        text_excerpt="consulting services",
    )

    def hits(q: str) -> list[str]:
        return [d["id"] for d in repo.search(q)]

    assert hits("zebra") == [a]
    assert hits("ZEB") == [a]  # prefix, case-insensitive
    assert hits("INV-2024") == [a]
    assert hits("inv 2024 001") == [a]
    assert hits("RE/2023/17") == [b]
    assert hits("müller") == [a]
    assert hits("beratung") == [a]
    assert hits("consult") == [b]
    assert hits("scan_0042") == [b]
    assert hits("other") == [c]  # filename of a document not yet archived
    assert sorted(hits("pdf")) == sorted([a, b, c])
    assert hits("zebra globex") == []  # every word must match
    assert hits("") == [] and hits("  -- ") == []
    assert hits("\"'*:&|!() OR NEAR zebra") == []  # operators are plain words, no errors
    assert len(repo.search("pdf", limit=2)) == 2
    result = repo.search("acme")[0]
    assert (result["id"], result["status"], result["outcome"]) == (b, "archived", "valid")


def test_search_follows_reprocessing(repo: ArchiveRepository) -> None:
    doc_id = upload(repo, sha("re-search"))
    archived(repo, doc_id, invoice(issuer="Oldname AG"))
    archived(repo, doc_id, invoice(issuer="Newname AG"))
    assert repo.search("oldname") == []
    assert [d["id"] for d in repo.search("newname")] == [doc_id]


def test_each_owner_has_its_own_document_for_the_same_bytes(repo: ArchiveRepository) -> None:
    mine = record(repo, sha("shared"), "mine.pdf", owner="alice")
    theirs = record(repo, sha("shared"), "theirs.pdf", owner="bob")
    assert mine.created and theirs.created and mine.id != theirs.id
    again = record(repo, sha("shared"), owner="bob")
    assert (again.id, again.created) == (theirs.id, False)
    assert repo.blob_refcount(sha("shared")) == 2
    # Bob's uploads leave no trace on Alice's document.
    assert events(repo, mine.id) == ["received"]
    assert events(repo, theirs.id) == ["received", "received"]
    archived(repo, mine.id, invoice(issuer="Shared Words AG"))
    archived(repo, theirs.id, invoice(issuer="Shared Words AG"))

    def ids(docs: list[dict[str, Any]]) -> set[str]:
        return {d["id"] for d in docs}

    assert ids(repo.list_documents(owner="alice")[0]) == {mine.id}
    assert ids(repo.list_documents(owner="bob")[0]) == {theirs.id}
    assert ids(repo.list_documents(owner="carol")[0]) == set()
    assert ids(repo.list_documents()[0]) == {mine.id, theirs.id}
    assert ids(repo.search("shared", owner="alice")) == {mine.id}
    assert ids(repo.search("shared", owner="carol")) == set()
    assert ids(repo.search("shared")) == {mine.id, theirs.id}
    assert repo.stored_file(mine.id) == ("alice", sha("shared"))

    removed: list[str] = []
    assert (
        repo.delete_document(
            mine.id, principal="bob", correlation_id="c", owner="bob", remove_bytes=removed.append
        )
        == "not_owner"
    )
    assert repo.get_document(mine.id)["deleted_at"] is None  # type: ignore[index]
    assert (
        repo.delete_document(
            mine.id, principal="alice", correlation_id="c", owner="alice",
            remove_bytes=removed.append,
        )
        == "deleted"
    )  # fmt: skip
    assert removed == [] and repo.blob_refcount(sha("shared")) == 1  # Bob's still needs them
    assert repo.stored_file(mine.id) is None
    repo.delete_document(
        theirs.id, principal="admin", correlation_id="c", remove_bytes=removed.append
    )
    assert removed == [sha("shared")] and repo.blob_refcount(sha("shared")) == 0


def test_concurrent_uploads_by_one_owner_are_one_document(repo: ArchiveRepository) -> None:
    with ThreadPoolExecutor(4) as pool:
        records = list(pool.map(lambda _: record(repo, sha("race"), owner="alice"), range(8)))
    assert len({r.id for r in records}) == 1
    assert [r.created for r in records].count(True) == 1
    assert repo.blob_refcount(sha("race")) == 1


def test_the_event_feed_query_names_each_document_owner(repo: ArchiveRepository) -> None:
    before = repo.last_history_id()
    mine = upload(repo, sha("feed"), owner="alice")
    theirs = upload(repo, sha("feed"), owner="bob")
    rows = repo.history_after(before)
    assert [(r["document_id"], r["owner"]) for r in rows] == [(mine, "alice"), (theirs, "bob")]


def test_normalise_key() -> None:
    assert normalise_key(" ACME  GmbH. ") == normalise_key("acme gmbh") == "acmegmbh"
    assert normalise_key("INV-2024/001") == "inv2024001"
    assert normalise_key("Straße") == normalise_key("STRASSE")
    assert normalise_key(None) == normalise_key("") == normalise_key("--") == ""


def test_status_counts(repo: ArchiveRepository) -> None:
    assert repo.status_counts() == {
        "queued": 0,
        "processing": 0,
        "archived": 0,
        "failed": 0,
        "deleted": 0,
    }
    ids = [upload(repo, sha(f"c-{i}")) for i in range(5)]
    repo.set_status(ids[0], "processing")
    repo.set_status(ids[1], "failed", reason="not_pdf")
    archived(repo, ids[2], invoice())
    archived(repo, ids[3], invoice())
    repo.delete_document(ids[3], principal="admin", correlation_id="c")
    assert repo.status_counts() == {
        "queued": 1,
        "processing": 1,
        "archived": 1,
        "failed": 1,
        "deleted": 1,
    }


def test_ingested_files(repo: ArchiveRepository) -> None:
    """The watched folder's ledger, beside the archive in the same database."""
    ledger = WatchLedger(repo.engine)
    assert ledger.was_ingested("/in/a.pdf", 10, 1.5) is None
    assert ledger.mark_ingested("/in/a.pdf", 10, 1.5, sha("a"))
    assert ledger.was_ingested("/in/a.pdf", 10, 1.5) == sha("a")
    assert ledger.was_ingested("/in/a.pdf", 11, 1.5) is None
    # Same path, same content, touched: known, and the new size/mtime are remembered.
    assert not ledger.mark_ingested("/in/a.pdf", 10, 2.5, sha("a"))
    assert ledger.was_ingested("/in/a.pdf", 10, 2.5) == sha("a")
    # Same path, new content: a new entry.
    assert ledger.mark_ingested("/in/a.pdf", 12, 3.0, sha("b"))
    assert ledger.was_ingested("/in/a.pdf", 12, 3.0) == sha("b")


def test_write_lock_serialises_processes_and_threads(tmp_path: Any) -> None:
    """`write_transaction` holds a cross-process lock (flock on `<db>.lock`): a writer in
    another process waits for it and is let in as soon as it is released."""
    import multiprocessing
    import time

    from sqlalchemy import text

    from bastion.storage.database import file_write_lock, make_engine, write_transaction

    db = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{db}")
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    assert (tmp_path / "locked.db.lock").exists()

    ctx = multiprocessing.get_context("spawn")
    with file_write_lock(db).hold():
        child = ctx.Process(target=_write_one, args=(str(db),))
        child.start()
        time.sleep(0.5)
        assert child.is_alive()  # waiting for the lock held here
        released = time.monotonic()
    child.join(10)
    assert child.exitcode == 0
    assert time.monotonic() - released < 5

    def bump(_: int) -> None:
        with write_transaction(engine) as conn:
            (n,) = conn.execute(text("SELECT COUNT(*) FROM t")).one()
            conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(bump, range(40)))
    with engine.connect() as conn:
        # Every read-then-write saw the writes before it: no two rows share a count.
        assert conn.execute(text("SELECT COUNT(DISTINCT n), COUNT(*) FROM t")).one() == (41, 41)
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (-1)"))
        raise RuntimeError("rolled back")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t WHERE n = -1")).scalar() == 0


def _write_one(db: str) -> None:
    from sqlalchemy import text

    from bastion.storage.database import make_engine, write_transaction

    with write_transaction(make_engine(f"sqlite:///{db}")) as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (0)"))

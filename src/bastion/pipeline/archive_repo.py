"""The archive repository: the only code that reads and writes the document archive tables.

Used by the Archivist agent alone (its methods serve the orchestrator's archive, the gateway's
uploads, reads and deletions, and the worker's status changes), and by the operator's own CLI on
the host (`bastion status`). Works on SQLite and PostgreSQL; full-text search uses FTS5 or the
tsvector index (migration 0002).

Each upload is a document of its own with an opaque id, owned by one principal (migration
0004); the same bytes from the same owner are that owner's one live document, and archiving it
again replaces its extracted data and adds a `reprocessed` history event. Reads take an `owner`
scope: a principal's own documents, or None for every owner (the caller checked the reader's
`gateway.read_all_documents` grant). Table `blobs` counts the live documents per stored object;
the repository touches only the database, except that deleting the last document of an object
calls back to remove the bytes inside the same transaction, so an upload of the same bytes
cannot slip in between and lose them.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.money import canonical_amount, canonical_currency
from bastion.pipeline import invoice_claims
from bastion.pipeline.archive_types import (
    MAX_LIST_LIMIT,
    DeleteResult,
    DocumentDeletedError,
    DocumentNotFoundError,
    StaleDocument,
    UploadRecord,
    readable_by,
)
from bastion.pipeline.model import (
    OUTCOMES,
    TEXT_EXCERPT_CHARS,
    DuplicateClaim,
    ExtractionResult,
    Finding,
    LineItem,
    ValidationResult,
    new_document_id,
)
from bastion.storage import (
    DOCUMENT_STATUSES,
    HISTORY_EVENTS,
    Blob,
    Document,
    DocumentField,
    FindingRow,
    HistoryRow,
    LineItemRow,
    decode_cursor,
    encode_cursor,
    validate_sha256,
    write_transaction,
)

_DOCUMENTS = cast(Table, Document.__table__)


_FIELDS = cast(Table, DocumentField.__table__)
_LINE_ITEMS = cast(Table, LineItemRow.__table__)
_FINDINGS = cast(Table, FindingRow.__table__)
_HISTORY = cast(Table, HistoryRow.__table__)
_BLOBS = cast(Table, Blob.__table__)
# What a write needs to know about the document it changes.
_LOCK_COLUMNS = (
    _DOCUMENTS.c.deleted_at,
    _DOCUMENTS.c.outcome,
    _DOCUMENTS.c.owner,
    _DOCUMENTS.c.sha256,
)

MAX_SEARCH_TERMS = 16
_UPLOAD_ATTEMPTS = 3
_WORD_RE = re.compile(r"[^\W_]+")


def normalise_key(value: str | None) -> str:
    """Issuer / invoice-number key for duplicate detection: case- and punctuation-blind."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def search_terms(query: str) -> list[str]:
    """The words of a search query, split the way the full-text indexes split text."""
    return _WORD_RE.findall(query.lower())[:MAX_SEARCH_TERMS]


def _clip(value: str | None, n: int) -> str | None:
    return None if value is None else value[:n]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"]).strip() or None
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _line_items(value: Any) -> list[LineItem]:
    if not isinstance(value, list):
        return []
    items: list[LineItem] = []
    for raw in value:
        if isinstance(raw, LineItem):
            items.append(raw)
            continue
        try:
            items.append(LineItem.model_validate(raw))
        except ValidationError:
            continue
    return items


def _summary(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "sha256": doc.sha256,
        "owner": doc.owner,
        "filename": doc.filename,
        "content_type": doc.content_type,
        "size": doc.size,
        "status": doc.status,
        "outcome": doc.outcome,
        "failure_reason": doc.failure_reason,
        "document_type": doc.document_type,
        "confidence": doc.confidence,
        "issuer": doc.issuer,
        "customer": doc.customer,
        "invoice_number": doc.invoice_number,
        "uploaded_by": doc.uploaded_by,
        "correlation_id": doc.correlation_id,
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
        "deleted_at": doc.deleted_at,
    }


def _children(
    session: Session,
    model: type[DocumentField] | type[LineItemRow] | type[FindingRow] | type[HistoryRow],
    document_id: str,
    columns: tuple[str, ...],
    *,
    order: Any = None,
) -> list[dict[str, Any]]:
    """One document's rows of `model` as dicts of `columns`, in `order` (default: insertion)."""
    rows = session.scalars(
        select(model)
        .where(model.document_id == document_id)
        .order_by(model.id if order is None else order)
    )
    return [{c: getattr(row, c) for c in columns} for row in rows]


class ArchiveRepository:
    """Reads and writes the archive on `engine` (migrated to 0002_pipeline or later)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (see `write_transaction`: on SQLite it holds the database's
        write lock from its first statement, so its reads cannot be overtaken by a writer)."""
        with write_transaction(self.engine) as conn:
            yield conn

    def _locked(self, conn: Connection, document_id: str) -> Any:
        """The document's (deleted_at, outcome), locked for the rest of the transaction; None
        when there is no such document.

        PostgreSQL locks the row (SELECT ... FOR UPDATE). On SQLite the transaction already
        holds the database write lock (BEGIN IMMEDIATE).
        """
        stmt = select(*_LOCK_COLUMNS).where(_DOCUMENTS.c.id == document_id)
        if self.dialect != "sqlite":
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()

    @staticmethod
    def _history(
        document_id: str,
        event: str,
        *,
        at: float,
        detail: str | None = None,
        correlation_id: str | None = None,
        principal: str | None = None,
    ) -> dict[str, Any]:
        if event not in HISTORY_EVENTS:
            raise ValueError(f"unknown history event {event!r}")
        return {
            "document_id": document_id,
            "at": at,
            "event": event,
            "detail": detail,
            "correlation_id": _clip(correlation_id, 128),
            "principal": _clip(principal, 256),
        }

    @classmethod
    def _event(cls, conn: Connection, document_id: str, event: str, **kw: Any) -> None:
        conn.execute(insert(_HISTORY), cls._history(document_id, event, **kw))  # no executemany

    def _update(self, conn: Connection, document_id: str, **values: Any) -> None:
        conn.execute(update(_DOCUMENTS).where(_DOCUMENTS.c.id == document_id).values(**values))

    # -- writes -----------------------------------------------------------------------------

    def record_upload(
        self,
        sha256: str,
        *,
        owner: str,
        filename: str,
        content_type: str,
        size: int,
        principal: str,
        correlation_id: str | None = None,
    ) -> UploadRecord:
        """Record received bytes as `owner`'s document (status `queued`, event `received`).

        The owner's live document with these bytes, if there is one, is returned as it is
        (`created` False) with a `received` history event; otherwise a new document with a new
        id is created and the bytes' count goes up. Other owners' documents are never looked
        at. ValueError if `sha256` is not a SHA-256 hex digest.
        """
        validate_sha256(sha256)
        upload = {
            "sha256": sha256,
            "owner": _clip(owner, 256) or "",
            "filename": _clip(filename, 512) or "",
            "content_type": _clip(content_type, 128) or "",
            "size": size,
            "uploaded_by": _clip(principal, 256) or "",
            "correlation_id": _clip(correlation_id, 128),
        }
        for _ in range(_UPLOAD_ATTEMPTS):
            try:
                record = self._record_upload(upload)
            except IntegrityError:
                # A concurrent upload of the same bytes by the same owner created it first.
                continue
            if record is not None:
                return record
        raise RuntimeError(
            f"recording the upload of {sha256} kept racing with other uploads or deletions"
            f" of the same bytes ({_UPLOAD_ATTEMPTS} attempts); try again"
        )

    def _record_upload(self, upload: dict[str, Any]) -> UploadRecord | None:
        """The upload recorded; None when the owner's live document with these bytes, which
        made the insert do nothing, was deleted before it could be read (try again)."""
        now = time.time()
        event = {
            "at": now,
            "correlation_id": upload["correlation_id"],
            "principal": upload["uploaded_by"],
        }
        document_id = new_document_id()
        row = {"id": document_id, "status": "queued", "created_at": now, "updated_at": now}
        # The new document first (the common case: one statement, no lookup); when the owner
        # already has a live one with these bytes, the unique index turns it into nothing and
        # that one is read (a concurrent insert is waited for, then read).
        stmt = (
            self._dialect_insert(_DOCUMENTS)
            .values(**row, **upload)
            .on_conflict_do_nothing(
                index_elements=[_DOCUMENTS.c.owner, _DOCUMENTS.c.sha256],
                index_where=_DOCUMENTS.c.deleted_at.is_(None),
            )
            .returning(_DOCUMENTS.c.id)
        )
        with self._tx() as conn:
            if conn.execute(stmt).first() is None:
                existing = conn.execute(
                    select(_DOCUMENTS.c.id, _DOCUMENTS.c.status, _DOCUMENTS.c.outcome).where(
                        _DOCUMENTS.c.owner == upload["owner"],
                        _DOCUMENTS.c.sha256 == upload["sha256"],
                        _DOCUMENTS.c.deleted_at.is_(None),
                    )
                ).first()
                if existing is None:
                    return None
                self._event(conn, existing.id, "received", detail="already in the archive", **event)
                outcome = existing.outcome if existing.status == "archived" else None
                return UploadRecord(existing.id, False, existing.status, outcome)
            self._retain(conn, upload["sha256"])
            self._event(conn, document_id, "received", **event)
        return UploadRecord(document_id, True, "queued")

    def _dialect_insert(self, table: Table) -> Any:
        """INSERT with ON CONFLICT for this database."""
        return (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(table)

    def _retain(self, conn: Connection, sha256: str) -> None:
        """One more live document uses the bytes `sha256`."""
        stmt = self._dialect_insert(_BLOBS).values(sha256=sha256, refcount=1)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_BLOBS.c.sha256], set_={"refcount": _BLOBS.c.refcount + 1}
            )
        )

    def _release(self, conn: Connection, sha256: str) -> bool:
        """One live document fewer uses the bytes `sha256`: True when it was the last one."""
        stmt = select(_BLOBS.c.refcount).where(_BLOBS.c.sha256 == sha256)
        if self.dialect != "sqlite":
            stmt = stmt.with_for_update()
        count = conn.execute(stmt).scalar()
        if count is None:  # not counted: keep the bytes rather than guess
            return False
        if count > 1:
            conn.execute(
                update(_BLOBS)
                .where(_BLOBS.c.sha256 == sha256)
                .values(refcount=_BLOBS.c.refcount - 1)
            )
            return False
        conn.execute(delete(_BLOBS).where(_BLOBS.c.sha256 == sha256))
        return True

    def blob_refcount(self, sha256: str) -> int:
        """How many live documents use the bytes `sha256` (0 when none)."""
        with self.engine.connect() as conn:
            count = conn.execute(select(_BLOBS.c.refcount).where(_BLOBS.c.sha256 == sha256))
            return int(count.scalar() or 0)

    def set_status(
        self,
        document_id: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        correlation_id: str | None = None,
        principal: str | None = None,
    ) -> str:
        """Move a document to `status`, record the matching history event, and return the
        SHA-256 of its bytes.

        `reason` is the failure reason code (kept only with status `failed`). Raises
        DocumentNotFoundError for an unknown id and DocumentDeletedError for a deleted document.
        """
        if status not in DOCUMENT_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        if status == "failed" and reason and not detail:
            detail = reason
        d = _DOCUMENTS.c
        with self._tx() as conn:
            # The UPDATE locks the live row and returns its bytes' digest in one round trip;
            # only when there is none is the document looked up, to say why.
            changed = conn.execute(
                update(_DOCUMENTS)
                .where(d.id == document_id, d.deleted_at.is_(None))
                .values(
                    status=status,
                    failure_reason=_clip(reason, 64) if status == "failed" else None,
                    updated_at=now,
                )
                .returning(d.sha256)
            ).first()
            if changed is None:
                if self._locked(conn, document_id) is None:
                    raise DocumentNotFoundError(document_id)
                raise DocumentDeletedError(document_id)
            self._event(
                conn,
                document_id,
                status,
                at=now,
                detail=detail,
                correlation_id=correlation_id,
                principal=principal,
            )
        return str(changed.sha256)

    def stale(self, status: str, updated_before: float, limit: int = 100) -> list[StaleDocument]:
        """Live documents in `status` whose last status change is older than `updated_before`
        (epoch seconds), oldest first: what the reconciler looks at."""
        d = _DOCUMENTS.c
        query = (
            select(d.id, d.correlation_id, d.filename, d.updated_at)
            .where(d.status == status, d.deleted_at.is_(None), d.updated_at < updated_before)
            .order_by(d.updated_at, d.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StaleDocument(r.id, r.correlation_id, r.filename, r.updated_at) for r in rows]

    def move_if_unchanged(
        self,
        document: StaleDocument,
        status: str,
        new_status: str,
        *,
        reason: str | None = None,
        detail: str,
        principal: str,
    ) -> bool:
        """Move `document` from `status` to `new_status` only if neither has changed since it
        was read (so that of several reconcilers one acts); record the history event."""
        now = time.time()
        d = _DOCUMENTS.c
        with self._tx() as conn:
            moved = conn.execute(
                update(_DOCUMENTS)
                .where(
                    d.id == document.id,
                    d.status == status,
                    d.updated_at == document.updated_at,
                    d.deleted_at.is_(None),
                )
                .values(
                    status=new_status,
                    failure_reason=_clip(reason, 64) if new_status == "failed" else None,
                    updated_at=now,
                )
            ).rowcount
            if moved:
                self._event(
                    conn,
                    document.id,
                    new_status,
                    at=now,
                    detail=detail,
                    correlation_id=document.correlation_id,
                    principal=principal,
                )
        return bool(moved)

    def add_event(
        self,
        document_id: str,
        event: str,
        *,
        detail: str | None = None,
        correlation_id: str | None = None,
        principal: str | None = None,
    ) -> None:
        """Append a history event (e.g. `extracted`, `validated`) without changing status."""
        with self._tx() as conn:
            if (
                conn.execute(select(_DOCUMENTS.c.id).where(_DOCUMENTS.c.id == document_id)).first()
                is None
            ):
                raise DocumentNotFoundError(document_id)
            self._event(
                conn,
                document_id,
                event,
                at=time.time(),
                detail=detail,
                correlation_id=correlation_id,
                principal=principal,
            )

    def archive(
        self,
        document_id: str,
        result: ExtractionResult,
        validation: ValidationResult,
        *,
        correlation_id: str | None,
        principal: str | None,
        text_excerpt: str | None = None,
        guardrail_findings: Sequence[Finding] = (),
        extracted_at: float | None = None,
        validated_at: float | None = None,
    ) -> bool:
        """Store the extraction and validation of a document and mark it `archived`.

        Idempotent on the document id: archiving again replaces fields, line items and
        findings and records `reprocessed` before `archived`. Returns True when it was a
        reprocess. `result.findings` and `guardrail_findings` are stored as guardrail findings,
        `validation.findings` as validation findings. `extracted_at` and `validated_at` (when
        the orchestrator had each result) add the `extracted` and `validated` history events
        before `archived`, in the same transaction. Raises DocumentNotFoundError for an
        unknown id and DocumentDeletedError for a deleted document.
        """
        # Everything that does not need the database is prepared before the transaction.
        fields = [
            {
                "document_id": document_id,
                "name": name[:64],
                "value": to_jsonable_python(f.value),
                "confidence": f.confidence,
                "page": f.page,
                "evidence": None if f.evidence is None else f.evidence.model_dump(mode="json"),
            }
            for name, f in result.fields.items()
        ]
        items = [
            {
                "document_id": document_id,
                "position": pos,
                "description": item.description,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "amount": item.amount,
            }
            for pos, item in enumerate(_line_items(result.value("line_items")))
        ]
        tagged = [("guardrail", f) for f in (*result.findings, *guardrail_findings)]
        tagged += [("validation", f) for f in validation.findings]
        findings = [
            {
                "document_id": document_id,
                "source": source,
                "rule_id": finding.rule_id[:64],
                "severity": finding.severity,
                "message": finding.message,
                "field": _clip(finding.field, 64),
            }
            for source, finding in tagged
        ]
        issuer = _as_text(result.value("issuer"))
        customer = _as_text(result.value("customer"))
        invoice_number = _as_text(result.value("invoice_number"))
        values: dict[str, Any] = {
            "status": "archived",
            "outcome": validation.outcome,
            "failure_reason": None,
            "document_type": result.document_type,
            "confidence": result.confidence,
            "issuer": _clip(issuer, 512),
            "customer": _clip(customer, 512),
            "invoice_number": _clip(invoice_number, 128),
            "issuer_key": normalise_key(issuer)[:512] or None,
            "invoice_number_key": normalise_key(invoice_number)[:128] or None,
        }
        now = time.time()
        with self._tx() as conn:
            doc = self._locked(conn, document_id)
            if doc is None:
                raise DocumentNotFoundError(document_id)
            if doc.deleted_at is not None:
                raise DocumentDeletedError(document_id)
            # Read after the lock is held: a statement's snapshot predates its lock wait, so this
            # cannot ride in the locking SELECT (a concurrent archive would go unseen).
            reprocess = (
                conn.execute(
                    select(_HISTORY.c.id)
                    .where(_HISTORY.c.document_id == document_id, _HISTORY.c.event == "archived")
                    .limit(1)
                ).first()
                is not None
            )
            events = self._stage_events(
                document_id, result, validation, extracted_at, validated_at, now,
                correlation_id=correlation_id, principal=principal,
            )  # fmt: skip
            if reprocess:
                counts = self._clear_extracted(conn, document_id)
                events.append(
                    self._history(
                        document_id,
                        "reprocessed",
                        at=now,
                        detail=(
                            f"replaced {counts[0]} fields, {counts[1]} line items,"
                            f" {counts[2]} findings; previous outcome {doc.outcome}"
                        ),
                        correlation_id=correlation_id,
                        principal=principal,
                    )
                )
            for table, rows in ((_FIELDS, fields), (_LINE_ITEMS, items), (_FINDINGS, findings)):
                if rows:
                    conn.execute(insert(table), rows)
            if text_excerpt is not None or not reprocess:
                values["text_excerpt"] = _clip(text_excerpt, TEXT_EXCERPT_CHARS)
            self._update(conn, document_id, updated_at=now, **values)
            events.append(
                self._history(
                    document_id,
                    "archived",
                    at=now,
                    detail=f"outcome {validation.outcome}",
                    correlation_id=correlation_id,
                    principal=principal,
                )
            )
            conn.execute(insert(_HISTORY), events)
        return reprocess

    @classmethod
    def _stage_events(
        cls,
        document_id: str,
        result: ExtractionResult,
        validation: ValidationResult,
        extracted_at: float | None,
        validated_at: float | None,
        now: float,
        **kw: Any,
    ) -> list[dict[str, Any]]:
        """The `extracted` and `validated` events of an archive call (times capped at `now`,
        in order)."""
        events = []
        floor = 0.0
        for event, at, detail in (
            ("extracted", extracted_at, f"{result.document_type}, {result.pages} pages"),
            ("validated", validated_at, f"outcome {validation.outcome}"),
        ):
            if at is not None:
                floor = max(floor, min(at, now))
                events.append(cls._history(document_id, event, at=floor, detail=detail, **kw))
        return events

    @staticmethod
    def _clear_extracted(conn: Connection, document_id: str) -> tuple[int, int, int]:
        counts = []
        for table in (_FIELDS, _LINE_ITEMS, _FINDINGS):
            res = conn.execute(delete(table).where(table.c.document_id == document_id))
            counts.append(int(res.rowcount))
        return counts[0], counts[1], counts[2]

    def delete_document(
        self,
        document_id: str,
        *,
        principal: str,
        correlation_id: str | None,
        owner: str | None = None,
        remove_bytes: Callable[[str], object] | None = None,
    ) -> DeleteResult:
        """Remove a document's extracted data and text, keeping a tombstone and its history.

        `owner` limits the deleter to that owner's documents (None: any). `"not_found"` if
        there is no such live document, `"not_owner"` if it is another owner's (nothing is
        changed). When it was the last live document of its bytes, `remove_bytes(sha256)` is
        called before the transaction commits.
        """
        now = time.time()
        with self._tx() as conn:
            doc = self._locked(conn, document_id)
            if doc is None or doc.deleted_at is not None:
                return "not_found"
            if not readable_by(doc.owner, owner):
                return "not_owner"
            counts = self._clear_extracted(conn, document_id)
            self._update(
                conn,
                document_id,
                deleted_at=now,
                updated_at=now,
                issuer=None,
                customer=None,
                invoice_number=None,
                issuer_key=None,
                invoice_number_key=None,
                text_excerpt=None,
            )
            self._event(
                conn,
                document_id,
                "deleted",
                at=now,
                detail=f"removed {counts[0]} fields, {counts[1]} line items, {counts[2]} findings",
                correlation_id=correlation_id,
                principal=principal,
            )
            if self._release(conn, doc.sha256) and remove_bytes is not None:
                remove_bytes(doc.sha256)
        return "deleted"

    # -- reads ------------------------------------------------------------------------------

    def get_document(self, document_id: str) -> dict[str, Any] | None:
        """Everything about a document (a tombstone has `deleted_at` set), or None. The caller
        checks `readable_by(doc["owner"], scope)`."""
        with Session(self.engine) as s:
            doc = s.get(Document, document_id)
            if doc is None:
                return None
            out = _summary(doc)
            fields = _children(
                s,
                DocumentField,
                document_id,
                ("name", "value", "confidence", "page", "evidence"),
            )
            out["fields"] = {f.pop("name"): f for f in fields}
            out["line_items"] = _children(
                s,
                LineItemRow,
                document_id,
                ("position", "description", "quantity", "unit_price", "amount"),
                order=LineItemRow.position,
            )
            out["findings"] = _children(
                s, FindingRow, document_id, ("source", "rule_id", "severity", "message", "field")
            )
            out["history"] = _children(
                s, HistoryRow, document_id, ("at", "event", "detail", "correlation_id", "principal")
            )
            return out

    def stored_file(self, document_id: str) -> tuple[str, str] | None:
        """A live document's (owner, sha256), or None if there is no such live document."""
        stmt = select(_DOCUMENTS.c.owner, _DOCUMENTS.c.sha256).where(
            _DOCUMENTS.c.id == document_id, _DOCUMENTS.c.deleted_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (str(row.owner), str(row.sha256))

    def list_documents(
        self,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        *,
        owner: str | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, keyset-paginated on (created_at, id); `owner`'s documents only unless
        it is None.

        Returns a page and the cursor of the next page (None on the last page). Pages stay
        stable while documents are added. ValueError for a bad status or cursor.
        """
        if status is not None and status not in DOCUMENT_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        stmt = select(Document)
        if status is not None:
            stmt = stmt.where(Document.status == status)
        if owner is not None:
            stmt = stmt.where(Document.owner == owner)
        if not include_deleted:
            stmt = stmt.where(Document.deleted_at.is_(None))
        if cursor is not None:
            created_at, doc_id = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Document.created_at < created_at,
                    and_(Document.created_at == created_at, Document.id < doc_id),
                )
            )
        stmt = stmt.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit + 1)
        with Session(self.engine) as s:
            docs = list(s.scalars(stmt))
        more = len(docs) > limit
        docs = docs[:limit]
        next_cursor = encode_cursor(docs[-1].created_at, docs[-1].id) if more and docs else None
        return [_summary(d) for d in docs], next_cursor

    def search(
        self, query: str, limit: int = 20, *, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """Full-text search over issuer, customer, invoice number, text and filename.

        Every word of the query must match (as a word prefix); best matches first; deleted
        documents are never returned, nor other owners' than `owner` unless it is None.
        """
        terms = search_terms(query)
        if not terms:
            return []
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        # Everyone's, or (a NULL parameter never matches) only the owner's.
        scope = {"all": owner is None, "owner": owner}
        with Session(self.engine) as s:
            if self.dialect == "sqlite":
                match = " AND ".join(f'"{t}"*' for t in terms)
                ids = list(
                    s.scalars(
                        text(
                            "SELECT documents_fts.document_id FROM documents_fts"
                            " JOIN documents ON documents.id = documents_fts.document_id"
                            " WHERE documents_fts MATCH :q AND documents.deleted_at IS NULL"
                            " AND (:all OR documents.owner = :owner)"
                            " ORDER BY documents_fts.rank, documents.created_at DESC LIMIT :n"
                        ),
                        {"q": match, "n": limit, **scope},
                    )
                )
            elif self.dialect == "postgresql":
                tsquery = " & ".join(f"'{t}':*" for t in terms)
                ids = list(
                    s.scalars(
                        text(
                            "SELECT id FROM documents"
                            " WHERE search_vector @@ to_tsquery('simple', :q)"
                            " AND deleted_at IS NULL AND (:all OR owner = :owner)"
                            " ORDER BY ts_rank(search_vector, to_tsquery('simple', :q)) DESC,"
                            " created_at DESC LIMIT :n"
                        ),
                        {"q": tsquery, "n": limit, **scope},
                    )
                )
            else:  # pragma: no cover - only SQLite and PostgreSQL are supported
                raise NotImplementedError(self.dialect)
            if not ids:
                return []
            docs = {d.id: d for d in s.scalars(select(Document).where(Document.id.in_(ids)))}
        return [_summary(docs[i]) for i in ids if i in docs]

    def claim_invoice(
        self,
        document_id: str,
        issuer: str | None,
        invoice_number: str | None,
        *,
        total: Any = None,
        currency: Any = None,
        eligible: bool,
        reads_all: Callable[[str], bool] = lambda _owner: False,
    ) -> DuplicateClaim:
        """Claim the issuer and invoice number (compared case- and punctuation-blind) for a
        document, atomically: the first eligible claimant holds them, every other document is
        told it is a duplicate (see `invoice_claims` for the policy), the holder named only
        when the document's owner may read it (its own, or `reads_all(owner)`). Nothing is claimed
        without both keys. Raises DocumentNotFoundError for an unknown id and
        DocumentDeletedError for a deleted document."""
        issuer_key = normalise_key(issuer)[:512]
        number_key = normalise_key(invoice_number)[:128]
        if not issuer_key or not number_key:
            return DuplicateClaim(duplicate=False)
        with self._tx() as conn:
            doc = self._locked(conn, document_id)
            if doc is None:
                raise DocumentNotFoundError(document_id)
            if doc.deleted_at is not None:
                raise DocumentDeletedError(document_id)
            return invoice_claims.claim(
                conn,
                self.dialect,
                document_id=document_id,
                owner=doc.owner,
                issuer_key=issuer_key,
                number_key=number_key,
                total=canonical_amount(total),
                currency=canonical_currency(currency),
                eligible=eligible,
                owner_reads_all=lambda: reads_all(doc.owner),
            )

    def status_counts(self) -> dict[str, int]:
        """Documents per status (every status present, deleted ones excluded), plus `deleted`."""
        counts = dict.fromkeys(DOCUMENT_STATUSES, 0)
        with Session(self.engine) as s:
            rows = s.execute(
                select(Document.status, func.count())
                .where(Document.deleted_at.is_(None))
                .group_by(Document.status)
            )
            for status, n in rows:
                counts[status] = int(n)
            deleted = s.scalar(
                select(func.count()).select_from(Document).where(Document.deleted_at.is_not(None))
            )
        counts["deleted"] = int(deleted or 0)
        return counts

    def document_counts(self, owner: str | None = None) -> dict[str, Any]:
        """`owner`'s live documents (every owner's when None) by status and by outcome, every
        status and outcome present with zeros; `total` counts them all (documents not yet
        validated have no outcome)."""
        by_status = dict.fromkeys(DOCUMENT_STATUSES, 0)
        by_outcome: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        stmt = select(Document.status, Document.outcome, func.count()).where(
            Document.deleted_at.is_(None)
        )
        if owner is not None:
            stmt = stmt.where(Document.owner == owner)
        with Session(self.engine) as s:
            rows = list(s.execute(stmt.group_by(Document.status, Document.outcome)))
        for status, outcome, n in rows:
            by_status[status] = by_status.get(status, 0) + int(n)
            if outcome is not None:
                by_outcome[outcome] = by_outcome.get(outcome, 0) + int(n)
        return {"by_status": by_status, "by_outcome": by_outcome, "total": sum(by_status.values())}

    # -- event feed -------------------------------------------------------------------------

    def last_history_id(self) -> int:
        """The id of the newest history event (0 when there is none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(_HISTORY.c.id))).scalar() or 0)

    def history_after(
        self, after_id: int, also_ids: Sequence[int] = (), limit: int = 500
    ) -> list[dict[str, Any]]:
        """History events with an id above `after_id` or in `also_ids`, oldest first, each with
        its document's `owner` (the live event feed's one query per poll)."""
        cond = _HISTORY.c.id > after_id
        if also_ids:
            cond = or_(cond, _HISTORY.c.id.in_(list(also_ids)))
        stmt = (
            select(
                _HISTORY.c.id,
                _HISTORY.c.document_id,
                _HISTORY.c.at,
                _HISTORY.c.event,
                _HISTORY.c.correlation_id,
                _HISTORY.c.principal,
                _DOCUMENTS.c.owner,
            )
            .join(_DOCUMENTS, _DOCUMENTS.c.id == _HISTORY.c.document_id)
            .where(cond)
            .order_by(_HISTORY.c.id)
            .limit(max(1, limit))
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

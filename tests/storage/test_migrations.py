"""Migrations 0002 (pipeline archive) to 0008 (A2A tasks): upgrade, downgrade, backfill,
and agreement with the models."""

from __future__ import annotations

import time
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.model import ValidationResult
from bastion.research.store import ResearchStore
from bastion.storage import a2a_models, pipeline_models
from bastion.storage.database import MIGRATIONS_DIR, migrate, shared_engine
from bastion.storage.models import Base
from tests.storage.test_archive_repo import invoice, sha

PIPELINE_TABLES = {
    "documents",
    "document_fields",
    "line_items",
    "findings",
    "history",
    "ingested_files",
    "invoice_claims",
}
RESEARCH_TABLES = {"research_conversations", "research_runs"}
A2A_TABLES = {"a2a_tasks", "a2a_task_clocks"}
MODEL_TABLES = PIPELINE_TABLES | RESEARCH_TABLES | A2A_TABLES


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _insert_document(
    engine: Engine, doc_id: str, issuer: str, by: str = "u", deleted: bool = False
) -> None:
    """A document row as the current revision has it (before 0004: no owner, no sha256)."""
    now = time.time()
    owned = "owner" in {c["name"] for c in inspect(engine).get_columns("documents")}
    columns = "id, filename, content_type, size, status, issuer, uploaded_by, created_at,"
    columns += " updated_at, deleted_at" + (", sha256, owner" if owned else "")
    values = ":id, 'a.pdf', 'application/pdf', 1, 'queued', :issuer, :by, :t, :t, :d"
    values += ", :id, :by" if owned else ""
    sql = f"INSERT INTO documents ({columns}) VALUES ({values})"  # noqa: S608 -- constants
    with engine.begin() as conn:
        conn.execute(
            text(sql),
            {"id": doc_id, "issuer": issuer, "by": by, "t": now, "d": now if deleted else None},
        )


def _fts_hits(engine: Engine, word: str) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = "SELECT document_id FROM documents_fts WHERE documents_fts MATCH :w"
        else:
            sql = "SELECT id FROM documents WHERE search_vector @@ to_tsquery('simple', :w)"
        return list(conn.scalars(text(sql), {"w": word}))


def test_upgrade_head_creates_the_archive(db_url: str) -> None:
    engine = shared_engine(db_url)
    head = ScriptDirectory.from_config(_config(engine)).get_current_head()
    assert _revision(engine) == head
    insp = inspect(engine)
    assert set(insp.get_table_names()) >= MODEL_TABLES | {"api_keys", "audit_records"}
    uniques = {u["name"] for u in insp.get_unique_constraints("ingested_files")}
    assert "uq_ingested_files_path_sha" in uniques
    if engine.dialect.name == "postgresql":
        cols = {c["name"] for c in insp.get_columns("documents")}
        assert "search_vector" in cols
        indexes = {i["name"] for i in insp.get_indexes("documents")}
        assert "ix_documents_search" in indexes
    else:
        with engine.connect() as conn:
            triggers = set(
                conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            )
        assert {"documents_fts_ai", "documents_fts_au", "documents_fts_ad"} <= triggers
    _insert_document(engine, "a" * 64, "Zebra Logistics")
    assert _fts_hits(engine, "zebra") == ["a" * 64]
    migrate(db_url)  # a second upgrade is a no-op
    assert _revision(engine) == head


def test_models_match_the_migration(db_url: str) -> None:
    assert pipeline_models.Document.metadata is Base.metadata
    assert a2a_models.A2ATask.metadata is Base.metadata

    def include(obj: Any, name: str | None, type_: str, reflected: bool, _other: Any) -> bool:
        if type_ == "table":
            return name in MODEL_TABLES
        # PostgreSQL full text: a generated column kept out of the models.
        return not (type_ == "column" and name == "search_vector")

    engine = shared_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include, "compare_type": True}
        )
        diffs = compare_metadata(ctx, Base.metadata)
    # The GIN index on search_vector is reflected as an index the models do not declare.
    diffs = [
        d
        for d in diffs
        if not (
            isinstance(d, tuple) and d[0] == "remove_index" and d[1].name == "ix_documents_search"
        )
    ]
    assert diffs == []


def test_downgrade_to_runtime_and_up_again(db_url: str) -> None:
    engine = shared_engine(db_url)
    _insert_document(engine, "b" * 64, "Before Downgrade")
    cfg = _config(engine)
    command.downgrade(cfg, "0001_runtime")
    assert _revision(engine) == "0001_runtime"
    tables = set(inspect(engine).get_table_names())
    assert not tables & MODEL_TABLES
    assert not any(t.startswith("documents_fts") for t in tables)
    assert {"api_keys", "audit_records"} <= tables
    command.upgrade(cfg, "head")
    assert set(inspect(engine).get_table_names()) >= MODEL_TABLES
    _insert_document(engine, "c" * 64, "After Upgrade")
    assert _fts_hits(engine, "upgrade") == ["c" * 64]
    assert _fts_hits(engine, "downgrade") == []


def test_sqlite_index_rows_follow_the_document_rowid(sqlite_url: str) -> None:
    engine = shared_engine(sqlite_url)
    _insert_document(engine, "d" * 64, "Original Name")
    _insert_document(engine, "e" * 64, "Other Company")
    with engine.begin() as conn:
        conn.execute(text("UPDATE documents SET issuer = 'Renamed Company' WHERE id = :i"),
                     {"i": "d" * 64})  # fmt: skip
        rows = conn.execute(
            text(
                "SELECT f.rowid, d.rowid FROM documents_fts f"
                " JOIN documents d ON d.id = f.document_id"
            )
        ).all()
        # The update's delete is by rowid, not a scan of the unindexed id column.
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                text("EXPLAIN QUERY PLAN DELETE FROM documents_fts WHERE rowid = 1")
            )
        )
    assert all(fts == doc for fts, doc in rows) and len(rows) == 2
    assert "VIRTUAL TABLE INDEX" in plan
    assert _fts_hits(engine, "renamed") == ["d" * 64]
    assert _fts_hits(engine, "original") == []
    command.downgrade(_config(engine), "0002_pipeline")
    _insert_document(engine, "f" * 64, "Downgraded Indexing")
    assert _fts_hits(engine, "downgraded") == ["f" * 64]
    assert _fts_hits(engine, "renamed") == ["d" * 64]


def test_0004_gives_existing_documents_their_uploader_as_owner(db_url: str) -> None:
    engine = shared_engine(db_url)
    cfg = _config(engine)
    command.downgrade(cfg, "0003_fts_by_rowid")
    _insert_document(engine, "1" * 64, "Kept Live", by="alice")
    _insert_document(engine, "2" * 64, "Deleted Before", by="bob", deleted=True)
    command.upgrade(cfg, "0004_document_owners")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, sha256, owner FROM documents ORDER BY id")).all()
        blobs = conn.execute(text("SELECT sha256, refcount FROM blobs")).all()
    assert [tuple(r) for r in rows] == [("1" * 64, "1" * 64, "alice"), ("2" * 64, "2" * 64, "bob")]
    assert [tuple(b) for b in blobs] == [("1" * 64, 1)]  # a deleted document's bytes are gone
    assert _fts_hits(engine, "kept") == ["1" * 64]
    command.downgrade(cfg, "0003_fts_by_rowid")
    assert "blobs" not in inspect(engine).get_table_names()
    command.upgrade(cfg, "head")
    assert _revision(engine) == ScriptDirectory.from_config(cfg).get_current_head()


def test_claims_are_backfilled_from_the_archive(db_url: str) -> None:
    engine = shared_engine(db_url)
    cfg = _config(engine)
    repo = ArchiveRepository(engine)
    docs: dict[str, str] = {}
    for name, number, outcome, owner in (
        ("holder", "INV-1", "valid", "alice"),
        ("resent", "inv 1", "valid", "bob"),
        ("invalid", "INV-2", "invalid", "alice"),
        ("review", "INV-3", "needs_review", "bob"),
        ("deleted", "INV-4", "valid", "alice"),
        ("queued", "INV-5", None, "alice"),
    ):
        docs[name] = repo.record_upload(
            sha(f"backfill-{name}"),
            owner=owner,
            filename="a.pdf",
            content_type="application/pdf",
            size=1,
            principal=owner,
        ).id
        if outcome is not None:
            result = invoice(number=number, total=119.0)
            repo.archive(
                docs[name],
                result,
                ValidationResult(outcome=outcome),
                correlation_id=None,
                principal="orchestrator",
            )
    repo.delete_document(docs["deleted"], principal="alice", correlation_id=None)
    # The archive as it stood before 0005 (the repository writes the current schema).
    command.downgrade(cfg, "0004_document_owners")
    assert "invoice_claims" not in inspect(engine).get_table_names()
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT invoice_number_key, document_id, total, currency, owner"
                " FROM invoice_claims ORDER BY invoice_number_key"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("inv1", docs["holder"], "119", "EUR", "alice"),
        ("inv3", docs["review"], "119", "EUR", "bob"),
    ]
    # The backfilled claim holds: a new copy of INV-1 is a duplicate of the oldest one.
    copy = repo.record_upload(
        sha("backfill-copy"),
        owner="alice",
        filename="a.pdf",
        content_type="application/pdf",
        size=1,
        principal="alice",
    ).id
    answer = repo.claim_invoice(copy, "Zebra Logistics GmbH", "INV-1", total=119.0, eligible=True)
    assert (answer.duplicate, answer.other_id) == (True, docs["holder"])


def test_0006_research_tables_down_and_up(db_url: str) -> None:
    engine = shared_engine(db_url)
    cfg = _config(engine)
    store = ResearchStore(engine)
    run = store.start_run("alice", "Before the downgrade?", "research")
    indexes = {i["name"] for i in inspect(engine).get_indexes("research_runs")}
    assert {"uq_research_runs_conversation_seq", "ix_research_runs_status_started"} <= indexes
    conversation_indexes = {
        i["name"] for i in inspect(engine).get_indexes("research_conversations")
    }
    assert "ix_research_conversations_owner_created" in conversation_indexes
    command.downgrade(cfg, "0005_invoice_claims")
    assert _revision(engine) == "0005_invoice_claims"
    tables = set(inspect(engine).get_table_names())
    assert not tables & RESEARCH_TABLES
    assert tables >= PIPELINE_TABLES
    command.upgrade(cfg, "head")
    assert _revision(engine) == ScriptDirectory.from_config(cfg).get_current_head()
    assert store.get_run(run.id, owner="alice") is None  # the downgrade dropped the data
    again = store.start_run("alice", "After the upgrade?", "research")
    assert store.cancel_run(again.id, owner="alice")


def test_0007_field_evidence_down_and_up(db_url: str) -> None:
    engine = shared_engine(db_url)
    cfg = _config(engine)
    repo = ArchiveRepository(engine)

    def evidence_column() -> bool:
        return "evidence" in {c["name"] for c in inspect(engine).get_columns("document_fields")}

    assert evidence_column()
    command.downgrade(cfg, "0006_research")
    assert _revision(engine) == "0006_research"
    assert not evidence_column()
    # A field archived before 0007: no evidence column to write.
    _insert_document(engine, "d" * 64, "Zebra Logistics GmbH")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO document_fields (document_id, name, value, confidence, page)"
                " VALUES (:id, 'total', '119.0', 0.9, 1)"
            ),
            {"id": "d" * 64},
        )
    command.upgrade(cfg, "head")
    assert evidence_column()
    old = repo.get_document("d" * 64)
    assert old is not None
    assert old["fields"]["total"] == {
        "value": 119.0,
        "confidence": 0.9,
        "page": 1,
        "evidence": None,
    }


def test_0008_a2a_tasks_down_and_up(db_url: str) -> None:
    engine = shared_engine(db_url)
    cfg = _config(engine)
    indexes = {i["name"] for i in inspect(engine).get_indexes("a2a_tasks")}
    assert {"ix_a2a_tasks_owner_seq", "ix_a2a_tasks_agent_seq", "ix_a2a_tasks_state"} <= indexes
    command.downgrade(cfg, "0007_field_evidence")
    assert _revision(engine) == "0007_field_evidence"
    assert not set(inspect(engine).get_table_names()) & A2A_TABLES
    command.upgrade(cfg, "head")
    assert set(inspect(engine).get_table_names()) >= A2A_TABLES

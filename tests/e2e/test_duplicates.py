"""Duplicate invoices processed at once, through the real agents and worker, on SQLite and
PostgreSQL: exactly one copy is valid, every other one is invalid with a duplicate finding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.samples import bundled_dir
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.storage.database import shared_engine
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads, worker_in_thread
from tests.cli.test_cli import run
from tests.cli.test_submit_cli import _console  # noqa: F401 (the services' logs on stderr)
from tests.e2e.test_pipeline_agents import Flow

WORKERS = 8
UPLOADS = 20
ALTERED = 4  # of the uploads: the same invoice number, another amount
NUMBER = "INV-07-000000"
DUPLICATE, ALTERED_RULE = "duplicate.invoice", "duplicate.invoice.amount_differs"
# The audit writer's own process is tested in tests/security; in-process starts much faster.
IN_PROCESS_AUDIT = {"writer": "in_process", "flush_interval_seconds": 0.05}


def duplicate_findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["rule_id"].startswith("duplicate.")]


@pytest.fixture
def flow(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    """The pipeline on `db_url` (credentials included), its worker not started yet."""
    monkeypatch.setenv("BASTION_DATABASE__URL", db_url)
    result = init_project(tmp_path / "proj")
    assign_ports(
        result.config,
        pipeline={"worker_concurrency": WORKERS, "retry_backoff_base_seconds": 0.05},
        audit=IN_PROCESS_AUDIT,
    )
    with pipeline_in_threads(result.config, worker=False, gateway=False) as settings:
        yield Flow(settings, result.admin_key)


def test_twenty_near_identical_uploads_have_exactly_one_valid(flow: Flow) -> None:
    # The same invoice sent again and again (other bytes each time), and the same number from
    # the same issuer with other line items: an altered copy.
    copies = [synthetic_invoice(0, seed=7, copy=c) for c in range(UPLOADS - ALTERED)]
    altered = [synthetic_invoice(5 * k, seed=7, number=NUMBER) for k in range(1, ALTERED + 1)]
    uploader = {}
    for n, data in enumerate(copies + altered):
        principal = "submitter" if n % 2 else "clerk"
        doc_id, _ = flow.submit(data, f"copy-{n}.pdf", principal=principal)
        uploader[doc_id] = principal
    assert len(uploader) == UPLOADS
    # All of them queued before the worker starts: it takes eight at a time.
    with worker_in_thread(flow.settings):
        docs = {doc_id: flow.wait(doc_id, {"archived", "failed"}) for doc_id in uploader}
    assert {doc["status"] for doc in docs.values()} == {"archived"}
    assert {doc["fields"]["invoice_number"]["value"] for doc in docs.values()} == {NUMBER}
    valid = [doc_id for doc_id, doc in docs.items() if doc["outcome"] == "valid"]
    assert len(valid) == 1, [(d["outcome"], d["findings"]) for d in docs.values()]
    holder = valid[0]
    assert duplicate_findings(docs[holder]) == []
    holder_total = docs[holder]["fields"]["total"]["value"]
    for doc_id, doc in docs.items():
        if doc_id == holder:
            continue
        assert doc["outcome"] == "invalid"
        # Otherwise valid: the duplicate finding is what makes it invalid.
        [finding] = [f for f in doc["findings"] if f["severity"] == "error"]
        same = doc["fields"]["total"]["value"] == holder_total
        assert finding["rule_id"] == (DUPLICATE if same else ALTERED_RULE), finding
        # The holder is named to its own uploader only.
        named = f"document {holder}" in finding["message"]
        assert named is (uploader[doc_id] == uploader[holder]), finding["message"]
        assert named or "a document of another uploader" in finding["message"]
    altered_ids = set(list(uploader)[-ALTERED:])
    rules = [duplicate_findings(docs[d])[0]["rule_id"] for d in altered_ids if d != holder]
    assert ALTERED_RULE in rules


def test_submit_of_an_invoice_and_its_resent_copy(tmp_path: Path) -> None:
    """`bastion submit invoice_de.pdf invoice_de_duplicate.pdf`: processed side by side."""
    config = init_project(tmp_path / "proj").config
    assign_ports(config, audit=IN_PROCESS_AUDIT)
    files = [bundled_dir() / "invoice_de.pdf", bundled_dir() / "invoice_de_duplicate.pdf"]
    with pipeline_in_threads(config) as settings:
        result = run(
            "submit", *map(str, files), "--json", "--timeout", "90", "--config", str(config)
        )
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
    assert sorted(row["outcome"] for row in rows) == ["invalid", "valid"]
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    docs = {row["outcome"]: repo.get_document(row["id"]) for row in rows}
    original, copy = docs["valid"], docs["invalid"]
    assert original is not None and copy is not None
    assert duplicate_findings(original) == []
    [finding] = duplicate_findings(copy)
    assert finding["rule_id"] == DUPLICATE
    # Both uploaded with the same key (principal `submitter`): the original is named.
    assert f"is already held by document {original['id']}" in finding["message"]

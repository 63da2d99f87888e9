"""The four agents and the worker over real HTTP: the document flow, rejections, least privilege.

Uploads are recorded the way the gateway records them (object store, archive row, queue
message), so these tests do not depend on the gateway.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.config import Settings
from bastion.core.context import new_correlation_id
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.samples import render_samples
from bastion.pipeline.stores import object_store, open_pipeline_queue
from bastion.project import init_project
from bastion.security.secrets import resolve
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.pipeline import hostile


class Flow:
    def __init__(self, settings: Settings, admin_key: str) -> None:
        self.settings = settings
        self.config = settings.base_dir / "bastion.yaml"
        self.admin_key = admin_key
        self.repo = ArchiveRepository(shared_engine(settings.database_url()))
        self.queue = open_pipeline_queue(settings)

    def submit(
        self,
        data: bytes,
        filename: str = "doc.pdf",
        principal: str = "submitter",
        *,
        send: bool = True,
    ) -> tuple[str, str]:
        """Record an upload as the gateway does; returns (document id, correlation id).
        `send=False`: the queue send is lost (the queue was down after the record was made)."""
        cid = new_correlation_id()
        record = self.repo.record_upload(
            hashlib.sha256(data).hexdigest(),
            owner=principal,
            filename=filename,
            content_type="application/pdf",
            size=len(data),
            principal=principal,
            correlation_id=cid,
        )
        object_store(self.settings).put(data)
        if record.created and send:
            self.queue.send({"document_id": record.id, "correlation_id": cid, "filename": filename})
        return record.id, cid

    def wait(self, doc_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.repo.get_document(doc_id)
            assert doc is not None
            if doc["status"] in statuses:
                return doc
            assert time.monotonic() < deadline, f"still {doc['status']}"
            time.sleep(0.05)

    def key(self, principal: str) -> str:
        return resolve(f"secret://file/secrets/{principal}.key", self.settings.base_dir).get()

    def rpc(self, agent: str, method: str, params: Any, key: str) -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return httpx.post(
            self.settings.agents[agent].url + "/message",
            json=body,
            headers={"X-API-Key": key},
            timeout=30,
        )

    def audit(self, **where: Any) -> list[AuditRecord]:
        with Session(shared_engine(self.settings.database_url())) as s:
            rows = s.scalars(select(AuditRecord).order_by(AuditRecord.ts)).all()
        return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]

    def wait_audit(self, timeout: float = 5, **where: Any) -> list[AuditRecord]:
        deadline = time.monotonic() + timeout
        while not (rows := self.audit(**where)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return rows


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    directory = tmp_path_factory.mktemp("pipeline")
    result = init_project(directory)
    assign_ports(
        result.config,
        pipeline={
            "retry_backoff_base_seconds": 0.05,
            "max_receive_count": 3,
            "reconcile_every_seconds": 0.2,
            "requeue_after_seconds": 1.0,
        },
        audit={"flush_interval_seconds": 0.05},
    )
    with pipeline_in_threads(result.config, gateway=False) as settings:
        yield Flow(settings, result.admin_key)


def test_invoice_flows_through_all_agents_under_one_correlation_id(flow: Flow) -> None:
    samples = render_samples()
    doc_id, cid = flow.submit(samples["invoice_en_line_items.pdf"], "invoice.pdf")
    doc = flow.wait(doc_id, {"archived", "failed"})
    assert doc["status"] == "archived", doc
    assert doc["document_type"] == "invoice"
    assert doc["outcome"] in {"valid", "needs_review"}
    assert doc["fields"]["invoice_number"]
    assert doc["line_items"]
    # Every hop, and no other, is in the trail under the upload's correlation ID.
    hops = {
        (r.agent, r.method, r.principal, r.outcome) for r in flow.wait_audit(correlation_id=cid)
    }
    deadline = time.monotonic() + 5
    while len(hops) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
        hops = {(r.agent, r.method, r.principal, r.outcome) for r in flow.audit(correlation_id=cid)}
    assert hops == {
        ("archivist", "set_status", "worker", "ok"),  # the worker's `processing`
        ("orchestrator", "process_document", "worker", "ok"),
        ("extractor", "extract", "orchestrator", "ok"),
        ("validator", "validate", "orchestrator", "ok"),
        ("archivist", "claim_invoice", "validator", "ok"),
        ("archivist", "archive", "orchestrator", "ok"),
    }
    # `bastion audit tail --correlation ID` shows that path, in call order.
    from tests.cli.test_audit_cli import run

    shown = run("audit", "tail", "--correlation", cid, "--json", "--config", str(flow.config))
    assert shown.exit_code == 0, shown.output
    path = [(r["agent"], r["method"]) for r in json.loads(shown.output)]
    assert path[:2] == [("archivist", "set_status"), ("orchestrator", "process_document")]
    assert path[2] == ("extractor", "extract") and path[-1] == ("archivist", "archive")
    events = [h["event"] for h in doc["history"]]
    assert events[0] == "received" and "processing" in events
    assert events[-3:] == ["extracted", "validated", "archived"]
    assert flow.queue.depth() == 0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (hostile.encrypted_with_password, "encrypted"),
        (hostile.javascript_open_action, "javascript"),
        (hostile.truncated, "truncated"),
        (lambda: hostile.many_pages(3000), "too_many_pages"),
        (hostile.decompression_bomb, "decompression_limit"),
        (hostile.png_renamed, "not_pdf"),
        (hostile.empty, "empty"),
    ],
)
def test_rejected_document_ends_in_dlq_with_reason(flow: Flow, make: Any, reason: str) -> None:
    # Submitted past the gateway's checks, as a file from another ingestion path could be.
    doc_id, cid = flow.submit(make(), "bad.pdf")
    doc = flow.wait(doc_id, {"archived", "failed"})
    assert doc["status"] == "failed"
    assert doc["failure_reason"] == reason
    dead = [d for d in flow.queue.dlq_list() if d.body["document_id"] == doc_id]
    assert [d.reason for d in dead] == [reason]
    rejected = flow.wait_audit(correlation_id=cid, agent="extractor")
    assert rejected[0].outcome == "error:-32050" and rejected[0].detail == reason
    # The extractor is unharmed: the next document goes through.
    ok_id, _ = flow.submit(render_samples()["invoice_fr.pdf"] + reason.encode(), "ok.pdf")
    assert flow.wait(ok_id, {"archived", "failed"})["status"] == "archived"


def test_same_bytes_archived_again_keep_one_record(flow: Flow) -> None:
    data = render_samples()["report_quarterly.pdf"]
    doc_id, _ = flow.submit(data)
    flow.wait(doc_id, {"archived"})
    # Deliver the same document again, as a redelivery after a crash would.
    flow.queue.send({"document_id": doc_id, "correlation_id": new_correlation_id()})
    deadline = time.monotonic() + 30
    while flow.queue.depth() and time.monotonic() < deadline:
        time.sleep(0.05)
    doc = flow.wait(doc_id, {"archived"})
    assert [h["event"] for h in doc["history"]].count("reprocessed") == 1
    assert len(flow.repo.search("quarterly")) >= 1
    assert sum(1 for d in flow.repo.list_documents(limit=500)[0] if d["id"] == doc_id) == 1


@pytest.mark.parametrize(
    ("caller", "agent", "method", "params"),
    [
        ("extractor", "archivist", "archive", {"document_id": "0" * 64}),
        ("worker", "extractor", "extract", {"document_id": "0" * 64}),
        ("gateway", "orchestrator", "process_document", {"document_id": "0" * 64}),
        ("validator", "archivist", "get_document", {"document_id": "0" * 64}),
        ("orchestrator", "archivist", "claim_invoice", {"issuer": "a", "invoice_number": "1"}),
    ],
)
def test_call_outside_grant_is_rejected_and_audited(
    flow: Flow, caller: str, agent: str, method: str, params: dict[str, Any]
) -> None:
    cid = new_correlation_id()
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    resp = httpx.post(
        flow.settings.agents[agent].url + "/message",
        content=json.dumps(body),
        headers={
            "X-API-Key": flow.key(caller),
            "X-Correlation-ID": cid,
            "content-type": "application/json",
        },
        timeout=10,
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == -32041
    [record] = flow.wait_audit(correlation_id=cid)
    assert (record.principal, record.agent, record.method) == (caller, agent, method)
    assert record.outcome == "denied:authorize"


@pytest.mark.parametrize("agent", ["orchestrator", "extractor", "validator", "archivist"])
def test_every_agent_answers_get_status_to_monitoring_only(flow: Flow, agent: str) -> None:
    from bastion.security.stack import build_api_key_store

    monitoring = build_api_key_store(flow.settings).create("monitoring")
    ok = flow.rpc(agent, "get_status", {}, monitoring).json()["result"]
    assert ok["agent"] == agent and ok["status"] == "ok"
    denied = flow.rpc(agent, "get_status", {}, flow.key("submitter"))
    assert denied.status_code == 403


def test_malformed_params_are_invalid_params(flow: Flow) -> None:
    resp = flow.rpc(
        "orchestrator", "process_document", {"document_id": "../etc/passwd"}, flow.admin_key
    )
    assert resp.json()["error"]["code"] == -32602
    unstored = hashlib.sha256(b"x").hexdigest()
    params = {"document_id": "doc_" + "a" * 26, "sha256": unstored}
    resp = flow.rpc("extractor", "extract", params, flow.admin_key)
    assert resp.json()["error"]["code"] == -32051
    del params["sha256"]  # the extractor reads bytes by their sha256, never by a document id
    resp = flow.rpc("extractor", "extract", params, flow.admin_key)
    assert resp.json()["error"]["code"] == -32602


def test_unparseable_message_is_dead_lettered(flow: Flow) -> None:
    msg_id = flow.queue.send({"document_id": "not-a-hash"})
    deadline = time.monotonic() + 20
    while not any(d.id == msg_id for d in flow.queue.dlq_list()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [dead] = [d for d in flow.queue.dlq_list() if d.id == msg_id]
    assert dead.reason == "bad_message"


def test_worker_retries_then_dead_letters_when_orchestrator_is_down(tmp_path: Path) -> None:
    import asyncio

    from bastion.pipeline.worker import Worker

    result = init_project(tmp_path / "p")
    assign_ports(
        result.config,
        pipeline={"retry_backoff_base_seconds": 0.01, "max_receive_count": 3},
        client={"max_retries": 0, "connect_timeout_seconds": 0.5},
    )

    async def run(settings: Settings, flow: Flow) -> dict[str, int]:
        worker = Worker(settings, concurrency=1)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(400):
            if flow.queue.dlq_depth():
                break
            await asyncio.sleep(0.025)
        stop.set()
        await task
        await worker.aclose()
        return worker.counts

    # Only the archivist runs: nothing listens on the orchestrator's port.
    only_archivist = {"worker": False, "gateway": False, "only": ("archivist",)}
    with pipeline_in_threads(result.config, **only_archivist) as settings:  # type: ignore[arg-type]
        flow = Flow(settings, result.admin_key)
        doc_id, _ = flow.submit(render_samples()["invoice_fr.pdf"])
        counts = asyncio.run(run(settings, flow))
    assert counts["retried"] == 2 and counts["dead_lettered"] == 1
    [dead] = flow.queue.dlq_list()
    assert dead.reason == "orchestrator_unreachable" and dead.receive_count == 3
    doc = flow.repo.get_document(doc_id)
    assert doc is not None and doc["status"] == "failed"
    assert doc["failure_reason"] == "orchestrator_unreachable"


def test_an_upload_whose_queue_send_was_lost_is_archived_by_the_reconciler(flow: Flow) -> None:
    doc_id, cid = flow.submit(render_samples()["invoice_de.pdf"], "lost.pdf", send=False)
    doc = flow.wait(doc_id, {"archived"})
    assert doc["correlation_id"] == cid
    details = [(e["event"], e.get("detail") or "") for e in doc["history"]]
    assert any(ev == "queued" and d.startswith("requeued") for ev, d in details), details


def test_hostile_text_is_archived_for_review_with_its_findings(flow: Flow) -> None:
    doc_id, _ = flow.submit(hostile.injected_invoice(), "injected.pdf")
    doc = flow.wait(doc_id, {"archived", "failed"})
    assert doc["status"] == "archived" and doc["outcome"] == "needs_review"
    rules = {f["rule_id"] for f in doc["findings"]}
    assert "guardrail.prompt_attack" in rules
    line_id, _ = flow.submit(hostile.megabyte_line(run=256), "long-line.pdf")
    doc = flow.wait(line_id, {"archived", "failed"})
    assert doc["status"] == "archived" and doc["outcome"] == "needs_review"
    assert "guardrail.oversized_line" in {f["rule_id"] for f in doc["findings"]}

"""Crash safety: a worker killed with SIGKILL loses nothing and duplicates nothing.

The agents run in this process; the worker runs as its own process, from the same
`bastion.yaml`, so that it can be killed mid-document. Delivery is at least once (the message
reappears after its visibility timeout) and the archive is idempotent on the SHA-256.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.pipeline.extract import extract_document
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.storage.database import shared_engine
from bastion.storage.pipeline_models import Document, DocumentField, LineItemRow
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.e2e.test_pipeline_agents import Flow


class Worker:
    """The worker as a separate process that can be killed and started again."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bastion", "serve", "worker", "--config", str(self.config)],
                stdout=out,
                stderr=out,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.kills += 1

    def stop(self) -> int | None:
        """SIGTERM: the worker finishes what it holds and exits; its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None
        self.process.terminate()
        return self.process.wait(30)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Flow, Worker]]:
    result = init_project(tmp_path / "p")
    assign_ports(
        result.config,
        pipeline={
            "visibility_timeout_seconds": 2,
            "max_receive_count": 50,
            "worker_concurrency": 4,
            "retry_backoff_base_seconds": 0.1,
        },
    )
    with pipeline_in_threads(result.config, gateway=False, worker=False) as settings:
        worker = Worker(result.config, tmp_path / "worker.log")
        try:
            yield Flow(settings, result.admin_key), worker
        finally:
            worker.stop()


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sigkill_mid_document_then_restart_archives_it_exactly_once(
    stack: tuple[Flow, Worker],
) -> None:
    flow, worker = stack
    data = synthetic_invoice(1, extra_pages=150)  # takes a while to extract
    doc_id, _ = flow.submit(data)
    worker.start()
    _wait(lambda: flow.repo.get_document(doc_id)["status"] == "processing", 60, "processing")  # type: ignore[index]
    worker.kill()
    assert flow.queue.stats().in_flight == 1  # claimed, not acknowledged
    worker.start()
    _wait(lambda: flow.queue.depth() == 0, 60, "the queue to drain")
    doc = flow.repo.get_document(doc_id)
    assert doc is not None and doc["status"] == "archived"
    assert flow.queue.dlq_depth() == 0
    expected = extract_document(data)
    engine = shared_engine(flow.settings.database_url())
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 1
        fields = s.scalar(
            select(func.count())
            .select_from(DocumentField)
            .where(DocumentField.document_id == doc_id)
        )
        items = s.scalar(
            select(func.count()).select_from(LineItemRow).where(LineItemRow.document_id == doc_id)
        )
    assert fields == len(expected.fields)
    assert items == len(expected.value("line_items") or [])
    assert sum(h["event"] == "processing" for h in doc["history"]) >= 2  # it was tried again
    time.sleep(1)  # past start-up: the worker's signal handlers are installed
    assert worker.stop() == 0  # SIGTERM is a clean stop


@pytest.mark.timeout(240)
def test_soak_300_documents_with_random_worker_kills(
    stack: tuple[Flow, Worker],
) -> None:
    flow, worker = stack
    rng = random.Random(7)
    docs = [synthetic_invoice(n, seed=9) for n in range(300)]
    ids = {flow.submit(data, f"inv-{n}.pdf")[0] for n, data in enumerate(docs)}
    assert len(ids) == 300
    # Kills at random points of the backlog's progress, not of the clock: however fast the
    # pipeline runs, each lands while documents are still in flight.
    kill_at = sorted(rng.sample(range(20, 260), 6))
    worker.start()
    deadline = time.monotonic() + 150
    while flow.queue.depth() and time.monotonic() < deadline:
        time.sleep(0.05)
        archived = flow.repo.status_counts().get("archived", 0)
        if kill_at and archived >= kill_at[0]:
            kill_at.pop(0)
            worker.kill()
            worker.start()
    assert flow.queue.depth() == 0, "the queue did not drain"
    assert worker.kills >= 5, f"only {worker.kills} kills landed before the backlog drained"
    assert flow.queue.dlq_depth() == 0
    counts = flow.repo.status_counts()
    assert counts.get("archived") == 300, counts
    engine = shared_engine(flow.settings.database_url())
    with Session(engine) as s:
        assert set(s.scalars(select(Document.id))) == ids
        per_doc = dict(
            s.execute(
                select(LineItemRow.document_id, func.count()).group_by(LineItemRow.document_id)
            ).all()
        )
    # No document's line items were written twice (each invoice has one to four).
    assert len(per_doc) == 300 and all(1 <= n <= 4 for n in per_doc.values())

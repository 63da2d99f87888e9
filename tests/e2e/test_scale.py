"""Correctness at scale, on PostgreSQL and Redis: 300 documents through 3 workers and 2
replicas of each pipeline agent, every one a process of its own, while random ones are
SIGKILLed and started again (as a supervisor or an orchestrator of containers would).

The archive is PostgreSQL (a schema of the test's own), the queue Redis Streams (a key prefix
of the test's own) or PostgreSQL (another schema), rate limits are counted in Redis; documents
are uploaded through the gateway. After the run, read from the database directly: every
document is archived exactly once (no document lost, none with its fields or line items
written twice), none is left `processing`, and every audit chain (one per replica) verifies.
The kills come from a seeded RNG (`BASTION_TEST_SCALE_SEED` to replay a run; the seed is
printed).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.config import Settings, load_settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.stores import open_pipeline_queue
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.runtime import Supervisor
from bastion.security import resolve, verify_chain
from bastion.storage.database import shared_engine
from bastion.storage.pipeline_models import Document, DocumentField, HistoryRow, LineItemRow
from bastion.testing.scale_stack import Layout, scale_out, scale_specs, sigkill
from bastion.testing.uploader import Uploader
from tests.conftest import _postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DOCUMENTS = 300
WORKERS = 3
REPLICAS = 2
KILLS = 8
UPLOADERS = 8
RUN_SECONDS = 150  # the whole backlog, kills included; the test's own cap is above it


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL schema of the test's own as `database.url`, for this process and the
    children it starts (credentials included: `bastion init` writes them there)."""
    with _postgres_schema("scale") as url:
        monkeypatch.setenv("BASTION_DATABASE__URL", url)
        try:
            yield url
        finally:
            shared_engine(url).dispose()


@pytest.fixture(params=["redis", "postgres"], ids=["redis-queue", "postgres-queue"])
def queue_url(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> str:
    """The queue on Redis Streams (a key prefix of the test's own) or on PostgreSQL (a schema
    of its own)."""
    if request.param == "redis":
        return f"{redis_url}?prefix={redis_prefix}queue"
    return str(request.getfixturevalue("postgres_queue_url"))


@pytest.fixture
def stack(
    tmp_path: Path, database: str, redis_url: str, queue_url: str
) -> Iterator[tuple[Settings, Supervisor, Layout]]:
    config = init_project(tmp_path / "p").config
    layout = scale_out(
        config,
        replicas=REPLICAS,
        workers=WORKERS,
        pipeline={
            "queue_url": queue_url,
            "visibility_timeout_seconds": 5,
            "consumer_lease_seconds": 3,
            "max_receive_count": 50,
            "retry_backoff_base_seconds": 0.1,
            "retry_backoff_max_seconds": 2,
            "reconcile_every_seconds": 2,
            "requeue_after_seconds": 10,
        },
        rate_limit={"redis_url": redis_url},
        client={"replica_probe_seconds": 0.5, "breaker_reset_seconds": 2},
        logging={"level": "WARNING"},
        audit={"writer": "in_process"},  # 9 processes fewer; a kill loses what it buffered
        waf={"rate_limit": 10 * DOCUMENTS},
    )
    settings = load_settings(config)
    supervisor = Supervisor(
        scale_specs(config, layout), log_dir=tmp_path / "logs", ready_timeout=90
    )
    started = time.monotonic()
    with supervisor:
        print(f"{len(supervisor.specs)} processes ready in {time.monotonic() - started:.1f} s")
        yield settings, supervisor, layout


@pytest.mark.timeout(300)
def test_300_documents_archived_exactly_once_while_workers_and_replicas_are_sigkilled(
    stack: tuple[Settings, Supervisor, Layout],
) -> None:
    settings, supervisor, layout = stack
    seed = int(os.environ.get("BASTION_TEST_SCALE_SEED") or random.randrange(2**32))
    print(f"scale test seed: {seed} (BASTION_TEST_SCALE_SEED={seed} replays its kills)")
    rng = random.Random(seed)
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    docs = [synthetic_invoice(n, seed=15) for n in range(DOCUMENTS)]
    uploader = Uploader(settings)
    started = time.monotonic()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        uploads = list(
            pool.map(lambda n: uploader.upload(docs[n], f"inv-{n}.pdf"), range(DOCUMENTS))
        )
    ids = {doc_id for doc_id, _ in uploads}
    assert len(ids) == DOCUMENTS

    # Kills at random points of the backlog's progress, not of the clock, so that each lands
    # while documents are in flight; workers and agent replicas in turn.
    kill_at = sorted(rng.sample(range(10, DOCUMENTS - 40), KILLS))
    killed: list[str] = []
    deadline = time.monotonic() + RUN_SECONDS
    counts = repo.status_counts()
    while counts["archived"] + counts["failed"] < DOCUMENTS:
        assert time.monotonic() < deadline, f"not done in {RUN_SECONDS} s: {counts}, {killed}"
        assert not supervisor.failures, supervisor.failures
        if kill_at and counts["archived"] >= kill_at[0]:
            group = layout.workers if len(killed) % 2 == 0 else layout.agent_replicas
            running = [name for name in group if supervisor.is_ready(name)]
            if running:  # else the group is restarting: this kill waits for the next look
                kill_at.pop(0)
                target = rng.choice(running)
                assert sigkill(supervisor, target)
                killed.append(target)
        time.sleep(0.1)
        counts = repo.status_counts()
    print(f"{DOCUMENTS} documents in {time.monotonic() - started:.1f} s; SIGKILLed {killed}")
    # A fast backlog can end before the last kill points: at least half of them landed.
    assert len(killed) >= KILLS // 2, killed
    supervisor.stop()  # SIGTERM: what each process holds of the audit trail is flushed

    counts = repo.status_counts()
    assert counts["archived"] == DOCUMENTS, counts
    assert counts["processing"] == counts["queued"] == counts["failed"] == 0, counts
    engine = shared_engine(settings.database_url())
    with Session(engine) as s:
        assert set(s.scalars(select(Document.id))) == ids
        field_rows = s.execute(
            select(DocumentField.document_id, DocumentField.name, func.count()).group_by(
                DocumentField.document_id, DocumentField.name
            )
        ).all()
        attempts = s.scalar(
            select(func.count()).select_from(HistoryRow).where(HistoryRow.event == "processing")
        )
        item_rows = s.execute(
            select(LineItemRow.document_id, LineItemRow.position, func.count()).group_by(
                LineItemRow.document_id, LineItemRow.position
            )
        ).all()
    assert {doc_id for doc_id, _, _ in field_rows} == ids
    assert [row for row in field_rows if row[2] != 1] == []  # no field written twice
    assert {doc_id for doc_id, _, _ in item_rows} == ids
    assert [row for row in item_rows if row[2] != 1] == []  # no line item written twice
    assert attempts is not None and attempts > DOCUMENTS  # the kills made documents go again
    queue = open_pipeline_queue(settings)
    try:
        assert (queue.depth(), queue.dlq_depth()) == (0, 0)
    finally:
        queue.close()

    key = resolve(settings.audit.hmac_key, settings.base_dir).get_bytes()
    report = verify_chain(engine, key, settings.path(settings.audit.checkpoint_dir))
    chains = {c.chain for c in report.chains}
    assert {
        f"{agent}.{name}" for agent in layout.replicas for name in layout.replicas[agent]
    } <= chains
    assert report.ok, [
        (c.chain, [p.message for p in c.problems]) for c in report.chains if not c.ok
    ]

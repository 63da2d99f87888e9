"""`bastion status` and `bastion dlq` on a project whose queue is SQS (moto's server), its
ledger in the project's database: the same commands, the same answers as on the queue file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bastion.cli import common
from bastion.config import load_settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.stores import open_pipeline_queue
from bastion.project import init_project
from bastion.storage.database import shared_engine
from bastion.storage.queue.sqs import SQSQueue
from tests.cli.test_pipeline_cli import Pipeline
from tests.conftest import MOTO_ACCOUNT


@pytest.fixture
def pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, aws_env: None
) -> Iterator[Pipeline]:
    monkeypatch.setattr(common.console, "width", 250)
    result = init_project(tmp_path / "proj")
    config = yaml.safe_load(result.config.read_text())
    config["pipeline"]["queue_url"] = f"{moto_endpoint}/{MOTO_ACCOUNT}/t-{uuid.uuid4().hex[:16]}"
    result.config.write_text(yaml.safe_dump(config))
    settings = load_settings(result.config)
    queue = open_pipeline_queue(settings)
    assert isinstance(queue, SQSQueue)
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    try:
        yield Pipeline(result.config, settings, repo, queue)
    finally:
        queue.close()


def test_status_dlq_list_and_redrive_on_sqs(pipeline: Pipeline) -> None:
    first, second = (pipeline.upload(n) for n in ("a.pdf", "b.pdf"))
    pipeline.dead_letter("extraction_failed")
    status = pipeline.json("status")
    assert isinstance(status, dict)
    assert status["queue"] == {"visible": 1, "in_flight": 0, "delayed": 0, "dead": 1}

    letters = pipeline.json("dlq", "list")
    assert isinstance(letters, list)
    assert [(d["document_id"], d["reason"], d["receive_count"]) for d in letters] == [
        (first, "extraction_failed", 1)
    ]
    assert letters[0]["filename"] == "a.pdf" and letters[0]["dead_at"].endswith("+00:00")

    code, out, err = pipeline.cli("dlq", "redrive", letters[0]["id"])
    assert code == 0, err
    assert "moved 1 message(s) back onto the queue" in out
    doc = pipeline.repo.get_document(first)
    assert doc is not None and doc["status"] == "queued"
    assert pipeline.queue.dlq_depth() == 0
    bodies = [m.body["document_id"] for m in pipeline.queue.receive(10, visibility_timeout=60)]
    assert sorted(bodies) == sorted([first, second])

"""The worker's S3 event consumer, one message at a time (moto's S3 and SQS, a real project):
an object that cannot be read for now leaves its message to come back; once it can, it is
ingested as the worker's document with a queue message; refusals are audited and acknowledged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bastion.config import Settings
from bastion.pipeline.agents.common import credential
from bastion.pipeline.archive_calls import ArchiveCalls, archivist_client
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.ingest import Ingest
from bastion.pipeline.s3_consumer import S3EventConsumer
from bastion.pipeline.s3_ingest import S3Source
from bastion.pipeline.stores import open_pipeline_queue
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.storage.database import shared_engine
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from bastion.testing.ports import free_port
from tests.audit_rows import audit_rows


@pytest.fixture
def settings(tmp_path: Path, moto_endpoint: str, aws_env: None) -> Iterator[Settings]:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    name = f"inbox-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    config = init_project(tmp_path / "project").config
    assign_ports(
        config,
        pipeline={
            "s3_endpoint_url": moto_endpoint,
            "aws_region": "us-east-1",
            "s3_events_queue_url": queue_url,
            "s3_events_buckets": [name],
        },
        audit={"writer": "in_process"},
    )
    # The real archivist records the documents; the worker calls it with its own key.
    with pipeline_in_threads(config, worker=False, gateway=False, only=("archivist",)) as loaded:
        yield loaded


def consumer_of(settings: Settings, **kw: Any) -> S3EventConsumer:
    """The worker's consumer, ingesting through the archivist as `worker`."""
    key = credential(settings, "pipeline.worker_api_key", settings.pipeline.worker_api_key, "w")
    archive = ArchiveCalls(archivist_client(settings, "worker", key))
    return S3EventConsumer(settings, "worker", Ingest(settings, archive), **kw)


async def close(consumer: S3EventConsumer) -> None:
    await consumer.aclose()
    await consumer.ingest.archive.aclose()


def notify(settings: Settings, key: str, data: bytes, bucket: str | None = None) -> dict[str, Any]:
    """Put the object and receive a notification of it (as S3 words it)."""
    p = settings.pipeline
    name = p.s3_events_buckets[0]
    boto3.client("s3", endpoint_url=p.s3_endpoint_url).put_object(Bucket=name, Key=key, Body=data)
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket or name}, "object": {"key": key, "size": len(data)}},
    }
    sqs = boto3.client("sqs", endpoint_url=p.s3_endpoint_url)
    assert p.s3_events_queue_url is not None
    sqs.send_message(QueueUrl=p.s3_events_queue_url, MessageBody=json.dumps({"Records": [record]}))
    [message] = sqs.receive_message(QueueUrl=p.s3_events_queue_url, WaitTimeSeconds=1)["Messages"]
    return dict(message)


def in_flight(settings: Settings) -> int:
    sqs = boto3.client("sqs", endpoint_url=settings.pipeline.s3_endpoint_url)
    attrs = sqs.get_queue_attributes(
        QueueUrl=settings.pipeline.s3_events_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


async def test_a_failure_for_now_keeps_the_message_then_it_is_ingested(
    settings: Settings,
) -> None:
    dead = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    message = notify(settings, "scans/a (1).pdf", synthetic_invoice(7))
    down = consumer_of(settings, source=S3Source(settings, client=dead))
    await down.audit.start()
    try:
        assert not await down.handle(message)
    finally:
        await close(down)
    assert in_flight(settings) == 1  # not deleted: SQS delivers it again

    consumer = consumer_of(settings)
    await consumer.audit.start()
    try:
        assert await consumer.handle(message)
    finally:
        await close(consumer)
    assert in_flight(settings) == 0
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    [doc] = repo.list_documents(owner="worker")[0]
    assert (doc["filename"], doc["status"]) == ("a (1).pdf", "queued")
    queue = open_pipeline_queue(settings)
    try:
        [queued] = queue.receive(1, visibility_timeout=30, wait_seconds=0)
    finally:
        queue.close()
    assert queued.body["document_id"] == doc["id"]
    outcomes = [r.outcome for r in audit_rows(settings, lambda r: r.method == "s3_ingest")]
    assert outcomes == ["error:unavailable", "ok"]


async def test_refusals_are_audited_and_acknowledged(settings: Settings) -> None:
    consumer = consumer_of(settings)
    await consumer.audit.start()
    try:
        assert await consumer.handle(notify(settings, "a.pdf", b"plain text"))
        assert await consumer.handle(notify(settings, "b.pdf", b"%PDF-", bucket="elsewhere"))
        sqs = boto3.client("sqs", endpoint_url=settings.pipeline.s3_endpoint_url)
        url = settings.pipeline.s3_events_queue_url
        sqs.send_message(QueueUrl=url, MessageBody="not an S3 event")
        [junk] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert await consumer.handle(dict(junk))
    finally:
        await close(consumer)
    assert in_flight(settings) == 0
    rows = audit_rows(settings, lambda r: r.method == "s3_ingest", at_least=3)
    assert [r.outcome for r in rows] == [
        "error:not_pdf",
        "error:bucket_not_allowed",
        "error:bad_message",
    ]
    assert {r.principal for r in rows} == {"worker"}

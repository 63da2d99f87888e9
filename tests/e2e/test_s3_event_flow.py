"""S3 event notifications end to end, on moto's server: a real bucket whose notification
configuration (prefix and suffix filters) sends `s3:ObjectCreated:*` events to a real SQS queue.

Worker path: the whole pipeline runs (agents and worker, `pipeline.s3_events_queue_url` set);
objects put into the bucket become the worker's documents and reach `archived`, refusals are
audited, duplicates are one document, and the events queue is drained.

Lambda path: `bastion.aws.lambda_handler` gets the SQS batch read from the queue and its API
key from moto's Secrets Manager; the documents belong to `lambda-s3-processor`. With the
orchestrator down, the records are reported in `batchItemFailures`; delivered again, they are
processed; a non-PDF is refused for good and not reported.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from bastion.aws import lambda_handler
from bastion.config import Settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.security.secrets import resolve
from bastion.storage.database import shared_engine
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from bastion.testing.ports import free_port
from tests.audit_rows import audit_rows

pytestmark = pytest.mark.usefixtures("aws_env")

SPACED_KEY = "inbox/2025/March report (1).pdf"


@dataclass
class Bucket:
    """A bucket on moto whose `inbox/*.pdf` creations are notified to an SQS queue."""

    endpoint: str
    name: str
    queue_url: str

    @property
    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint)

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.endpoint)

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.name, Key=key, Body=data)

    def waiting(self) -> int:
        """Messages in the queue, visible or in flight."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def receive_all(self, expected: int) -> list[dict[str, Any]]:
        """The queue's messages (at least `expected` of them), left in flight."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(messages) < expected and time.monotonic() < deadline:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages.extend(answer.get("Messages", []))
        assert len(messages) >= expected, messages
        return messages


@pytest.fixture
def bucket(moto_endpoint: str, aws_env: None) -> Bucket:
    suffix = uuid.uuid4().hex[:12]
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    name = f"docs-{suffix}"
    queue_url = sqs.create_queue(QueueName=f"s3-events-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "inbox/"},
                                {"Name": "suffix", "Value": ".pdf"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    return Bucket(moto_endpoint, name, queue_url)


def project(tmp_path: Path, bucket: Bucket, **pipeline: Any) -> Path:
    config = init_project(tmp_path / "project").config
    assign_ports(
        config,
        pipeline={
            "s3_endpoint_url": bucket.endpoint,
            "sqs_endpoint_url": bucket.endpoint,
            "aws_region": "us-east-1",
            "s3_events_buckets": [bucket.name],
            "s3_events_suffix": ".pdf",
            **pipeline,
        },
    )
    return config


def documents(settings: Settings, owner: str) -> list[dict[str, Any]]:
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    return repo.list_documents(owner=owner, limit=100)[0]


def wait_archived(settings: Settings, owner: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        docs = documents(settings, owner)
        if len(docs) >= count and all(d["status"] == "archived" for d in docs):
            return docs
        assert time.monotonic() < deadline, docs
        time.sleep(0.1)


def test_moto_delivers_the_test_event_and_filtered_creations(bucket: Bucket) -> None:
    """The premise of the flow: moto sends S3 notifications to SQS, keys URL-encoded."""
    bucket.put("inbox/a b.pdf", b"%PDF-1.4")
    bucket.put("inbox/notes.txt", b"not notified: suffix")
    bucket.put("outbox/b.pdf", b"not notified: prefix")
    bodies = [json.loads(m["Body"]) for m in bucket.receive_all(2)]
    assert bodies[0]["Event"] == "s3:TestEvent"
    [record] = bodies[1]["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] in ("inbox/a+b.pdf", "inbox%2Fa+b.pdf")


@pytest.mark.timeout(300)  # several processes on cores shared with the other test worker
def test_the_worker_ingests_objects_put_into_the_bucket(tmp_path: Path, bucket: Bucket) -> None:
    config = project(tmp_path, bucket, s3_events_queue_url=bucket.queue_url)
    invoice, other = synthetic_invoice(1), synthetic_invoice(2)
    with pipeline_in_threads(config, gateway=False) as settings:
        bucket.put(SPACED_KEY, invoice)
        bucket.put(SPACED_KEY, invoice)  # a second event for the same bytes
        bucket.put("inbox/other.pdf", other)
        bucket.put("inbox/notes.txt", b"no event: the bucket filters the suffix")
        bucket.put("inbox/fake.pdf", b"not a PDF at all")
        docs = wait_archived(settings, "worker", 2)
        refused = audit_rows(
            settings, lambda r: r.method == "s3_ingest" and r.outcome == "error:not_pdf"
        )
        deadline = time.monotonic() + 30
        while bucket.waiting() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bucket.waiting() == 0
    assert sorted(d["filename"] for d in docs) == ["March report (1).pdf", "other.pdf"]
    assert all(d["owner"] == "worker" for d in docs)
    assert refused and refused[0].principal == "worker"
    assert refused[0].client == f"s3://{bucket.name}"
    ingested = audit_rows(settings, lambda r: r.method == "s3_ingest" and r.outcome == "ok")
    # Each document keeps the correlation ID its ingestion was audited with, which its
    # processing carries too (the worker's call to the orchestrator, as for an upload).
    cids = {d["correlation_id"] for d in docs}
    assert cids <= {r.correlation_id for r in ingested}
    processed = audit_rows(
        settings,
        lambda r: r.method == "process_document" and r.correlation_id in cids,
        at_least=2,
    )
    assert {r.principal for r in processed} == {"worker"}


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, bucket: Bucket, tmp_path: Path
) -> Iterator[tuple[Path, str]]:
    """A project for the Lambda path (no worker), the Lambda's key in moto's Secrets Manager,
    and the Lambda's environment; yields (config, secret reference)."""
    config = project(tmp_path, bucket)
    base = config.parent
    key = resolve("secret://file/secrets/lambda-s3-processor.key", base).get()
    secrets = boto3.client("secretsmanager", endpoint_url=bucket.endpoint)
    arn = secrets.create_secret(
        Name=f"bastion/lambda-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"api_key": key})
    )["ARN"]
    ref = f"secret://aws/{arn}#api_key"
    monkeypatch.setenv("BASTION_API_KEY_REF", ref)
    monkeypatch.setenv("BASTION_SECRETS_ENDPOINT_URL", bucket.endpoint)
    monkeypatch.setenv("BASTION_S3_EVENTS_SUFFIX", ".pdf")
    monkeypatch.setenv("BASTION_TIMEOUT_SECONDS", "60")
    yield config, ref


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source hands the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


@pytest.mark.timeout(300)  # several processes on cores shared with the other test worker
def test_the_lambda_processes_a_batch_and_reports_transient_failures(
    monkeypatch: pytest.MonkeyPatch, bucket: Bucket, lambda_env: tuple[Path, str]
) -> None:
    config, _ref = lambda_env
    bucket.put(SPACED_KEY, synthetic_invoice(3))
    bucket.put("inbox/fake.pdf", b"not a PDF at all")
    bucket.put("inbox/broken.pdf", b"%PDF-1.7 but nothing after the header")
    messages = bucket.receive_all(4)  # the test event and three creations
    event = sqs_event(messages)
    created = [m["MessageId"] for m in messages if "Records" in json.loads(m["Body"])]
    foreign = json.loads(next(m["Body"] for m in messages if m["MessageId"] in created))
    foreign["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    event["Records"].append(
        {**event["Records"][-1], "messageId": "foreign", "body": json.dumps(foreign)}
    )

    # The orchestrator is down: every record that names an object is to be tried again.
    monkeypatch.setenv("BASTION_ORCHESTRATOR_URL", f"http://127.0.0.1:{free_port()}")
    failed = lambda_handler(event, None)["batchItemFailures"]
    assert sorted(f["itemIdentifier"] for f in failed) == sorted([*created, "foreign"])

    with pipeline_in_threads(config, worker=False, gateway=False) as settings:
        monkeypatch.setenv("BASTION_ORCHESTRATOR_URL", settings.agents["orchestrator"].url)
        assert lambda_handler(event, None) == {"batchItemFailures": []}
        docs = {d["filename"]: d for d in documents(settings, "lambda-s3-processor")}
        assert sorted(docs) == ["March report (1).pdf", "broken.pdf"]
        assert docs["March report (1).pdf"]["status"] == "archived"
        # The extractor refused it: recorded as failed with its reason, not retried.
        assert docs["broken.pdf"]["status"] == "failed"
        assert docs["broken.pdf"]["failure_reason"]
        # Delivered once more (at least once delivery): the same documents, nothing redone.
        assert lambda_handler(event, None) == {"batchItemFailures": []}
        again = documents(settings, "lambda-s3-processor")
        assert sorted(d["id"] for d in again) == sorted(d["id"] for d in docs.values())
        refusals = audit_rows(
            settings,
            lambda r: r.method == "process_document" and r.principal == "lambda-s3-processor"
            and r.outcome.startswith("error"),
            at_least=2,
        )  # fmt: skip
    assert len(refusals) >= 2  # the non-PDF and the foreign bucket, refused for good
    assert not documents(settings, "worker")

"""Reading S3 objects for ingestion (moto's S3): allowed buckets only, the size limit checked on
the event's size, the object's length and the bytes read, a gone object refused for good; the
settings and params that name them; the Lambda's configuration and its batch answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from bastion.aws.lambda_s3 import LambdaConfig, LambdaConfigError, handle_batch
from bastion.config import Settings
from bastion.pipeline.agents.orchestrator import ProcessParams
from bastion.pipeline.ingest import UploadRejected
from bastion.pipeline.s3_ingest import S3Ref, S3Source
from bastion.testing.ports import free_port

PDF = b"%PDF-1.7 an invoice\n"


@pytest.fixture
def inbox(moto_endpoint: str, aws_env: None) -> tuple[Any, str]:
    """moto's S3 client and a new bucket on it."""
    name, client = f"inbox-{uuid.uuid4().hex[:12]}", boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3(inbox: tuple[Any, str]) -> Any:
    return inbox[0]


@pytest.fixture
def bucket(inbox: tuple[Any, str]) -> str:
    return inbox[1]


def source(s3: Any, bucket: str, limit: int = 1024) -> S3Source:
    settings = Settings(pipeline={"s3_events_buckets": [bucket], "max_upload_bytes": limit})
    return S3Source(settings, client=s3)


def refused(src: S3Source, ref: S3Ref) -> str:
    with pytest.raises(UploadRejected) as caught:
        src.read(ref)
    return caught.value.reason


def test_an_object_of_an_allowed_bucket_is_read(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a/March report (1).pdf", Body=PDF)
    ref = S3Ref(bucket=bucket, key="a/March report (1).pdf", size=len(PDF))
    assert source(s3, bucket).read(ref) == PDF
    assert ref.filename == "March report (1).pdf"


def test_other_buckets_are_refused_before_any_read(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a.pdf", Body=PDF)
    src = source(s3, "another-bucket")
    assert refused(src, S3Ref(bucket=bucket, key="a.pdf")) == "bucket_not_allowed"


def test_the_size_limit_is_checked_on_the_event_the_object_and_the_bytes(
    s3: Any, bucket: str
) -> None:
    big = PDF + b"x" * 2000
    s3.put_object(Bucket=bucket, Key="big.pdf", Body=big)
    src = source(s3, bucket)
    # The event's size alone: the object is not even fetched (it does not exist).
    assert refused(src, S3Ref(bucket=bucket, key="missing.pdf", size=5000)) == "too_large"
    # An event without a size (or a wrong one): the object's length refuses it.
    assert refused(src, S3Ref(bucket=bucket, key="big.pdf")) == "too_large"
    assert refused(src, S3Ref(bucket=bucket, key="big.pdf", size=10)) == "too_large"


def test_a_gone_object_is_refused_for_good(s3: Any, bucket: str) -> None:
    assert refused(source(s3, bucket), S3Ref(bucket=bucket, key="gone.pdf")) == "not_found"


def test_the_event_queue_needs_the_buckets_it_may_read() -> None:
    with pytest.raises(ValidationError, match="s3_events_buckets"):
        Settings(pipeline={"s3_events_queue_url": "https://sqs.eu-central-1.amazonaws.com/1/e"})


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"document_id": "doc_" + "a" * 26},
        {"s3": {"bucket": "docs", "key": "a.pdf"}, "sha256": "a" * 64},
        {"s3": {"bucket": "docs", "key": ""}},
        {"s3": {"bucket": "Not_A_Bucket", "key": "a.pdf"}},
        {"s3": {"bucket": "docs", "key": "a.pdf", "acl": "public-read"}},
    ],
)
def test_process_document_takes_one_form_or_the_other(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProcessParams.model_validate(params)


def test_process_document_forms() -> None:
    stored = ProcessParams.model_validate({"document_id": "doc_" + "a" * 26, "sha256": "b" * 64})
    assert stored.s3 is None
    s3 = ProcessParams.model_validate({"s3": {"bucket": "docs", "key": "a b.pdf", "size": 3}})
    assert s3.s3 == S3Ref(bucket="docs", key="a b.pdf", size=3)


def test_the_lambda_configuration_names_what_is_missing() -> None:
    with pytest.raises(LambdaConfigError, match="BASTION_API_KEY_REF"):
        LambdaConfig.from_env({"BASTION_ORCHESTRATOR_URL": "http://127.0.0.1:1"})
    with pytest.raises(LambdaConfigError, match="never the key itself"):
        LambdaConfig.from_env({"BASTION_API_KEY_REF": "bk_live_key"})
    with pytest.raises(LambdaConfigError, match="BASTION_ORCHESTRATOR_URL"):
        LambdaConfig.from_env({"BASTION_API_KEY_REF": "secret://aws/arn#api_key"})
    config = LambdaConfig.from_env(
        {
            "BASTION_API_KEY_REF": "secret://aws/arn#api_key",
            "BASTION_ORCHESTRATOR_URL": "http://127.0.0.1:1",
            "BASTION_S3_EVENTS_SUFFIX": ".pdf",
        }
    )
    assert (config.suffix, config.timeout_seconds) == (".pdf", 60.0)


async def test_records_without_objects_are_acknowledged(tmp_path: Path) -> None:
    """The test event, a filtered key and a body that is no notification: nothing to retry,
    nothing called (the orchestrator's address has nobody listening)."""
    config = LambdaConfig(f"http://127.0.0.1:{free_port()}", "secret://env/X", suffix=".pdf")
    created = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "docs"}, "object": {"key": "notes.txt", "size": 3}},
    }
    bodies = [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        json.dumps({"Records": [created]}),
        "not json",
    ]
    event = {"Records": [{"messageId": str(i), "body": b} for i, b in enumerate(bodies)]}
    assert await handle_batch(event, config, "key") == {"batchItemFailures": []}

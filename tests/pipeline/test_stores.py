"""The pipeline opens its object store and its queue from settings: a folder or S3, SQLite or
SQS (on moto's server), and `objects_dir` stays an alias of `object_store_url`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from bastion.config import PipelineSettings, Settings
from bastion.pipeline.stores import object_store, open_pipeline_queue
from bastion.storage import LocalObjectStore, S3ObjectStore
from bastion.storage.queue import SQLiteQueue, open_queue
from bastion.storage.queue.sqs import SQSQueue
from bastion.testing.ports import free_port
from tests.conftest import MOTO_ACCOUNT


def test_objects_dir_is_an_alias_of_object_store_url() -> None:
    assert PipelineSettings().object_store_url == "objects"
    assert PipelineSettings(objects_dir="docs").object_store_url == "docs"
    assert PipelineSettings(object_store_url="s3://b/p").objects_dir == "s3://b/p"
    assert PipelineSettings(objects_dir="same", object_store_url="same").objects_dir == "same"
    with pytest.raises(ValidationError, match=r"keep only pipeline\.object_store_url"):
        PipelineSettings(objects_dir="a", object_store_url="b")
    with pytest.raises(ValidationError, match="aws:kms"):
        PipelineSettings(s3_sse="AES256", s3_kms_key_id="alias/k")


def test_a_folder_and_a_sqlite_queue_by_default(tmp_path: Path) -> None:
    settings = Settings(base_dir=tmp_path)
    store = object_store(settings)
    assert isinstance(store, LocalObjectStore) and store.root == tmp_path / "objects"
    queue = open_pipeline_queue(settings)
    try:
        assert isinstance(queue, SQLiteQueue)
    finally:
        queue.close()


def test_s3_and_sqs_from_settings(moto_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    bucket = f"bastion-{uuid.uuid4().hex[:12]}"
    s3: Any = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    name = f"t-{uuid.uuid4().hex[:16]}"
    settings = Settings(
        base_dir=tmp_path,
        pipeline=PipelineSettings(
            object_store_url=f"s3://{bucket}/documents",
            s3_endpoint_url=moto_endpoint,
            s3_sse="AES256",
            queue_url=f"{moto_endpoint}/{MOTO_ACCOUNT}/{name}",
            sqs_ledger_url="sqlite:///sqs-ledger.db",  # relative: in the project folder
            aws_region="us-east-1",
            max_receive_count=2,
            retention_seconds=3600,
        ),
    )
    store = object_store(settings)
    assert isinstance(store, S3ObjectStore)
    sha = store.put(b"document bytes")
    head = s3.head_object(Bucket=bucket, Key=f"documents/{sha[:2]}/{sha[2:4]}/{sha}")
    assert head["ServerSideEncryption"] == "AES256"

    queue = open_pipeline_queue(settings)
    assert isinstance(queue, SQSQueue)
    assert (tmp_path / "sqs-ledger.db").is_file()
    assert queue.max_receive_count == 2 and queue.retention_seconds == 3600
    sqs: Any = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
    assert attributes["Attributes"]["MessageRetentionPeriod"] == "3600"
    mid = queue.send({"document_id": sha})
    [m] = queue.receive()
    assert (m.id, m.body) == (mid, {"document_id": sha})


def test_the_platform_database_holds_the_ledger_by_default(
    moto_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    url = f"{moto_endpoint}/{MOTO_ACCOUNT}/t-{uuid.uuid4().hex[:16]}"
    settings = Settings(base_dir=tmp_path, pipeline=PipelineSettings(queue_url=url))
    assert settings.sqs_ledger_url() == settings.database_url()
    with pytest.raises(ValueError, match="ledger"):
        open_queue(url)
    with pytest.raises(ValueError, match=r"pipeline\.sqs_ledger_url") as err:
        open_queue(url + "?ledger=postgresql://bastion:hunter2@db/bastion")
    assert "hunter2" not in str(err.value)


def test_an_unreachable_sqs_endpoint_is_an_error_to_act_on(aws_env: None, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    with pytest.raises(ConnectionError, match=r"cannot open the SQS queue t-gone") as err:
        open_queue(f"{endpoint}/{MOTO_ACCOUNT}/t-gone", ledger_url=ledger)
    assert isinstance(err.value, OSError)  # what the CLI reports as a failure to open

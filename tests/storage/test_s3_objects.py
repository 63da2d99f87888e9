"""The S3 object store on moto's S3: the local store's behaviour, content-addressed keys under
the prefix, server-side encryption sent with every write, and never an ACL."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from bastion.storage import ObjectNotFoundError, ObjectStore, S3ObjectStore, sha256_hex
from bastion.storage.objects_s3 import parse_s3_url

DATA = b"%PDF-1.7 an invoice\n"


class RecordingS3:
    """An S3 client that records the arguments of every call before making it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


@pytest.fixture
def s3(moto_endpoint: str, aws_env: None) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bastion-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def test_put_get_open_exists_delete(s3: Any, bucket: str) -> None:
    store = S3ObjectStore(f"s3://{bucket}/docs", client=s3)
    assert isinstance(store, ObjectStore)
    sha = sha256_hex(DATA)
    assert not store.exists(sha)
    assert store.put(DATA) == sha
    assert store.exists(sha)
    assert store.get(sha) == DATA
    with store.open(sha) as fh:
        assert fh.read() == DATA
    # Content-addressed, under the prefix, in the local store's layout.
    [listed] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert listed["Key"] == f"docs/{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.delete(sha)
    assert not store.exists(sha)
    assert not store.delete(sha)
    with pytest.raises(ObjectNotFoundError):
        store.get(sha)
    with pytest.raises(ObjectNotFoundError):
        store.open(sha)
    with pytest.raises(ValueError):
        store.get("not-a-digest")


def test_the_same_bytes_are_stored_once(s3: Any, bucket: str) -> None:
    recording = RecordingS3(s3)
    store = S3ObjectStore(f"s3://{bucket}", client=recording)
    sha = store.put(DATA)
    assert store.put(DATA, sha256=sha) == sha
    assert [name for name, _ in recording.calls].count("put_object") == 1
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == f"{sha[:2]}/{sha[2:4]}/{sha}"


def test_server_side_encryption_is_sent_and_no_acl_ever(s3: Any, bucket: str) -> None:
    recording = RecordingS3(s3)
    store = S3ObjectStore(
        f"s3://{bucket}/kms/", sse="aws:kms", kms_key_id="alias/docs", client=recording
    )
    sha = store.put(DATA)
    [(_, put)] = [call for call in recording.calls if call[0] == "put_object"]
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "alias/docs"
    assert put["Key"] == store.key(sha) and put["Key"].startswith("kms/")
    assert not any("ACL" in kwargs for _, kwargs in recording.calls)
    head = s3.head_object(Bucket=bucket, Key=store.key(sha))
    assert head["ServerSideEncryption"] == "aws:kms"

    aes = S3ObjectStore(f"s3://{bucket}/aes", sse="AES256", client=s3)
    head = s3.head_object(Bucket=bucket, Key=aes.key(aes.put(b"other bytes")))
    assert head["ServerSideEncryption"] == "AES256"
    acl = s3.get_object_acl(Bucket=bucket, Key=aes.key(sha256_hex(b"other bytes")))
    assert all("AllUsers" not in str(grant["Grantee"]) for grant in acl["Grants"])


def test_a_store_from_endpoint_settings(moto_endpoint: str, aws_env: None, bucket: str) -> None:
    store = S3ObjectStore(f"s3://{bucket}/p", endpoint_url=moto_endpoint, region="us-east-1")
    assert store.get(store.put(DATA)) == DATA


def test_urls_and_settings_are_checked() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    for bad in ("https://bucket/x", "s3:///x", "s3://bucket/x?acl=public-read"):
        with pytest.raises(ValueError):
            parse_s3_url(bad)
    with pytest.raises(ValueError, match="aws:kms"):
        S3ObjectStore("s3://bucket", sse="AES256", kms_key_id="k", client=object())

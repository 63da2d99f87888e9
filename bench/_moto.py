"""moto's server for the benchmarks: SQS and S3 on 127.0.0.1 in a process of its own (the
tests' `tests/moto_server.py`, with its per-queue locks), dummy AWS credentials for the block,
and a bucket of the run's own. Functional only: moto's speed says nothing about AWS's."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: its tests

from tests.moto_server import running

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
# Dummy credentials, and none of this machine's AWS configuration (the services inherit them).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PROFILE": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_REGION": None,
}


@dataclass(frozen=True)
class MotoSetup:
    endpoint: str
    queue_url: str  # an SQS queue of its own, created by the worker on first open
    object_store_url: str  # s3://BUCKET/docs, the bucket created here


@contextlib.contextmanager
def moto_setup() -> Iterator[MotoSetup]:
    """moto's server with a bucket and a queue name of the run's own (AWS_ENV must be set)."""
    with running() as endpoint:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=name)
        yield MotoSetup(endpoint, f"{endpoint}/{ACCOUNT}/{name}", f"s3://{name}/docs")

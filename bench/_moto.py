"""moto's server for the benchmarks: SQS and S3 on 127.0.0.1 in a process of its own (the
tests' `tests/moto_server.py`, with its per-queue locks), dummy AWS credentials for the block,
and a bucket of the run's own. Functional only: moto's speed says nothing about AWS's."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

from bastion.testing.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
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
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port: its endpoint URL; stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.moto_server", str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("moto's server did not start: is moto[server] installed?")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


@contextlib.contextmanager
def moto_setup() -> Iterator[MotoSetup]:
    """moto's server with a bucket and a queue name of the run's own (AWS_ENV must be set)."""
    with moto_server() as endpoint:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=name)
        yield MotoSetup(endpoint, f"{endpoint}/{ACCOUNT}/{name}", f"s3://{name}/docs")

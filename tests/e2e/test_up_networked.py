"""`bastion up` on networked engines, as the README's "Running on PostgreSQL, Redis and S3"
says: `bastion init --database-url postgresql://...`, the queue on PostgreSQL, the rate limits
in Redis and the documents in an S3 bucket (moto's server), each command a real process.

The database and the queue share a PostgreSQL schema of the test's own; the Redis keys live
under a prefix of its own (`rate_limit.redis_key_prefix`); the bucket is the test's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import psycopg
import pytest
import yaml

from bastion.pipeline.synthetic import synthetic_invoice
from bastion.testing.pipeline_stack import assign_ports
from tests.cli.runner import process_env, run_process
from tests.cli.test_pipeline_cli import SERVICES

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.usefixtures("aws_env")]

UP_TIMEOUT = 120


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"bastion-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


def schema_of(url: str) -> str:
    """The schema named by `?options=-csearch_path=SCHEMA`."""
    (options,) = parse_qs(urlsplit(url).query)["options"]
    return options.removeprefix("-csearch_path=")


def tables_in(database_url: str) -> set[str]:
    base = database_url.split("?", 1)[0]
    with psycopg.connect(base) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema_of(database_url),),
        ).fetchall()
    return {row[0] for row in rows}


def redis_keys(url: str, pattern: str) -> list[str]:
    from bastion.security.ratelimit_redis import redis_client

    async def scan() -> list[str]:
        client = redis_client(url)
        try:
            return [k.decode() async for k in client.scan_iter(match=pattern)]
        finally:
            await client.aclose()

    return asyncio.run(scan())


def bastion(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A documented command as a real process; it must succeed."""
    result = run_process(*args, cwd=cwd, timeout=UP_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def start_up(project: Path, stderr: Path) -> subprocess.Popen[str]:
    """`bastion up` as a real process, returned once it says it is running."""
    with stderr.open("wb") as err:
        up = subprocess.Popen(
            [sys.executable, "-m", "bastion", "up"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=process_env(COLUMNS="200"),
        )
    assert up.stdout is not None
    for line in up.stdout:
        if line.startswith("Running."):
            return up
    up.wait(UP_TIMEOUT)
    raise AssertionError(f"bastion up exited {up.returncode}: {stderr.read_text()}")


@pytest.mark.timeout(300)
def test_up_runs_on_postgresql_redis_and_s3(
    tmp_path: Path,
    postgres_queue_url: str,
    redis_url: str,
    redis_prefix: str,
    moto_endpoint: str,
    bucket: str,
) -> None:
    database_url = postgres_queue_url  # the archive and the queue in one schema of their own
    project = tmp_path / "proj"
    # 1. The project, its database (schema, keys) on PostgreSQL.
    init = bastion("init", "--dir", str(project), "--database-url", database_url, cwd=tmp_path)
    admin_key = init.stdout.strip().splitlines()[-1]
    assert not (project / "bastion.db").exists()
    assert {"api_keys", "documents", "alembic_version"} <= tables_in(database_url)

    # 2. The queue on PostgreSQL, the rate limits in Redis, the documents in S3 (bastion.yaml;
    #    the ports are free ones, so that the test runs beside others).
    config = project / "bastion.yaml"
    assign_ports(
        config,
        pipeline={
            "queue_url": database_url,
            "object_store_url": f"s3://{bucket}/documents",
            "s3_endpoint_url": moto_endpoint,
            "aws_region": "us-east-1",
        },
        rate_limit={
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            # The admin's one call below stays counted for a minute.
            "principals": {**_principals(config), "admin": "1/minute"},
        },
    )
    bastion("config", "check", cwd=project)

    up = start_up(project, tmp_path / "up.err")
    try:
        # 3. A generated invoice, submitted and archived.
        invoice = tmp_path / "invoice.pdf"
        invoice.write_bytes(synthetic_invoice(1, seed=15))
        submitted = bastion("submit", str(invoice), "--json", cwd=project)
        (row,) = json.loads(submitted.stdout)
        assert (row["status"], row["document_type"]) == ("archived", "invoice"), row

        # 4. Its bytes in the bucket, under their SHA-256; the queue's tables in PostgreSQL.
        sha = hashlib.sha256(invoice.read_bytes()).hexdigest()
        s3 = boto3.client("s3", endpoint_url=moto_endpoint)
        stored = s3.get_object(Bucket=bucket, Key=f"documents/{sha[:2]}/{sha[2:4]}/{sha}")
        assert stored["Body"].read() == invoice.read_bytes()
        assert {"queue_messages", "queue_dead_letters", "queue_consumers"} <= tables_in(
            database_url
        )
        assert not (project / "queue.db").exists() and not (project / "objects").exists()

        # 5. The rate limits are counted in Redis, under the deployment's prefix.
        gateway = yaml.safe_load(config.read_text())["pipeline"]["gateway_url"]
        listed = httpx.get(f"{gateway}/api/documents", headers={"X-API-Key": admin_key})
        assert listed.status_code == 200, listed.text
        assert redis_keys(redis_url, f"{redis_prefix}bastion:rl:p:admin")

        # 6. A research report goes to the same bucket (not to a local folder).
        asked = bastion("research", "What is the total of invoice INV-15?", "--json", cwd=project)
        report = json.loads(asked.stdout)["report"].encode("utf-8")
        report_sha = hashlib.sha256(report).hexdigest()
        key = f"documents/{report_sha[:2]}/{report_sha[2:4]}/{report_sha}"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == report

        # 7. `bastion status` and `bastion dlq list` read the PostgreSQL queue.
        status = json.loads(bastion("status", "--json", cwd=project).stdout)
        assert status["documents"].get("archived") == 1, status
        assert status["queue"] == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0}
        assert json.loads(bastion("dlq", "list", "--json", cwd=project).stdout) == []
    finally:
        # 8. A clean stop on SIGTERM.
        up.send_signal(signal.SIGTERM)
        code = up.wait(UP_TIMEOUT)
    stopped = (tmp_path / "up.err").read_text()
    assert code == 0, stopped
    for name in SERVICES:
        assert f"stopped {name}: exit status 0" in stopped
    assert stopped.rstrip().endswith("Stopped.")


def _principals(config: Path) -> dict[str, str]:
    """The per-principal limits `bastion init` wrote."""
    limits: dict[str, str] = yaml.safe_load(config.read_text())["rate_limit"]["principals"]
    return limits

"""Shared fixtures: databases (SQLite, and PostgreSQL when configured), Redis, and a local AWS.

`BASTION_TEST_POSTGRES_URL` / `BASTION_TEST_REDIS_URL` turn on the real-server variants. CI sets
`BASTION_TEST_REQUIRE_SERVICES=1`, which turns a missing server into a failure, never a skip.
AWS (SQS, S3) is moto's server on 127.0.0.1, always on: it needs no network.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

POSTGRES_URL = os.environ.get("BASTION_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("BASTION_TEST_REQUIRE_SERVICES") == "1"


def _missing(var: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{var} is required in CI but not set")
    pytest.skip(f"{var} not set")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    from bastion.storage.database import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bastion.db'}"
        migrate(url)
        yield url
        return
    with _postgres_schema("t") as url:
        migrate(url)
        try:
            yield url
        finally:
            from bastion.storage.database import shared_engine

            shared_engine(url).dispose()


@contextmanager
def _postgres_schema(prefix: str) -> Iterator[str]:
    """`BASTION_TEST_POSTGRES_URL` with a new, empty schema of its own as the search path;
    the schema is dropped afterwards."""
    if not POSTGRES_URL:
        _missing("BASTION_TEST_POSTGRES_URL")
    assert POSTGRES_URL is not None
    from bastion.testing.postgres import postgres_schema

    with postgres_schema(POSTGRES_URL, prefix) as url:
        yield url


# Every queue backend, as fixture parameters (PostgreSQL and Redis marked as needing their
# servers); each but SQLite has its `<backend>_queue_url` fixture.
QUEUE_BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
    "sqs",
]


@pytest.fixture
def postgres_queue_url() -> Iterator[str]:
    """A PostgreSQL queue URL whose tables live in a schema of their own (dropped afterwards)."""
    with _postgres_schema("q") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from bastion.storage.database import migrate

    url = f"sqlite:///{tmp_path / 'bastion.db'}"
    migrate(url)
    return url


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        _missing("BASTION_TEST_REDIS_URL")
    assert REDIS_URL is not None
    return REDIS_URL


@pytest.fixture
def redis_queue_url(redis_url: str) -> Iterator[str]:
    """`BASTION_TEST_REDIS_URL` with a `prefix` of its own; its keys are deleted afterwards."""
    import redis

    prefix = f"bastion:test:queue:{uuid.uuid4().hex}"
    sep = "&" if "?" in redis_url else "?"
    yield f"{redis_url}{sep}prefix={prefix}"
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def delete_redis_keys(url: str, pattern: str) -> None:
    """Delete the keys matching `pattern` (a test's own, under its unique prefix)."""
    from bastion.security.ratelimit_redis import redis_client

    client = redis_client(url)
    try:
        keys = [k async for k in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix of the test's own; its keys are deleted afterwards."""
    pfx = f"bastion:test:{uuid.uuid4().hex}:"
    yield pfx
    await delete_redis_keys(redis_url, pfx + "*")


# moto's default account: the one its queue URLs and ARNs name.
MOTO_ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server (SQS, S3, ...) on a free loopback port, for the whole session, in a
    process of its own (`tests/moto_server.py`)."""
    from tests.moto_server import running

    with running() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and a region, and none of this machine's AWS configuration (child
    processes inherit them too)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def sqs_queue_url(moto_endpoint: str, aws_env: None, tmp_path: Path) -> str:
    """A queue of its own on moto's SQS (created on first open), its ledger in tmp_path."""
    ledger = f"sqlite:///{tmp_path / 'sqs-ledger.db'}"
    name = f"t-{uuid.uuid4().hex[:16]}"
    return f"{moto_endpoint}/{MOTO_ACCOUNT}/{name}?{urlencode({'ledger': ledger})}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--dist loadgroup` (the Makefile's) sends the tests marked `xdist_group(NAME)` to one
    worker by their node ids' `@NAME` suffix. pytest-xdist 3.8 writes that suffix to the item's
    `_nodeid`, which pytest 9 no longer reads (the id is `_id`): write it there too, so that
    the browser tests share one deployment on one worker."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: xdist's own suffix works
        return
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        nodeid = item.nodeid
        if names and nodeid.rfind("@") <= nodeid.rfind("]"):  # not suffixed yet
            item._id = NodeId.parse(f"{nodeid}@{'_'.join(sorted(names))}")  # type: ignore[attr-defined]

"""Shared fixtures: databases (SQLite, and PostgreSQL when configured) and Redis.

`BASTION_TEST_POSTGRES_URL` / `BASTION_TEST_REDIS_URL` turn on the real-server variants. CI sets
`BASTION_TEST_REQUIRE_SERVICES=1`, which turns a missing server into a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

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
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


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

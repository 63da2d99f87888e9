"""Fixtures of the storage tests: a Redis queue URL with a key prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture
def redis_queue_url(redis_url: str) -> Iterator[str]:
    """`BASTION_TEST_REDIS_URL` with a `prefix` of its own; its keys are deleted afterwards."""
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

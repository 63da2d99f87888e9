"""Long-lived connections held to the rules of a request: the credential re-check (real key
store on a real database) and `watch`, which ends with 401, 403 or 503."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bastion.core.context import Identity
from bastion.protocol.errors import FORBIDDEN, SECURITY_UNAVAILABLE, UNAUTHENTICATED
from bastion.security.apikeys import ApiKeyStore, parse_key_id
from bastion.security.liveness import MIN_INTERVAL_SECONDS, CredentialCheck, watch
from bastion.security.rbac import PolicyStore
from bastion.security.stages import Denied
from bastion.storage.database import shared_engine
from bastion.storage.models import ApiKey

# Far more than the 0.25 s interval of a store without a cache: only a missed check waits it.
DEADLINE_SECONDS = 10.0


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return shared_engine(sqlite_url)


@pytest.fixture
def store(engine: Engine) -> ApiKeyStore:
    """The server's store: no cache, so the check reads the database every interval."""
    return ApiKeyStore(engine, cache_seconds=0)


@pytest.fixture
def policy(tmp_path: Path) -> PolicyStore:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"allow": {"ivan": ["gateway.events"]}}))
    return PolicyStore(path, check_seconds=0)


async def identity_of(store: ApiKeyStore, key: str) -> Identity:
    identity, reason = await store.verify(key)
    assert identity is not None, reason
    return identity


def test_interval_is_half_the_key_cache_window(sqlite_url: str) -> None:
    engine = shared_engine(sqlite_url)
    assert CredentialCheck(ApiKeyStore(engine, cache_seconds=2.0)).interval == 1.0
    assert CredentialCheck(ApiKeyStore(engine, cache_seconds=0)).interval == MIN_INTERVAL_SECONDS


async def test_refusal_follows_the_key_and_the_expiry(store: ApiKeyStore) -> None:
    check = CredentialCheck(store)
    key = store.create("ivan")
    identity = await identity_of(store, key)
    assert await check.refusal(identity) is None
    store.revoke(parse_key_id(key) or "")
    assert await check.refusal(identity) == f"revoked api key id {parse_key_id(key)}"
    lapsed = Identity("ivan", "jwt", expires_at=time.time() - 1, api_key_id="aaaaaaaaaaaa")
    assert await check.refusal(lapsed) == "jwt credential expired"


async def test_external_token_is_checked_by_its_expiry_only(store: ApiKeyStore) -> None:
    check = CredentialCheck(store)
    assert await check.refusal(Identity("corp:ivan", "jwt", expires_at=time.time() + 60)) is None


async def watched(store: ApiKeyStore, policy: PolicyStore, identity: Identity) -> Denied:
    return await asyncio.wait_for(
        watch(
            identity,
            agent="gateway",
            action="events",
            credentials=CredentialCheck(store),
            policy=policy,
        ),
        DEADLINE_SECONDS,
    )


async def test_watch_ends_401_once_the_key_is_revoked(
    engine: Engine, store: ApiKeyStore, policy: PolicyStore
) -> None:
    key = store.create("ivan")
    task = asyncio.create_task(watched(store, policy, await identity_of(store, key)))
    ApiKeyStore(engine).revoke(parse_key_id(key) or "")  # another store, as the CLI's
    denied = await task
    assert denied.code == UNAUTHENTICATED and "revoked" in denied.reason


async def test_watch_ends_403_once_the_policy_withdraws_the_grant(
    store: ApiKeyStore, policy: PolicyStore
) -> None:
    identity = await identity_of(store, store.create("ivan"))
    task = asyncio.create_task(watched(store, policy, identity))
    policy.path.write_text(json.dumps({"allow": {}}))
    denied = await task
    assert denied.code == FORBIDDEN and "deny by default" in denied.reason


async def test_watch_fails_closed_when_the_key_store_fails(
    engine: Engine, store: ApiKeyStore, policy: PolicyStore
) -> None:
    identity = await identity_of(store, store.create("ivan"))
    ApiKey.__table__.drop(engine)
    denied = await watched(store, policy, identity)
    assert denied.code == SECURITY_UNAVAILABLE
    assert "OperationalError" in denied.reason

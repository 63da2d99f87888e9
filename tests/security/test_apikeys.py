"""API keys: format, hashing with and without pepper, expiry, revocation, rotation."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.security.apikeys import KEY_RE, ApiKeyError, ApiKeyStore, new_key, parse_key_id
from bastion.security.secrets import SecretValue
from bastion.storage.database import shared_engine
from bastion.storage.models import ApiKey


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_key_format() -> None:
    for _ in range(50):
        key_id, key = new_key()
        assert re.fullmatch(r"[a-z0-9]{12}", key_id)
        m = KEY_RE.match(key)
        assert m is not None and m.group(1) == key_id
        secret = key.split("_")[2]
        assert re.fullmatch(r"[0-9a-f]{64}", secret)
        assert key.count("_") == 2


async def test_only_the_hash_is_stored(db_url: str) -> None:
    store = ApiKeyStore(shared_engine(db_url))
    key = store.create("alice")
    with Session(shared_engine(db_url)) as s:
        row = s.scalars(select(ApiKey)).one()
    assert key not in (row.key_hash, row.key_id, row.label)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.hash_scheme == "sha256" and row.pepper_version is None
    ident, _ = await store.verify(key)
    assert ident is not None and ident.principal == "alice" and ident.auth_method == "api_key"


async def test_peppered_hash_and_new_pepper_keeps_old_keys_valid(db_url: str) -> None:
    engine = shared_engine(db_url)
    v1 = ApiKeyStore(engine, pepper=SecretValue("pepper-one"), pepper_version=1, cache_seconds=0)
    old = v1.create("svc")
    with Session(engine) as s:
        row = s.scalars(select(ApiKey)).one()
    assert row.hash_scheme == "hmac-sha256" and row.pepper_version == 1
    assert row.key_hash != hashlib.sha256(old.encode()).hexdigest()

    v2 = ApiKeyStore(
        engine,
        pepper=SecretValue("pepper-two"),
        pepper_version=2,
        previous_peppers={1: SecretValue("pepper-one")},
        cache_seconds=0,
    )
    new = v2.create("svc")
    assert (await v2.verify(old))[0] is not None
    assert (await v2.verify(new))[0] is not None
    # Without the old pepper, old keys cannot verify (and nothing crashes).
    lost = ApiKeyStore(engine, pepper=SecretValue("pepper-two"), pepper_version=2, cache_seconds=0)
    assert (await lost.verify(old))[0] is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "bst_",
        "bst_short_" + "a" * 64,
        "bst_abcdefghijkl_" + "g" * 64,
        "xyz_abcdefghijkl_" + "a" * 64,
    ],
)
async def test_malformed_keys_rejected(sqlite_url: str, bad: str) -> None:
    store = ApiKeyStore(shared_engine(sqlite_url))
    ident, reason = await store.verify(bad)
    assert ident is None and reason == "malformed api key"


async def test_wrong_secret_for_a_real_key_id(sqlite_url: str) -> None:
    store = ApiKeyStore(shared_engine(sqlite_url))
    key = store.create("alice")
    forged = key[:-1] + ("0" if key[-1] != "0" else "1")
    ident, reason = await store.verify(forged)
    assert ident is None and reason.startswith("wrong secret")


async def test_expiry_and_revocation(db_url: str) -> None:
    clock = Clock()
    store = ApiKeyStore(shared_engine(db_url), cache_seconds=0, clock=clock)
    key = store.create("bob", expires_at=clock.now + 60)
    assert (await store.verify(key))[0] is not None
    clock.now += 61
    ident, reason = await store.verify(key)
    assert ident is None and reason.startswith("expired")

    key2 = store.create("bob")
    key_id = KEY_RE.match(key2).group(1)  # type: ignore[union-attr]
    store.revoke(key_id)
    ident, reason = await store.verify(key2)
    assert ident is None and reason.startswith("revoked")
    assert {r["status"] for r in store.list("bob")} == {"expired", "revoked"}


async def test_revocation_seen_by_another_store_after_cache_window(sqlite_url: str) -> None:
    clock = Clock()
    engine = shared_engine(sqlite_url)
    server_side = ApiKeyStore(engine, cache_seconds=2.0, clock=clock)
    admin_side = ApiKeyStore(engine)
    key = admin_side.create("carol")
    assert (await server_side.verify(key))[0] is not None
    admin_side.revoke(KEY_RE.match(key).group(1))  # type: ignore[union-attr]
    clock.now += 2.5
    assert (await server_side.verify(key))[0] is None


async def test_several_active_keys_and_rotation(db_url: str) -> None:
    clock = Clock()
    store = ApiKeyStore(shared_engine(db_url), cache_seconds=0, clock=clock)
    first = store.create("svc")
    second = store.create("svc")
    assert (await store.verify(first))[0] is not None
    assert (await store.verify(second))[0] is not None
    rotated = store.rotate(KEY_RE.match(first).group(1), grace_seconds=30)  # type: ignore[union-attr]
    assert (await store.verify(rotated))[0].principal == "svc"  # type: ignore[union-attr]
    assert (await store.verify(first))[0] is not None  # still inside the grace period
    clock.now += 31
    assert (await store.verify(first))[0] is None
    assert (await store.verify(second))[0] is not None


def test_invalid_principal_and_unknown_key(sqlite_url: str) -> None:
    store = ApiKeyStore(shared_engine(sqlite_url))
    with pytest.raises(ApiKeyError, match="invalid principal"):
        store.create("cognito:abc")
    with pytest.raises(ApiKeyError, match="bastion keys list"):
        store.revoke("nosuchkey123")
    assert "pepper" not in repr(store) or "SecretValue" not in repr(store)


async def test_cached_key_still_expires_on_time(sqlite_url: str) -> None:
    clock = Clock()
    store = ApiKeyStore(shared_engine(sqlite_url), cache_seconds=60, clock=clock)
    key = store.create("dora", expires_at=clock.now + 10)
    assert (await store.verify(key))[0] is not None
    assert (await store.verify(key))[0] is not None  # served from the verified cache
    clock.now += 11
    ident, reason = await store.verify(key)
    assert ident is None and reason.startswith("expired")


async def test_revocation_through_the_same_store_is_immediate(sqlite_url: str) -> None:
    store = ApiKeyStore(shared_engine(sqlite_url), cache_seconds=60)
    key = store.create("erin")
    assert (await store.verify(key))[0] is not None
    store.revoke(KEY_RE.match(key).group(1))  # type: ignore[union-attr]
    assert (await store.verify(key))[0] is None


# --- refusal: whether a key still stands behind a credential derived from it -------------


def key_id_of(key: str) -> str:
    key_id = parse_key_id(key)
    assert key_id is not None
    return key_id


async def test_refusal_of_live_revoked_expired_unknown_and_foreign_keys(db_url: str) -> None:
    clock = Clock()
    store = ApiKeyStore(shared_engine(db_url), cache_seconds=0, clock=clock)
    key_id = key_id_of(store.create("frank", expires_at=clock.now + 60))
    assert await store.refusal(key_id, "frank") is None
    assert await store.refusal(key_id, "mallory") == (
        f"api key id {key_id} belongs to another principal"
    )
    assert await store.refusal("nosuchkey123", "frank") == "unknown api key id nosuchkey123"
    clock.now += 60
    assert await store.refusal(key_id, "frank") == f"expired api key id {key_id}"
    other = key_id_of(store.create("frank"))
    store.revoke(other)
    assert await store.refusal(other, "frank") == f"revoked api key id {other}"


async def test_refusal_sees_another_stores_revocation_within_the_cache_window(
    sqlite_url: str,
) -> None:
    clock = Clock()
    engine = shared_engine(sqlite_url)
    server_side = ApiKeyStore(engine, cache_seconds=2.0, clock=clock)
    admin_side = ApiKeyStore(engine)
    key_id = key_id_of(admin_side.create("gina"))
    assert await server_side.refusal(key_id, "gina") is None
    admin_side.revoke(key_id)
    clock.now += 1.0
    assert await server_side.refusal(key_id, "gina") is None  # the cached record, as for keys
    assert await server_side.refusal(key_id, "gina", max_age=0.5) is not None  # fresher wanted
    clock.now += 1.5
    assert await server_side.refusal(key_id, "gina") == f"revoked api key id {key_id}"


async def test_verified_identity_carries_the_key_and_its_expiry(sqlite_url: str) -> None:
    clock = Clock()
    store = ApiKeyStore(shared_engine(sqlite_url), clock=clock)
    key = store.create("hank", expires_at=clock.now + 30)
    ident, _ = await store.verify(key)
    assert ident is not None
    assert ident.api_key_id == key_id_of(key)
    assert ident.expires_at == clock.now + 30

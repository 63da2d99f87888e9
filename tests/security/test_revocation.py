"""Token revocation: the denylists (memory, Redis), the verifier's refusals, `bastion tokens`.

Replicas are two verifiers on one Redis: a token revoked through one is refused by the other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bastion.config import JWTSettings, Settings, load_settings
from bastion.core.context import Identity
from bastion.security.jwt_verify import JwtVerifier, LocalTrust, TokenError
from bastion.security.ratelimit_redis import redis_client
from bastion.security.revocation import (
    REDIS_PREFIX,
    MemoryDenylist,
    RedisDenylist,
    RevocationStoreError,
    build_denylist,
    revoke_identity,
)
from bastion.testing.ports import closed_port_url
from tests.cli.runner import run
from tests.security.jwt_helpers import FakeClock, KeyPair, ed_key

ISS = "https://bastion.test"
AUD = "bastion"


async def no_refusal(key_id: str, principal: str) -> str | None:
    return None


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return ed_key("ed-rev")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def verifier(
    key: KeyPair, clock: FakeClock, denylist: Any, *, require_jti: bool = False
) -> JwtVerifier:
    trust = LocalTrust(
        issuer=ISS,
        audience=AUD,
        keys=lambda: {"keys": [key.public_jwk]},
        key_refusal=no_refusal,
    )
    return JwtVerifier(
        JWTSettings(require_jti=require_jti), local=trust, clock=clock, denylist=denylist
    )


def token(key: KeyPair, clock: FakeClock, **over: Any) -> str:
    now = int(clock())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "key_id": "aaaaaaaaaaaa",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(over)
    return key.token({k: v for k, v in claims.items() if v is not None})


# --- memory ---------------------------------------------------------------------------------


async def test_memory_revoked_token_is_refused_even_from_the_cache(
    key: KeyPair, clock: FakeClock
) -> None:
    deny = MemoryDenylist(clock)
    v = verifier(key, clock, deny)
    tok = token(key, clock)
    ident = await v.verify(tok)  # now cached
    assert await revoke_identity(deny, ident)
    with pytest.raises(TokenError, match="token revoked"):
        await v.verify(tok)
    assert (await v.verify(token(key, clock))).principal == "alice"  # other tokens still pass


async def test_memory_entries_end_with_the_token(clock: FakeClock) -> None:
    deny = MemoryDenylist(clock)
    await deny.revoke("a", clock() + 10)
    await deny.revoke("gone", clock() - 1)  # expired already: not listed
    assert await deny.is_revoked("a") and not await deny.is_revoked("gone")
    clock.advance(11)
    assert not await deny.is_revoked("a")
    await deny.revoke("b", clock() + 10)
    assert len(deny) == 1  # expired entries are dropped as new ones come in


async def test_bad_token_ids_are_refused_with_a_reason(clock: FakeClock) -> None:
    deny = MemoryDenylist(clock)
    for bad in ("", "has space", "x" * 257):
        with pytest.raises(ValueError, match="jti"):
            await deny.revoke(bad, clock() + 10)


async def test_identity_without_jti_cannot_be_revoked(clock: FakeClock) -> None:
    deny = MemoryDenylist(clock)
    api_key = Identity("alice", "api_key", credential_id="k", expires_at=clock() + 10)
    assert not await revoke_identity(deny, api_key)
    no_jti = Identity("alice", "jwt", expires_at=clock() + 10, claims={"sub": "alice"})
    assert not await revoke_identity(deny, no_jti)
    assert len(deny) == 0


async def test_tokens_without_jti_pass_unless_required(key: KeyPair, clock: FakeClock) -> None:
    tok = token(key, clock, jti=None)
    assert (await verifier(key, clock, MemoryDenylist(clock)).verify(tok)).principal == "alice"
    strict = verifier(key, clock, MemoryDenylist(clock), require_jti=True)
    with pytest.raises(TokenError, match="require_jti"):
        await strict.verify(tok)
    with pytest.raises(TokenError, match=r"(?i)jti"):
        await strict.verify(token(key, clock, jti=12345))  # not a string
    assert (await strict.verify(token(key, clock))).principal == "alice"


def test_without_shared_redis_the_denylist_is_per_process() -> None:
    assert isinstance(build_denylist(Settings()), MemoryDenylist)


# --- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_revoked_on_one_replica_is_refused_on_another(
    redis_url: str, redis_prefix: str, key: KeyPair, clock: FakeClock
) -> None:
    one = verifier(key, clock, RedisDenylist(redis_client(redis_url), redis_prefix))
    two = verifier(key, clock, RedisDenylist(redis_client(redis_url), redis_prefix))
    try:
        tok = token(key, clock)
        await one.verify(tok)
        ident = await two.verify(tok)  # cached on both replicas
        assert one.denylist is not None and await revoke_identity(one.denylist, ident)
        for replica in (one, two):
            with pytest.raises(TokenError, match="token revoked"):
                await replica.verify(tok)
        assert (await two.verify(token(key, clock))).principal == "alice"
    finally:
        await one.aclose()
        await two.aclose()


@pytest.mark.redis
async def test_redis_entry_expires_with_the_token(redis_url: str, redis_prefix: str) -> None:
    deny = RedisDenylist(redis_client(redis_url), redis_prefix)
    client = redis_client(redis_url)
    try:
        await deny.revoke("t1", time.time() + 60)
        ttl = await client.pttl(redis_prefix + "t1")
        assert 0 < ttl <= 60_000
        await deny.revoke("t1", time.time() + 5)  # a shorter second revocation keeps the longer
        assert await client.pttl(redis_prefix + "t1") > 5_000
        await deny.revoke("t2", time.time() - 1)  # expired: nothing stored
        assert await client.exists(redis_prefix + "t2") == 0
        assert await deny.is_revoked("t1") and not await deny.is_revoked("t2")
    finally:
        await client.aclose()
        await deny.aclose()


async def test_unreachable_store_refuses_the_token(key: KeyPair, clock: FakeClock) -> None:
    dead = RedisDenylist(redis_client(closed_port_url(scheme="redis")))
    v = verifier(key, clock, dead)
    with pytest.raises(TokenError, match="revocation list unavailable") as info:
        await v.verify(token(key, clock))
    assert "redis://" not in info.value.reason
    with pytest.raises(RevocationStoreError):
        await dead.revoke("x", time.time() + 10)
    await v.aclose()


# --- bastion tokens revoke ------------------------------------------------------------------


def _config(tmp_path: Path, redis_url: str | None) -> Path:
    path = tmp_path / "bastion.yaml"
    text = "database:\n  url: sqlite:///bastion.db\n"
    if redis_url:
        text += f"rate_limit:\n  redis_url: {redis_url}\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.redis
def test_cli_revokes_a_jti_and_a_whole_token_for_every_replica(
    redis_url: str, tmp_path: Path, key: KeyPair
) -> None:
    config = _config(tmp_path, redis_url)
    clock = FakeClock()
    jti, other = f"cli-{uuid.uuid4().hex}", f"cli-{uuid.uuid4().hex}"
    by_id, whole = token(key, clock, jti=jti), token(key, clock, jti=other)

    async def refused_by_a_replica() -> None:
        replica = verifier(key, clock, build_denylist(load_settings(config)))
        try:
            for tok in (by_id, whole):
                with pytest.raises(TokenError, match="token revoked"):
                    await replica.verify(tok)
        finally:
            await replica.aclose()

    async def cleanup() -> None:
        client = redis_client(redis_url)
        try:
            await client.delete(REDIS_PREFIX + jti, REDIS_PREFIX + other)
        finally:
            await client.aclose()

    try:
        result = run("tokens", "revoke", jti, "--config", str(config), "--ttl", "10m")
        assert result.exit_code == 0, result.output
        assert f"revoked token {jti}" in result.output
        result = run("tokens", "revoke", whole, "--config", str(config))
        assert result.exit_code == 0, result.output
        asyncio.run(refused_by_a_replica())
    finally:
        asyncio.run(cleanup())


def test_cli_without_shared_redis_says_what_to_configure(tmp_path: Path) -> None:
    result = run("tokens", "revoke", "abc", "--config", str(_config(tmp_path, None)))
    assert result.exit_code == 1
    assert "rate_limit.redis_url" in result.output


def test_cli_refuses_what_is_not_a_token_id(tmp_path: Path) -> None:
    config = str(_config(tmp_path, "redis://127.0.0.1:1/0"))
    assert run("tokens", "revoke", "a b", "--config", config).exit_code == 2
    assert run("tokens", "revoke", "a.b.c", "--config", config).exit_code == 2

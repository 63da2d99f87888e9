"""Token revocation: a denylist of token ids (`jti`), checked on every bearer verification.

A revoked id stays listed until the token's own `exp` (after which the token is refused as
expired anyway), so the list never outgrows the tokens still alive. Two stores:

- `MemoryDenylist`: per process (the default). A revocation is seen only by the process that
  made it.
- `RedisDenylist`: in the Redis that replicas share (`rate_limit.redis_url` with the Redis
  backend), one key `bastion:revoked-jti:<jti>` per revoked id, expiring at the token's `exp`.
  A revocation made anywhere (one replica, `bastion tokens revoke`) is refused by every
  replica from the next request on: the check is not cached.

A store that cannot be reached raises `RevocationStoreError`; the verifier then refuses the
token (fails closed), since it cannot tell whether it was revoked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from bastion.core.context import Identity
from bastion.security.ratelimit_backends import shared_redis_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bastion.config import Settings

__all__ = [
    "REDIS_PREFIX",
    "MemoryDenylist",
    "NoSharedStore",
    "RedisDenylist",
    "RevocationStoreError",
    "TokenDenylist",
    "build_denylist",
    "revoke_identity",
    "revoke_shared",
    "valid_jti",
]

REDIS_PREFIX = "bastion:revoked-jti:"
MAX_JTI_CHARS = 256
# KEYS[1]: the entry. ARGV[1]: its lifetime (ms). An entry is lengthened, never shortened.
_REVOKE_SCRIPT = """
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
end
return 1
"""


class RevocationStoreError(Exception):
    """The denylist store could not be reached or did not answer in time."""


def valid_jti(jti: object) -> bool:
    """A token id that can be listed: a non-empty printable string of bounded length."""
    return (
        isinstance(jti, str)
        and 0 < len(jti) <= MAX_JTI_CHARS
        and jti.isprintable()
        and not any(c.isspace() for c in jti)
    )


def _checked(jti: str) -> str:
    if not valid_jti(jti):
        raise ValueError(
            f"not a token id: write the token's jti claim (printable, no spaces, at most "
            f"{MAX_JTI_CHARS} characters)"
        )
    return jti


class TokenDenylist(Protocol):
    """Revoked token ids, each until its token's expiry (Unix seconds)."""

    async def revoke(self, jti: str, expires_at: float) -> None:
        """List `jti` until `expires_at`; raises `RevocationStoreError`."""
        ...

    async def is_revoked(self, jti: str) -> bool:
        """True when `jti` is listed; raises `RevocationStoreError`."""
        ...

    async def aclose(self) -> None: ...


class MemoryDenylist:
    """Revoked ids of this process; expired entries are dropped as new ones come in."""

    __slots__ = ("_clock", "_entries")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def revoke(self, jti: str, expires_at: float) -> None:
        now = self._clock()
        if expires_at <= now:
            return  # the token is refused as expired already
        entries = self._entries
        for old in [k for k, exp in entries.items() if exp <= now]:
            del entries[old]
        entries[_checked(jti)] = max(expires_at, entries.get(jti, 0.0))

    async def is_revoked(self, jti: str) -> bool:
        exp = self._entries.get(jti)
        if exp is None:
            return False
        if exp <= self._clock():
            del self._entries[jti]
            return False
        return True

    async def aclose(self) -> None:
        self._entries.clear()


class RedisDenylist:
    """Revoked ids in Redis, shared by every replica; each key expires with its token."""

    __slots__ = ("_clock", "_prefix", "_redis", "_revoke")

    def __init__(
        self, redis: Redis, prefix: str = REDIS_PREFIX, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._revoke = redis.register_script(_REVOKE_SCRIPT)

    async def revoke(self, jti: str, expires_at: float) -> None:
        from redis.exceptions import RedisError

        ttl_ms = math.ceil((expires_at - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        key = self._prefix + _checked(jti)
        try:
            await self._revoke(keys=[key], args=[ttl_ms])
        except (RedisError, OSError, TimeoutError) as exc:
            raise RevocationStoreError(f"redis unavailable: {type(exc).__name__}") from None

    async def is_revoked(self, jti: str) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(await self._redis.exists(self._prefix + jti))
        except (RedisError, OSError, TimeoutError) as exc:
            raise RevocationStoreError(f"redis unavailable: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        await self._redis.aclose()


async def revoke_identity(denylist: TokenDenylist, identity: Identity) -> bool:
    """Revoke the bearer token `identity` was verified from (a logout); False when it has no
    `jti` or no expiry, so cannot be listed."""
    jti = (identity.claims or {}).get("jti")
    if identity.auth_method != "jwt" or not valid_jti(jti) or identity.expires_at is None:
        return False
    assert isinstance(jti, str)
    await denylist.revoke(jti, identity.expires_at)
    return True


def build_denylist(settings: Settings) -> TokenDenylist:
    """Redis when the replicas share one (see `shared_redis_url`), else this process's memory."""
    url = shared_redis_url(settings)
    if url is None:
        return MemoryDenylist()
    return _redis_denylist(settings, url)


def _redis_denylist(settings: Settings, url: str) -> RedisDenylist:
    """The revoked-token list in the shared Redis at `url`, after `rate_limit.redis_key_prefix`."""
    from bastion.security.ratelimit_redis import redis_client

    return RedisDenylist(redis_client(url), settings.rate_limit.redis_key_prefix + REDIS_PREFIX)


class NoSharedStore(Exception):
    """A revocation from outside the serving processes, without a store they share."""


async def revoke_shared(settings: Settings, jti: str, expires_at: float) -> None:
    """List `jti` in the Redis the replicas share (for commands run beside them).

    Raises NoSharedStore when there is none (a per-process list cannot be reached from
    outside its process) and RevocationStoreError when it cannot be reached.
    """
    url = shared_redis_url(settings)
    if url is None:
        raise NoSharedStore(
            "token revocation from outside the servers needs the Redis the replicas share "
            "(rate_limit.redis_url): without it each process keeps its own list"
        )
    denylist = _redis_denylist(settings, url)
    try:
        await denylist.revoke(jti, expires_at)
    finally:
        await denylist.aclose()

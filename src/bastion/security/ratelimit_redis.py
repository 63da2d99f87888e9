"""The shared rate limiter: GCRA in one atomic Redis Lua script, clocked by Redis `TIME`.

Every replica asks the same Redis for the time, so skewed host clocks cannot disagree about a
quota. Each key holds one integer (the theoretical arrival time, in microseconds) and expires
when it would be back at full quota (at most the window), so Redis memory stays bounded. The
math is the one documented in `bastion.security.ratelimit`.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.security.ratelimit import (
    Limit,
    RateDecision,
    RateLimitBackendError,
    allowed_decision,
    denied_decision,
)

__all__ = ["GCRA_SCRIPT", "RATE_LIMIT_PREFIX", "RedisRateLimiter", "redis_client"]

# The per-principal and per-method limits' keys (after `rate_limit.redis_key_prefix`).
RATE_LIMIT_PREFIX = "bastion:rl:"

# KEYS[1]: the key. ARGV[1]: emission interval (us). ARGV[2]: burst tolerance (us).
# Returns {admitted (0|1), TAT - now after the call (us)}. A refusal writes nothing.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local used = tat - now
if used > tolerance then
  return {0, used}
end
tat = tat + interval
used = used + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil(used / 1000))
return {1, used}
"""


class RedisRateLimiter:
    """GCRA shared by all replicas through Redis; keys are `prefix + key`."""

    __slots__ = ("_prefix", "_redis", "_script")

    def __init__(self, redis: Redis, prefix: str = RATE_LIMIT_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        # EVALSHA, falling back to loading the script when Redis does not have it yet.
        self._script = redis.register_script(GCRA_SCRIPT)

    async def hit(self, key: str, limit: Limit) -> RateDecision:
        try:
            reply: Any = await self._script(
                keys=[self._prefix + key], args=[limit.interval_us, limit.tolerance_us]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise RateLimitBackendError(f"{type(exc).__name__}: {exc}") from exc
        admitted, used = int(reply[0]), int(reply[1])
        if admitted:
            return allowed_decision(limit, used)
        return denied_decision(limit, used)

    async def ping(self) -> None:
        """Readiness: raise if Redis does not answer."""
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise RateLimitBackendError(f"redis unavailable: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        await self._redis.aclose()


# Seconds: a dead or unreachable Redis must fail fast, not hold requests.
REDIS_CONNECT_TIMEOUT = 0.5
REDIS_OP_TIMEOUT = 0.5


def redis_client(url: str) -> Redis:
    """An asyncio Redis client with short timeouts and one immediate retry."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_OP_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )
    return client

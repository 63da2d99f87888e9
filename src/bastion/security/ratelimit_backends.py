"""Which rate-limit store a stack uses: in-process memory, or Redis shared by every replica.

The Redis replicas share is the rate limits' one (`rate_limit.redis_url` with the Redis
backend): the per-principal limits, the WAF's per-IP counts and the revoked-token list all
live there (`shared_redis_url`), each key after `rate_limit.redis_key_prefix`. The Redis module
(and the redis package) is imported only when the settings choose it.
"""

from __future__ import annotations

import structlog

from bastion.config import RateLimitSettings, Settings
from bastion.security.ratelimit import MemoryRateLimiter, RateLimiter

__all__ = ["build_limiter", "shared_rate_limiter", "shared_redis_url"]


def shared_redis_url(settings: Settings) -> str | None:
    """The Redis the replicas share (the rate limits' one), or None when there is none."""
    rl = settings.rate_limit
    return rl.redis_url if rl.backend == "redis" and rl.redis_url else None


def shared_rate_limiter(settings: Settings, prefix: str) -> RateLimiter | None:
    """A limiter in the shared Redis whose keys start with `prefix`; None without one."""
    url = shared_redis_url(settings)
    if url is None:
        return None
    from bastion.security.ratelimit_redis import RedisRateLimiter, redis_client

    return RedisRateLimiter(redis_client(url), prefix=settings.rate_limit.redis_key_prefix + prefix)


def build_limiter(settings: RateLimitSettings) -> RateLimiter:
    """The limiter `settings.backend` names: in-process memory, or Redis at `redis_url`."""
    if settings.backend == "memory":
        ignored = settings.ignored_redis_url()
        if ignored:
            structlog.get_logger("bastion.ratelimit").warning(ignored)
        return MemoryRateLimiter()
    if not settings.redis_url:
        raise ValueError(
            "rate_limit.backend is 'redis' but rate_limit.redis_url is not set "
            "(for example redis://127.0.0.1:6379/0)"
        )
    from bastion.security.ratelimit_redis import RATE_LIMIT_PREFIX, RedisRateLimiter, redis_client

    prefix = settings.redis_key_prefix + RATE_LIMIT_PREFIX
    return RedisRateLimiter(redis_client(settings.redis_url), prefix=prefix)

"""Which rate-limit store a stack uses: in-process memory, or Redis shared by every replica.

The Redis module (and the redis package) is imported only when the settings choose it.
"""

from __future__ import annotations

import structlog

from bastion.config import RateLimitSettings
from bastion.security.ratelimit import MemoryRateLimiter, RateLimiter

__all__ = ["build_limiter"]


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
    from bastion.security.ratelimit_redis import RedisRateLimiter, redis_client

    return RedisRateLimiter(redis_client(settings.redis_url))

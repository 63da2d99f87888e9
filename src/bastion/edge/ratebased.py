"""Rule 1: the rate-based rule, requests per client IP at the public edge.

`waf.rate_limit` requests per `waf.rate_window_seconds`, counted with GCRA (a fresh address
gets a burst of the whole quota, which then refills continuously: a sliding window).

Where the counts live (`build_ip_limiter`): with Redis configured for the rate limits
(`rate_limit.backend: redis`, which a set `rate_limit.redis_url` selects) they are kept in that
Redis under the key prefix `bastion:waf-ip:`, so every gateway replica counts the same address
against one quota. Otherwise they are kept per process by the in-process limiter of
`bastion.security.ratelimit`, whose memory stays bounded under a flood of addresses: it
remembers at most `waf.rate_max_tracked_ips` keys and forgets the ones closest to full quota
first (Redis bounds its own: each key expires once back at full quota).

When the shared store cannot be reached, `waf.on_backend_error` decides: `deny` (the default:
the edge fails closed) refuses the request as over its rate (429, `Retry-After: 1`); `allow`
lets it through uncounted. Either way a warning is logged at most every 10 seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from bastion.config import Settings, WafSettings
from bastion.security import (
    Limit,
    MemoryRateLimiter,
    RateDecision,
    RateLimitBackendError,
    RateLimiter,
    shared_rate_limiter,
)

RULE_ID = "rate.per_ip"
REDIS_PREFIX = "bastion:waf-ip:"
# Seconds a client refused because the store is unreachable is asked to wait.
UNAVAILABLE_RETRY_AFTER = 1
_WARN_EVERY = 10.0

log = structlog.get_logger("bastion.waf")


def build_ip_limiter(
    settings: Settings, clock: Callable[[], float] = time.monotonic
) -> RateLimiter:
    """Redis shared by every replica when the rate limits use Redis, else in-process memory."""
    shared = shared_rate_limiter(settings, REDIS_PREFIX)
    if shared is not None:
        return shared
    return MemoryRateLimiter(clock, max_keys=settings.waf.rate_max_tracked_ips)


class IpRateRule:
    """Counts one hit per request against the client's key; a refused hit costs nothing."""

    __slots__ = ("_clock", "_fail_open", "_last_warning", "_limit", "_limiter")

    def __init__(
        self,
        settings: WafSettings,
        clock: Callable[[], float] = time.monotonic,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._limit = Limit("waf-ip", settings.rate_limit, settings.rate_window_seconds)
        self._limiter: RateLimiter = limiter or MemoryRateLimiter(
            clock, max_keys=settings.rate_max_tracked_ips
        )
        self._fail_open = settings.on_backend_error == "allow"
        self._clock = clock
        self._last_warning = float("-inf")

    def __len__(self) -> int:
        """Addresses tracked in this process (0 when Redis keeps the counts)."""
        return len(self._limiter) if isinstance(self._limiter, MemoryRateLimiter) else 0

    async def hit(self, key: str) -> RateDecision:
        try:
            return await self._limiter.hit(key, self._limit)
        except RateLimitBackendError as exc:
            return self._store_failed(exc)

    def _store_failed(self, exc: RateLimitBackendError) -> RateDecision:
        now = self._clock()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning(
                "waf.rate_store_unavailable",
                action="allowing uncounted" if self._fail_open else "refusing (429)",
                error=str(exc),
            )
        limit = self._limit
        if self._fail_open:
            return RateDecision(True, limit, limit.count, 0, 0)
        return RateDecision(False, limit, 0, UNAVAILABLE_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER)

    async def aclose(self) -> None:
        await self._limiter.aclose()

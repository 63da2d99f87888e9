"""Rule 1: the rate-based rule, requests per client IP at the public edge.

`waf.rate_limit` requests per `waf.rate_window_seconds`, counted with the in-process GCRA
limiter of `bastion.security.ratelimit` (a fresh address gets a burst of the whole quota, which
then refills continuously: a sliding window). Memory stays bounded under a flood of addresses:
the limiter remembers at most `waf.rate_max_tracked_ips` keys and forgets the ones closest to
full quota first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bastion.config import WafSettings
from bastion.security import Limit, MemoryRateLimiter, RateDecision

RULE_ID = "rate.per_ip"


class IpRateRule:
    """Counts one hit per request against the client's key; a refused hit costs nothing."""

    __slots__ = ("_limit", "_limiter")

    def __init__(self, settings: WafSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = Limit("waf-ip", settings.rate_limit, settings.rate_window_seconds)
        self._limiter = MemoryRateLimiter(clock, max_keys=settings.rate_max_tracked_ips)

    def __len__(self) -> int:
        return len(self._limiter)

    async def hit(self, key: str) -> RateDecision:
        return await self._limiter.hit(key, self._limit)

"""The per-IP rate rule with Redis: one quota for every replica, and what happens when Redis is
down (fail closed by default, open when configured); memory stays bounded without Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import Callable

import httpx
import pytest
from structlog.testing import capture_logs

from bastion.config import Settings, WafSettings
from bastion.edge.ratebased import REDIS_PREFIX, IpRateRule, build_ip_limiter
from bastion.security.ratelimit import MemoryRateLimiter
from bastion.security.ratelimit_redis import RedisRateLimiter, redis_client
from bastion.testing.ports import closed_port_url
from tests.conftest import delete_redis_keys
from tests.edge.conftest import waf_server


def waf(limit: int = 5, on_error: str = "deny") -> WafSettings:
    return WafSettings(rate_limit=limit, rate_window_seconds=600, on_backend_error=on_error)


def unique_ipv6() -> str:
    """An address of a /64 no other test counts under (2001:db8::/32 is documentation)."""
    net = uuid.uuid4().int & 0xFFFF_FFFF
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | (net << 64) | 1))


@pytest.mark.redis
async def test_two_rule_instances_on_one_redis_share_the_quota(
    redis_url: str, redis_prefix: str
) -> None:
    first = IpRateRule(waf(5), limiter=RedisRateLimiter(redis_client(redis_url), redis_prefix))
    second = IpRateRule(waf(5), limiter=RedisRateLimiter(redis_client(redis_url), redis_prefix))
    try:
        hits = [await (first if i % 2 else second).hit("198.51.100.7") for i in range(5)]
        assert all(d.allowed for d in hits)
        refused = await second.hit("198.51.100.7")
        assert not refused.allowed and refused.retry_after >= 1
        assert not (await first.hit("198.51.100.7")).allowed
        assert (await second.hit("198.51.100.8")).allowed  # another address: its own quota
        assert len(first) == 0  # nothing is held in the process
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_redis_url_puts_the_counts_in_redis_under_the_waf_prefix(redis_url: str) -> None:
    settings = Settings()
    settings.rate_limit.redis_url = redis_url
    settings.rate_limit.backend = "redis"
    limiter = build_ip_limiter(settings)
    assert isinstance(limiter, RedisRateLimiter)
    key = unique_ipv6()
    rule = IpRateRule(waf(3), limiter=limiter)
    try:
        assert (await rule.hit(key)).allowed
        client = redis_client(redis_url)
        try:
            assert await client.exists(REDIS_PREFIX + key) == 1
        finally:
            await client.aclose()
    finally:
        await rule.aclose()
        await delete_redis_keys(redis_url, REDIS_PREFIX + key)


def test_without_redis_the_counts_stay_in_bounded_memory() -> None:
    settings = Settings()
    settings.waf.rate_max_tracked_ips = 50
    limiter = build_ip_limiter(settings)
    assert isinstance(limiter, MemoryRateLimiter)


async def test_memory_rule_stays_bounded_under_a_flood_of_addresses() -> None:
    settings = WafSettings(rate_max_tracked_ips=100)
    rule = IpRateRule(settings)
    for i in range(1000):
        await rule.hit(f"10.0.{i // 256}.{i % 256}")
    assert len(rule) <= 100


def _dead(on_error: str, clock: Callable[[], float] = lambda: 0.0) -> IpRateRule:
    dead = RedisRateLimiter(redis_client(closed_port_url(scheme="redis")))
    return IpRateRule(waf(5, on_error), clock, limiter=dead)


async def test_redis_down_fails_closed_by_default() -> None:
    rule = _dead("deny")
    with capture_logs() as logs:
        refused = await rule.hit("198.51.100.9")
    assert not refused.allowed and refused.retry_after == 1
    assert [e["event"] for e in logs] == ["waf.rate_store_unavailable"]
    assert "redis://" not in str(logs)  # no URL (it could hold a password) in the log
    await rule.aclose()


async def test_redis_down_with_allow_lets_requests_through_warning_once_per_period() -> None:
    rule = _dead("allow")
    with capture_logs() as logs:
        decisions = [await rule.hit("198.51.100.9") for _ in range(3)]
    assert all(d.allowed for d in decisions)
    assert [e["event"] for e in logs] == ["waf.rate_store_unavailable"]
    await rule.aclose()


@pytest.mark.redis
def test_a_flood_counted_on_one_gateway_is_refused_on_the_other(redis_url: str) -> None:
    def configure(s: Settings) -> None:
        s.rate_limit.redis_url = redis_url
        s.rate_limit.backend = "redis"
        s.waf.rate_limit = 4
        s.waf.rate_window_seconds = 600
        s.waf.trusted_proxies = ["127.0.0.1/32"]

    client_ip = unique_ipv6()
    flood = {"X-Forwarded-For": client_ip}
    try:
        with waf_server(configure) as one, waf_server(configure) as two:
            codes = [
                httpx.get(srv.url + "/healthz", headers=flood, timeout=10).status_code
                for srv in (one, two, one, two)
            ]
            assert codes == [200] * 4
            refused = httpx.get(two.url + "/healthz", headers=flood, timeout=10)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert httpx.get(one.url + "/healthz", headers=flood, timeout=10).status_code == 429
    finally:
        net = str(ipaddress.IPv6Network((client_ip, 64), strict=False))
        asyncio.run(delete_redis_keys(redis_url, REDIS_PREFIX + net))

"""Rate limiting: GCRA math of the in-process limiter, limit resolution, the stage, headers."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.config import RateLimitSettings
from bastion.core.context import CallContext, Identity, RateInfo, RequestContext
from bastion.protocol.errors import RATE_LIMITED, SECURITY_UNAVAILABLE
from bastion.security import ratelimit
from bastion.security.ratelimit import (
    Limit,
    MemoryRateLimiter,
    RateDecision,
    RateLimitBackendError,
    RateLimitPolicy,
    headers_for,
    make_rate_limit_stage,
)
from bastion.security.ratelimit_backends import build_limiter
from bastion.security.ratelimit_redis import RedisRateLimiter
from bastion.security.stages import Denied


class Clock:
    """A settable clock, in seconds."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(principal: str | None = "alice", method: str = "message/send") -> CallContext:
    identity = Identity(principal, "api_key") if principal is not None else None
    req = RequestContext(
        agent="agent", correlation_id="corr-0001", client="127.0.0.1", headers={}, identity=identity
    )
    return CallContext(request=req, method=method)


async def hits(limiter: MemoryRateLimiter, key: str, limit: Limit, n: int) -> list[RateDecision]:
    return [await limiter.hit(key, limit) for _ in range(n)]


# --- Limit -------------------------------------------------------------------------------------


def test_limit_parse_and_validation() -> None:
    lim = Limit.parse("default", "300/minute")
    assert (lim.name, lim.count, lim.window) == ("default", 300, 60)
    assert lim.interval_us == 200_000
    assert lim.tolerance_us == 299 * 200_000
    # The emission interval is rounded up: never faster than configured.
    assert Limit("x", 3, 1).interval_us == 333_334
    with pytest.raises(ValueError):
        Limit("x", 0, 60)
    with pytest.raises(ValueError):
        Limit("x", 10, 0)
    with pytest.raises(ValueError):
        Limit.parse("x", "10/day")


# --- MemoryRateLimiter: GCRA boundaries --------------------------------------------------------


async def test_burst_of_exactly_n_then_denied() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit("default", 10, 10)

    burst = await hits(limiter, "k", lim, 10)
    assert all(d.allowed for d in burst)
    assert [d.remaining for d in burst] == list(range(9, -1, -1))
    assert [d.reset for d in burst] == list(range(1, 11))
    assert all(d.retry_after == 0 and d.limit is lim for d in burst)

    denied = await limiter.hit("k", lim)
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.retry_after == 1  # one emission interval (1 s)
    assert denied.reset == 10


async def test_denied_hits_do_not_consume_quota() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit("default", 10, 10)
    await hits(limiter, "k", lim, 10)
    for _ in range(1000):
        assert not (await limiter.hit("k", lim)).allowed
    clock.now += 1.0  # exactly one cell comes back, despite the 1000 refusals
    assert (await limiter.hit("k", lim)).allowed
    refused = await limiter.hit("k", lim)
    assert not refused.allowed
    assert refused.retry_after == 1


async def test_window_slides_half_window_gives_half_quota() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit("default", 10, 10)
    await hits(limiter, "k", lim, 10)
    assert not (await limiter.hit("k", lim)).allowed

    clock.now += 5.0  # W/2
    half = await hits(limiter, "k", lim, 11)
    assert [d.allowed for d in half] == [True] * 5 + [False] * 6
    assert [d.remaining for d in half[:5]] == [4, 3, 2, 1, 0]

    clock.now += 10.0  # W after the last admitted hit: full quota again
    full = await hits(limiter, "k", lim, 11)
    assert [d.allowed for d in full] == [True] * 10 + [False]


async def test_partial_refill_retry_after_rounds_up() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit("default", 4, 60)  # one cell every 15 s
    await hits(limiter, "k", lim, 4)
    clock.now += 10.0
    denied = await limiter.hit("k", lim)
    assert not denied.allowed
    assert denied.retry_after == 5
    assert denied.reset == 50
    clock.now += 5.0
    assert (await limiter.hit("k", lim)).allowed


async def test_large_quota_exact_at_large_clock_values() -> None:
    clock = Clock(now=9_876_543.210987)
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit.parse("orchestrator", "100000/minute")
    admitted = 0
    for _ in range(100_001):
        if (await limiter.hit("k", lim)).allowed:
            admitted += 1
    assert admitted == 100_000


async def test_keys_and_limits_are_independent() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    lim = Limit("default", 2, 60)
    await hits(limiter, "a", lim, 2)
    assert not (await limiter.hit("a", lim)).allowed
    assert (await limiter.hit("b", lim)).allowed


async def test_memory_bounded_with_a_million_keys() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=1000)
    lim = Limit("default", 5, 60)
    # A key in active use is close to its limit, so it is the last to be evicted.
    await hits(limiter, "hot", lim, 5)
    peak = 0
    for i in range(1_000_000):
        await limiter.hit(f"k{i}", lim)
        if i % 1000 == 0:
            peak = max(peak, len(limiter))
    assert len(limiter) <= 1000
    assert peak <= 1000
    assert not (await limiter.hit("hot", lim)).allowed


async def test_sweep_drops_keys_back_at_full_quota_first() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=10)
    lim = Limit("default", 5, 10)
    for i in range(9):
        await limiter.hit(f"old{i}", lim)
    await hits(limiter, "hot", lim, 5)
    assert len(limiter) == 10
    clock.now += 3.0  # the old keys (one hit each) are full again; "hot" is not
    await limiter.hit("new", lim)
    assert len(limiter) == 2
    # "hot" kept its state: 1.5 cells came back, not the full quota.
    kept = await limiter.hit("hot", lim)
    assert (kept.allowed, kept.remaining) == (True, 0)


# --- Policy resolution -------------------------------------------------------------------------


SETTINGS = RateLimitSettings(
    default="300/minute",
    principals={"monitoring": "60/minute", "orchestrator": "100000/minute"},
    methods={"get_status": "10/second", "a:b": "1/second"},
)


def test_limits_for_resolves_principal_and_method() -> None:
    policy = RateLimitPolicy(SETTINGS)
    assert policy.limits_for("alice", "message/send") == [("p:alice", Limit("default", 300, 60))]
    assert policy.limits_for("monitoring", "message/send") == [
        ("p:monitoring", Limit("monitoring", 60, 60))
    ]
    assert policy.limits_for("orchestrator", "get_status") == [
        ("m:get_status:orchestrator", Limit("method:get_status", 10, 1)),
        ("p:orchestrator", Limit("orchestrator", 100000, 60)),
    ]
    # ':' in a method name is encoded, so method and principal cannot run into each other.
    assert policy.limits_for("x", "a:b")[0][0] == "m:a%3Ab:x"


# --- The stage ---------------------------------------------------------------------------------


async def test_stage_sets_rate_info_of_principal_limit() -> None:
    settings = RateLimitSettings(default="3/minute", methods={"get_status": "10/second"})
    stage = make_rate_limit_stage(settings, MemoryRateLimiter(clock=Clock()))
    ctx = call(method="get_status")
    await stage(ctx)
    expected = RateInfo(policy="default", limit=3, window=60, remaining=2, reset=20, retry_after=0)
    assert ctx.rate == expected
    assert ctx.request.rate == expected


async def test_stage_denies_with_429_and_retry_after() -> None:
    settings = RateLimitSettings(default="2/minute")
    stage = make_rate_limit_stage(settings, MemoryRateLimiter(clock=Clock()))
    await stage(call())
    await stage(call())
    ctx = call()
    with pytest.raises(Denied) as info:
        await stage(ctx)
    denied = info.value
    assert denied.code == RATE_LIMITED == -32042
    assert denied.stage == "rate_limit"
    assert denied.headers == {"Retry-After": "30"}
    err = denied.to_rpc_error()
    assert err.http_status == 429
    assert err.headers["Retry-After"] == "30"
    assert ctx.rate is not None
    assert (ctx.rate.remaining, ctx.rate.retry_after) == (0, 30)


async def test_per_method_limit_applies_on_top_of_principal_limit() -> None:
    clock = Clock()
    settings = RateLimitSettings(default="5/minute", methods={"get_status": "2/second"})
    stage = make_rate_limit_stage(settings, MemoryRateLimiter(clock=clock))

    await stage(call(method="get_status"))
    await stage(call(method="get_status"))
    with pytest.raises(Denied) as info:
        await stage(call(method="get_status"))
    assert info.value.code == RATE_LIMITED
    assert "method:get_status" in info.value.reason
    # Per principal: another caller has its own per-method quota.
    await stage(call("bob", method="get_status"))

    # The refused call did not use the principal quota: 3 of 5 are left for alice.
    for _ in range(3):
        await stage(call(method="message/send"))
    with pytest.raises(Denied) as info:
        await stage(call(method="message/send"))
    assert "'default'" in info.value.reason

    # Once the method quota is back, the principal limit still applies.
    clock.now += 1.0
    with pytest.raises(Denied) as info:
        await stage(call(method="get_status"))
    assert "'default'" in info.value.reason


async def test_stage_uses_configured_principal_limit() -> None:
    settings = RateLimitSettings(default="1/minute", principals={"orchestrator": "1000/minute"})
    stage = make_rate_limit_stage(settings, MemoryRateLimiter(clock=Clock()))
    for _ in range(1000):
        await stage(call("orchestrator"))
    with pytest.raises(Denied):
        await stage(call("orchestrator"))


class BrokenLimiter:
    def __init__(self) -> None:
        self.calls = 0

    async def hit(self, key: str, limit: Limit) -> RateDecision:
        self.calls += 1
        raise RateLimitBackendError("ConnectionError: refused")

    async def aclose(self) -> None:
        pass


async def test_backend_error_fails_closed_by_default() -> None:
    stage = make_rate_limit_stage(RateLimitSettings(), BrokenLimiter())
    with pytest.raises(Denied) as info:
        await stage(call())
    assert info.value.code == SECURITY_UNAVAILABLE == -32045
    assert info.value.to_rpc_error().http_status == 503
    assert info.value.headers == {"Retry-After": "1"}


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.warnings.append((event, kw))


async def test_backend_error_fails_open_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(ratelimit, "log", recorder)
    clock = Clock()
    stage = make_rate_limit_stage(
        RateLimitSettings(on_backend_error="allow"), BrokenLimiter(), clock=clock
    )
    for _ in range(5):
        ctx = call()
        await stage(ctx)
        assert ctx.rate is None
    assert len(recorder.warnings) == 1  # at most one warning per 10 s
    clock.now += 10.0
    await stage(call())
    assert len(recorder.warnings) == 2
    assert recorder.warnings[1][1]["suppressed"] == 4


# --- Headers and factory -----------------------------------------------------------------------


def test_headers_for() -> None:
    info = RateInfo(policy="default", limit=300, window=60, remaining=42, reset=17)
    assert headers_for(info) == [
        (b"ratelimit-policy", b'"default";q=300;w=60'),
        (b"ratelimit", b'"default";r=42;t=17'),
    ]
    # Structured-field string: '"' and '\\' escaped, anything but printable ASCII replaced.
    odd = RateInfo(policy='a"b\\c\u00e9\n', limit=1, window=1, remaining=0, reset=1)
    assert headers_for(odd)[0] == (b"ratelimit-policy", b'"a\\"b\\\\c??";q=1;w=1')


async def test_build_limiter() -> None:
    assert isinstance(build_limiter(RateLimitSettings()), MemoryRateLimiter)
    with pytest.raises(ValueError, match="redis_url"):
        build_limiter(RateLimitSettings(backend="redis"))
    limiter = build_limiter(
        RateLimitSettings(backend="redis", redis_url="redis://127.0.0.1:6379/0")
    )
    assert isinstance(limiter, RedisRateLimiter)
    await limiter.aclose()


def test_starting_with_memory_beside_a_redis_url_warns() -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        build_limiter(RateLimitSettings(backend="memory", redis_url="redis://127.0.0.1:1/0"))
        build_limiter(RateLimitSettings(backend="memory"))
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "rate_limit.backend is 'memory'" in warnings[0]["event"]

"""Rate limiting: limits, the GCRA limiter contract, the in-process limiter and the call stage.

Algorithm: GCRA (generic cell rate algorithm). A limit of `count` per `window` seconds has an
emission interval `T = window / count` and a burst tolerance `tau = (count - 1) * T`. Each key
keeps one number, its theoretical arrival time (TAT). A hit at time `now` is admitted when
`max(TAT, now) - now <= tau`, and then moves TAT forward by `T`. So a fresh key admits a burst
of exactly `count` at once, after which quota comes back continuously at `count / window` per
second (the window slides); a key whose TAT is in the past is at full quota and can be
forgotten. A denied hit changes nothing. Times are integer microseconds, so the arithmetic is
exact; `T` is rounded up to a whole microsecond, so the rate is never above the configured one.

Limit names (shown in the `RateLimit` headers and the result metadata): a principal's limit is
named after the principal when `rate_limit.principals` configures one, otherwise `"default"`;
a per-method limit is named `"method:<method>"`. Limiter keys: `p:<principal>` for the
principal limit and `m:<method>:<principal>` for the per-method limit (`%` and `:` in the
method name are percent-encoded, so keys cannot collide).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

import structlog

from bastion.config import RateLimitSettings, parse_rate
from bastion.core.context import CallContext, RateInfo
from bastion.security.stages import CallStage, rate_limited, unavailable

__all__ = [
    "Limit",
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimitBackendError",
    "RateLimitPolicy",
    "RateLimiter",
    "headers_for",
    "make_rate_limit_stage",
]

log = structlog.get_logger(__name__)

_US = 1_000_000
# How often (seconds) a fail-open stage repeats its warning about an unreachable store.
_BACKEND_WARN_EVERY = 10.0


class RateLimitBackendError(Exception):
    """The rate-limit store could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Limit:
    """`count` calls per `window` seconds, named `name` in headers and denials."""

    name: str
    count: int
    window: int
    # Derived, in microseconds: the emission interval T and the burst tolerance (count-1)*T.
    interval_us: int = field(init=False, repr=False, compare=False)
    tolerance_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.count <= 0 or self.window <= 0:
            raise ValueError(f"limit {self.name!r}: count and window must be positive")
        interval = -(-self.window * _US // self.count)
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", interval * (self.count - 1))

    @classmethod
    def parse(cls, name: str, rate: str) -> Limit:
        """`Limit.parse("default", "300/minute")`."""
        count, window = parse_rate(rate)
        return cls(name, count, window)


@dataclass(slots=True)
class RateDecision:
    """The outcome of one hit.

    `remaining`: calls still allowed right now. `reset`: seconds until the full quota is back
    (rounded up). `retry_after`: seconds until a call would be admitted (rounded up, >= 1 when
    denied, 0 when allowed).
    """

    allowed: bool
    limit: Limit
    remaining: int
    reset: int
    retry_after: int

    def to_info(self) -> RateInfo:
        lim = self.limit
        return RateInfo(
            lim.name, lim.count, lim.window, self.remaining, self.reset, self.retry_after
        )


def allowed_decision(limit: Limit, used_us: int) -> RateDecision:
    """An admitted hit; `used_us` is `TAT - now` after the hit (in `(0, count * T]`)."""
    interval = limit.interval_us
    return RateDecision(True, limit, limit.count + (-used_us // interval), -(-used_us // _US), 0)


def denied_decision(limit: Limit, used_us: int) -> RateDecision:
    """A refused hit; `used_us` is `TAT - now` (greater than the burst tolerance)."""
    return RateDecision(
        False, limit, 0, -(-used_us // _US), -(-(used_us - limit.tolerance_us) // _US)
    )


class RateLimiter(Protocol):
    """Counts hits per key. A denied hit does not consume quota."""

    async def hit(self, key: str, limit: Limit) -> RateDecision:
        """Record one call for `key` under `limit`; raises `RateLimitBackendError`."""
        ...

    async def aclose(self) -> None:
        """Release connections, if any."""
        ...


class MemoryRateLimiter:
    """GCRA in one process: a dict of key -> TAT (integer microseconds).

    Memory is bounded: when a new key would take the map to `max_keys`, keys at full quota
    (TAT in the past) are dropped, and if that is not enough the keys closest to full quota
    are evicted, down to 90 % of `max_keys` so that the sweep is rare.
    """

    __slots__ = ("_clock", "_low_water", "_max_keys", "_tats")

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if max_keys <= 0:
            raise ValueError("max_keys must be positive")
        self._clock = clock
        self._max_keys = max_keys
        self._low_water = max_keys - max(1, max_keys // 10)
        self._tats: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, key: str, limit: Limit) -> RateDecision:
        now = int(self._clock() * _US)
        tats = self._tats
        tat = tats.get(key)
        if tat is None:
            if len(tats) >= self._max_keys:
                self._sweep(now)
            tat = now
        elif tat < now:
            tat = now
        used = tat - now
        if used > limit.tolerance_us:
            return denied_decision(limit, used)
        tat += limit.interval_us
        tats[key] = tat
        return allowed_decision(limit, tat - now)

    def _sweep(self, now: int) -> None:
        tats = self._tats
        expired = [k for k, tat in tats.items() if tat <= now]
        for k in expired:
            del tats[k]
        excess = len(tats) - self._low_water
        if excess > 0:
            for k, _ in heapq.nsmallest(excess, tats.items(), key=itemgetter(1)):
                del tats[k]

    async def aclose(self) -> None:
        self._tats.clear()


def _method_key_part(method: str) -> str:
    return method.replace("%", "%25").replace(":", "%3A")


class RateLimitPolicy:
    """Which limits apply to a call, from `RateLimitSettings`."""

    __slots__ = ("_default", "_methods", "_principals")

    def __init__(self, settings: RateLimitSettings) -> None:
        self._default = Limit.parse("default", settings.default)
        self._principals = {p: Limit.parse(p, r) for p, r in settings.principals.items()}
        # method -> (limit, key prefix)
        self._methods = {
            m: (Limit.parse(f"method:{m}", r), f"m:{_method_key_part(m)}:")
            for m, r in settings.methods.items()
        }

    def principal_limit(self, principal: str) -> tuple[str, Limit]:
        """The principal's own limit (configured, else the default) and its key."""
        return "p:" + principal, self._principals.get(principal, self._default)

    def method_limit(self, principal: str, method: str) -> tuple[str, Limit] | None:
        """The per-principal limit on `method`, when `method` has one, and its key."""
        entry = self._methods.get(method)
        if entry is None:
            return None
        return entry[1] + principal, entry[0]

    def limits_for(self, principal: str, method: str) -> list[tuple[str, Limit]]:
        """(key, limit) pairs in the order they are checked: per-method first, then principal."""
        out: list[tuple[str, Limit]] = []
        per_method = self.method_limit(principal, method)
        if per_method is not None:
            out.append(per_method)
        out.append(self.principal_limit(principal))
        return out


def make_rate_limit_stage(
    settings: RateLimitSettings,
    limiter: RateLimiter,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> CallStage:
    """The call stage: per-method limit (if any), then the principal limit.

    Allowed: `ctx.rate` and `ctx.request.rate` get the principal limit's quota. Denied: they
    get the refusing limit's quota and `Denied` (-32042, HTTP 429, `Retry-After`) is raised.
    Store unreachable: `Denied` (-32045, HTTP 503) when `on_backend_error` is `"deny"`;
    with `"allow"` the call goes through without quota info and a warning is logged at most
    every 10 seconds. `clock` only paces that warning.
    """
    policy = RateLimitPolicy(settings)
    fail_open = settings.on_backend_error == "allow"
    last_warning = float("-inf")
    suppressed = 0

    def refuse(ctx: CallContext, decision: RateDecision) -> None:
        info = decision.to_info()
        ctx.rate = info
        ctx.request.rate = info
        lim = decision.limit
        raise rate_limited(
            f"{ctx.principal} over limit {lim.name!r} "
            f"({lim.count} per {lim.window}s) on {ctx.method}",
            decision.retry_after,
        )

    def backend_failed(ctx: CallContext, exc: RateLimitBackendError) -> None:
        nonlocal last_warning, suppressed
        if not fail_open:
            raise unavailable("rate_limit", f"rate-limit store unavailable: {exc}") from exc
        ctx.rate = None
        now = clock()
        if now - last_warning >= _BACKEND_WARN_EVERY:
            log.warning(
                "rate_limit.store_unavailable",
                action="allowing calls unlimited",
                error=str(exc),
                suppressed=suppressed,
            )
            last_warning = now
            suppressed = 0
        else:
            suppressed += 1

    async def rate_limit(ctx: CallContext) -> None:
        principal = ctx.principal
        try:
            per_method = policy.method_limit(principal, ctx.method)
            if per_method is not None:
                decision = await limiter.hit(*per_method)
                if not decision.allowed:
                    refuse(ctx, decision)
            decision = await limiter.hit(*policy.principal_limit(principal))
        except RateLimitBackendError as exc:
            backend_failed(ctx, exc)
            return
        if not decision.allowed:
            refuse(ctx, decision)
        info = decision.to_info()
        ctx.rate = info
        ctx.request.rate = info

    return rate_limit


def _sf_string(value: str) -> bytes:
    """`value` as a structured-field string: printable ASCII, `\\` and `"` escaped."""
    text = "".join(c if " " <= c <= "~" else "?" for c in value)
    return ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"').encode("ascii")


# (policy, limit, window) -> (RateLimit-Policy value, RateLimit value prefix)
_header_cache: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}
_HEADER_CACHE_MAX = 1024


def headers_for(info: RateInfo) -> list[tuple[bytes, bytes]]:
    """The `RateLimit-Policy` and `RateLimit` response headers, as ASGI header pairs.

    Per draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "<name>";q=<count>;w=<window>`
    and `RateLimit: "<name>";r=<remaining>;t=<reset>`.
    """
    key = (info.policy, info.limit, info.window)
    cached = _header_cache.get(key)
    if cached is None:
        name = _sf_string(info.policy)
        cached = (b"%s;q=%d;w=%d" % (name, info.limit, info.window), name + b";r=")
        if len(_header_cache) >= _HEADER_CACHE_MAX:
            _header_cache.clear()
        _header_cache[key] = cached
    return [
        (b"ratelimit-policy", cached[0]),
        (b"ratelimit", b"%s%d;t=%d" % (cached[1], info.remaining, info.reset)),
    ]

"""Circuit breaker for outgoing calls to one target: closed, open, half-open.

Closed: calls flow; each transient failure counts, any success resets the count. When the count
reaches `failure_threshold` the breaker opens. Open: calls fail fast with `BreakerOpen` and no
request is sent. Once `reset_seconds` have passed, the breaker lets exactly one trial call
through (half-open): its success closes the breaker, its failure opens it again for another
`reset_seconds`. Other calls made while the trial is in flight fail fast.

The breaker is not tied to a transport: a caller asks `acquire()` before sending and reports the
outcome with `record_success()`, `record_failure()` or `release()` (no verdict, e.g. the call
was cancelled). The clock is injectable so tests can move time without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from bastion.config import ClientSettings

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """The target's breaker is open: the call was refused locally, nothing was sent."""

    def __init__(self, target: str, retry_after: float) -> None:
        self.target = target
        self.retry_after = max(0.0, retry_after)
        super().__init__(
            f"circuit open for {target}: failing fast, next trial in {self.retry_after:.1f}s"
        )


class CircuitBreaker:
    """Consecutive-failure breaker with one trial call in half-open."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 10.0,
        clock: Clock = time.monotonic,
        target: str = "",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds < 0:
            raise ValueError("reset_seconds must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.target = target
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @classmethod
    def from_settings(
        cls, settings: ClientSettings, *, clock: Clock = time.monotonic, target: str = ""
    ) -> CircuitBreaker:
        return cls(
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            clock=clock,
            target=target,
        )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(target={self.target!r}, state={self.state.value!r}, "
            f"failures={self._failures})"
        )

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset time has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._reset_due():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted since the last success."""
        return self._failures

    def _reset_due(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_seconds

    def _retry_in(self) -> float:
        return self.reset_seconds - (self._clock() - self._opened_at)

    def acquire(self) -> None:
        """Permission to send one call; raises `BreakerOpen` when the call must fail fast."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            if not self._reset_due():
                raise BreakerOpen(self.target, self._retry_in())
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        # Half-open: exactly one trial call at a time.
        if self._trial_in_flight:
            raise BreakerOpen(self.target, 0.0)
        self._trial_in_flight = True

    def record_success(self) -> None:
        """The target answered: close the breaker and clear the failure count."""
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """A transient failure: count it; open (or re-open) the breaker when due."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """The call ended without a verdict (cancelled): let another trial through later."""
        self._trial_in_flight = False

"""Circuit breaker for outgoing calls to one target: closed, open, half-open.

Closed: calls flow and each transient failure counts. Without a window, the count is of
consecutive failures: any success resets it. With `failure_window_seconds`, the count is of the
failures within the last that many seconds, successes or not (a target that fails five times a
minute is unhealthy even if some calls get through); older failures are forgotten. When the
count reaches `failure_threshold` the breaker opens. Open: calls fail fast with `BreakerOpen`
and no request is sent. Once `reset_seconds` have passed, the breaker lets exactly one trial
call through (half-open): its success closes the breaker (and forgets every failure), its
failure opens it again for another `reset_seconds`. Other calls made while the trial is in
flight fail fast.

The breaker is not tied to a transport: a caller asks `acquire()` before sending and reports the
outcome with `record_success()`, `record_failure()` or `release()` (no verdict, e.g. the call
was cancelled). The clock is injectable so tests can move time without sleeping.

Given a `metric_name` (a fixed name, never a URL: it is a label value), the breaker exports its
state as `bastion_circuit_state{name}` and counts its transitions
(`bastion_circuit_transitions_total{name, state}`); the move from open to half-open is seen
when a call finds the reset time passed. Listeners (`add_listener`) are told of every state
change, so that a group of breakers can be exported as one (an agent's replicas).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from bastion.config import ClientSettings
from bastion.observability.metrics import observe_circuit_transition, set_circuit_state

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
    """Consecutive-failure (or failures-in-a-window) breaker with one trial call in half-open."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 10.0,
        failure_window_seconds: float | None = None,
        clock: Clock = time.monotonic,
        target: str = "",
        metric_name: str | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds < 0:
            raise ValueError("reset_seconds must not be negative")
        if failure_window_seconds is not None and failure_window_seconds <= 0:
            raise ValueError("failure_window_seconds must be positive (or None: consecutive)")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.failure_window_seconds = failure_window_seconds
        self.target = target
        self.metric_name = metric_name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failure_times: deque[float] = deque()
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._listeners: list[Callable[[], None]] = []
        if metric_name is not None:
            set_circuit_state(metric_name, self._state.value)

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
            f"failures={self.failures})"
        )

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset time has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._reset_due():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        """Failures counted: consecutive ones since the last success, or with a window, those
        within it."""
        self._forget_old_failures()
        return len(self._failure_times)

    def _reset_due(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_seconds

    def _retry_in(self) -> float:
        return self.reset_seconds - (self._clock() - self._opened_at)

    def _forget_old_failures(self) -> None:
        if self.failure_window_seconds is None:
            return
        oldest = self._clock() - self.failure_window_seconds
        while self._failure_times and self._failure_times[0] < oldest:
            self._failure_times.popleft()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each change of state (it reads `state` itself)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling `listener` (a breaker shared by clients outlives each of them)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _enter(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self.metric_name is not None:
            observe_circuit_transition(self.metric_name, state.value)
        for listener in self._listeners:
            listener()

    def acquire(self) -> None:
        """Permission to send one call; raises `BreakerOpen` when the call must fail fast."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            if not self._reset_due():
                raise BreakerOpen(self.target, self._retry_in())
            self._enter(BreakerState.HALF_OPEN)
            self._trial_in_flight = False
        # Half-open: exactly one trial call at a time.
        if self._trial_in_flight:
            raise BreakerOpen(self.target, 0.0)
        self._trial_in_flight = True

    def record_success(self) -> None:
        """The target answered: close the breaker; without a window, clear the failure count
        (with one, a success closes a half-open breaker but does not erase recent failures of a
        closed one)."""
        if self.failure_window_seconds is None or self._state is not BreakerState.CLOSED:
            self._failure_times.clear()
        self._enter(BreakerState.CLOSED)
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """A transient failure: count it; open (or re-open) the breaker when due."""
        self._failure_times.append(self._clock())
        self._forget_old_failures()
        if (
            self._state is BreakerState.HALF_OPEN
            or len(self._failure_times) >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._enter(BreakerState.OPEN)
        self._trial_in_flight = False

    def release(self) -> None:
        """The call ended without a verdict (cancelled): let another trial through later."""
        self._trial_in_flight = False

"""CircuitBreaker: closed -> open after N failures -> half-open trial -> closed or open."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from bastion.config import ClientSettings
from bastion.runtime.breaker import BreakerOpen, BreakerState, CircuitBreaker


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (so type narrowing does not carry across calls)."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, reset: float = 10.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(
        failure_threshold=threshold, reset_seconds=reset, clock=clock, target="t"
    ), clock


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.acquire()
        breaker.record_failure()


def succeed(breaker: CircuitBreaker) -> None:
    breaker.acquire()
    breaker.record_success()


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _ = make(threshold=3)
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    fail(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN
    with pytest.raises(BreakerOpen) as exc:
        breaker.acquire()
    assert exc.value.target == "t"
    assert exc.value.retry_after == pytest.approx(10.0)


def test_success_resets_the_count() -> None:
    breaker, _ = make(threshold=3)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failures == 2


def test_half_open_allows_one_trial_and_closes_on_success() -> None:
    breaker, clock = make(threshold=1, reset=10.0)
    fail(breaker, 1)
    clock.now += 9.9
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    clock.now += 0.1
    assert state_of(breaker) is BreakerState.HALF_OPEN
    breaker.acquire()  # the trial
    with pytest.raises(BreakerOpen):
        breaker.acquire()  # a second call while the trial is in flight
    breaker.record_success()
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.acquire()
    breaker.acquire()


def test_failed_trial_reopens_for_a_full_reset_period() -> None:
    breaker, clock = make(threshold=2, reset=5.0)
    fail(breaker, 2)
    clock.now += 5.0
    breaker.acquire()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    clock.now += 4.0
    with pytest.raises(BreakerOpen) as exc:
        breaker.acquire()
    assert exc.value.retry_after == pytest.approx(1.0)
    clock.now += 1.0
    succeed(breaker)
    assert state_of(breaker) is BreakerState.CLOSED


def test_released_trial_lets_the_next_call_try() -> None:
    breaker, clock = make(threshold=1, reset=1.0)
    fail(breaker, 1)
    clock.now += 1.0
    breaker.acquire()
    breaker.release()
    succeed(breaker)
    assert state_of(breaker) is BreakerState.CLOSED


def test_from_settings_and_repr() -> None:
    settings = ClientSettings(breaker_failure_threshold=7, breaker_reset_seconds=2.5)
    breaker = CircuitBreaker.from_settings(settings, target="http://a")
    assert breaker.failure_threshold == 7
    assert breaker.reset_seconds == 2.5
    assert "closed" in repr(breaker)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_seconds=-1)
    with pytest.raises(ValueError):
        CircuitBreaker(failure_window_seconds=0)


def windowed(threshold: int = 3, window: float = 60.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=threshold,
        failure_window_seconds=window,
        reset_seconds=30.0,
        clock=clock,
        target="t",
    )
    return breaker, clock


def test_a_window_counts_only_recent_failures() -> None:
    breaker, clock = windowed(threshold=3, window=60.0)
    fail(breaker, 2)
    clock.now += 60.5  # the first two are now older than the window
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failures == 2
    clock.now += 60.0  # exactly the window: still counted
    fail(breaker, 1)
    assert breaker.failures == 3
    assert state_of(breaker) is BreakerState.OPEN


def test_with_a_window_successes_do_not_erase_recent_failures() -> None:
    breaker, clock = windowed(threshold=3)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN
    clock.now += 30.0
    succeed(breaker)  # a successful trial forgets every failure
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failures == 0


def test_a_metric_name_exports_the_state_and_counts_transitions() -> None:
    def sample(name: str, **labels: str) -> float:
        value = REGISTRY.get_sample_value(name, {"name": "breaker-test", **labels})
        return value or 0.0

    def entered(state: str) -> float:
        return sample("bastion_circuit_transitions_total", state=state)

    before = {s: entered(s) for s in ("open", "half_open", "closed")}
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1, reset_seconds=5.0, clock=clock, metric_name="breaker-test"
    )
    assert sample("bastion_circuit_state") == 0
    fail(breaker, 1)
    assert sample("bastion_circuit_state") == 2
    clock.now += 5.0
    breaker.acquire()
    assert sample("bastion_circuit_state") == 1
    breaker.record_success()
    assert sample("bastion_circuit_state") == 0
    breaker.record_success()  # no change: not a transition
    assert {s: entered(s) - before[s] for s in before} == {
        "open": 1,
        "half_open": 1,
        "closed": 1,
    }

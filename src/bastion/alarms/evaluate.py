"""Local evaluation: a rule's value from the scraped samples, as Prometheus computes its PromQL.

`SampleHistory` keeps, per series (target, instance, sample name, labels), the values of the
recent scrapes with the time of each: at most `max_points` per series and nothing older than the
longest rule window, at most `max_series` series. A counter's rate needs that history; a gauge
reads the latest value of the series its target gave in the latest scrape round (a target that
could not be scraped has no current gauge values, as Prometheus marks its series stale).

`rate` and `delta` follow Prometheus's `extrapolatedRate`: the samples in `(now - window,
now]`, counter resets added back (rate), the difference extrapolated towards the window's
edges (by at most half a sample interval past the first and last samples, and for a counter
never below zero), divided by the window for a rate. A ratio whose denominator is 0 is NaN
(the condition is then false, as in PromQL); a rule with no matching series has no value.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bastion.alarms.rules import AlarmRule, Kind, Selector
from bastion.alarms.scrape import ScrapeResult

__all__ = ["SampleHistory", "evaluate", "extrapolated"]

Point = tuple[float, float]  # (time, value)
SeriesKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class _Series:
    name: str
    labels: dict[str, str]
    points: deque[Point]


class SampleHistory:
    """Bounded per-series sample history of the metrics the rules read."""

    def __init__(
        self, retention_seconds: float, *, max_points: int = 512, max_series: int = 20_000
    ) -> None:
        self.retention_seconds = retention_seconds
        self._max_points = max_points
        self._max_series = max_series
        self._series: dict[SeriesKey, _Series] = {}
        self._fresh: set[SeriesKey] = set()

    def __len__(self) -> int:
        return len(self._series)

    def record(self, now: float, results: Iterable[ScrapeResult]) -> None:
        """Add one scrape round's samples at `now`; forget what is older than the retention."""
        self._fresh = set()
        for result in results:
            for sample in result.samples:
                key = (result.target.name, result.target.instance, sample.name, sample.labels)
                series = self._series.get(key)
                if series is None:
                    if len(self._series) >= self._max_series:
                        continue
                    series = _Series(
                        sample.name, dict(sample.labels), deque(maxlen=self._max_points)
                    )
                    self._series[key] = series
                series.points.append((now, sample.value))
                self._fresh.add(key)
        horizon = now - self.retention_seconds
        for key in list(self._series):
            points = self._series[key].points
            while points and points[0][0] < horizon:
                points.popleft()
            if not points:
                del self._series[key]

    def ranges(self, selector: Selector, start: float, end: float) -> Iterator[list[Point]]:
        """The points in `(start, end]` of each series `selector` matches."""
        for series in self._series.values():
            if selector.matches(series.name, series.labels):
                yield [p for p in series.points if start < p[0] <= end]

    def latest(self, selector: Selector) -> Iterator[float]:
        """The latest value of each matching series the latest scrape round gave."""
        for key in self._fresh:
            series = self._series.get(key)
            if series is not None and selector.matches(series.name, series.labels):
                yield series.points[-1][1]


def extrapolated(
    points: list[Point], start: float, end: float, *, counter: bool, per_second: bool
) -> float | None:
    """Prometheus's `rate` (counter, per second) or `delta` (neither) of `points` over the range
    `(start, end]`; None with fewer than two points."""
    if len(points) < 2:
        return None
    (first_t, first_v), (last_t, last_v) = points[0], points[-1]
    result = last_v - first_v
    if counter:
        result += sum(prev for (_, prev), (_, cur) in itertools.pairwise(points) if cur < prev)
    sampled = last_t - first_t
    average = sampled / (len(points) - 1)
    threshold = average * 1.1
    to_start, to_end = first_t - start, end - last_t
    if to_start >= threshold:
        to_start = average / 2
    if counter and result > 0 and first_v >= 0:
        to_start = min(to_start, sampled * (first_v / result))
    if to_end >= threshold:
        to_end = average / 2
    factor = (sampled + to_start + to_end) / sampled
    if per_second:
        factor /= end - start
    return result * factor


def _aggregate(how: str, values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if how == "max":
        return max(present)
    if how == "min":
        return min(present)
    return math.fsum(present)


def _ranged(
    history: SampleHistory, selector: Selector, how: str, window: int, now: float, *, rate: bool
) -> float | None:
    start = now - window
    return _aggregate(
        how,
        (
            extrapolated(points, start, now, counter=rate, per_second=rate)
            for points in history.ranges(selector, start, now)
        ),
    )


def evaluate(rule: AlarmRule, history: SampleHistory, now: float) -> float | None:
    """The rule's value at `now`, or None when no series gives one."""
    if rule.kind is Kind.GAUGE:
        return _aggregate(rule.how, history.latest(rule.selector))
    assert rule.window is not None  # the model requires one
    rate = rule.kind is not Kind.DELTA
    value = _ranged(history, rule.selector, rule.how, rule.window, now, rate=rate)
    if rule.kind is not Kind.RATIO or value is None:
        return value
    assert rule.denominator is not None
    denominator = _ranged(history, rule.denominator, "sum", rule.window, now, rate=True)
    if denominator is None:
        return None
    return value / denominator if denominator else math.nan

"""The PromQL a rule exports and the local evaluator agree: for every rule kind (and every
shipped rule), the value the reference PromQL evaluator reads from the exported expression and
the value `bastion.alarms.evaluate` computes from the same scrapes are equal, and so is
whether the alert holds."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from bastion.alarms.evaluate import SampleHistory, evaluate
from bastion.alarms.promql import alert_expr, value_expr
from bastion.alarms.rules import AlarmRule, load_rules, parse_rules
from bastion.alarms.scrape import Sample, ScrapeResult, ScrapeTarget
from tests.alarms.promql_reference import Reference, Series

STEP = 15.0
ROUNDS = 100
TARGETS = [
    ScrapeTarget("gateway", "http://127.0.0.1:1"),
    ScrapeTarget("archivist", "http://127.0.0.1:2"),
]

EXTRA = parse_rules(
    """
rules:
  - {name: SlowestTarget, kind: rate, metric: process_cpu_seconds_total, aggregate: min,
     window: 2m, op: "<", threshold: 0.1, summary: min of rates}
  - {name: QueueSum, kind: gauge, metric: bastion_queue_oldest_age_seconds, aggregate: sum,
     threshold: 10, summary: sum of gauges}
  - {name: QueueMin, kind: gauge, metric: bastion_queue_oldest_age_seconds, aggregate: min,
     labels: {queue: documents}, op: "<=", threshold: 10, summary: min of gauges}
  - {name: CountRatio, kind: ratio, metric: bastion_waf_matches_total, labels: {action: COUNT},
     denominator: {metric: bastion_waf_matches_total, labels: {rule_id: "1"}},
     window: 1m, threshold: 0.5, summary: labelled ratio}
  - {name: IdleRatio, kind: ratio, metric: idle_total, denominator: {metric: idle_total},
     window: 1m, threshold: 0.5, summary: a ratio over nothing is NaN}
  - {name: DeadLettersShrink, kind: delta, metric: bastion_queue_dead_letters, aggregate: min,
     window: 3m, op: "<", threshold: 0, summary: delta with min}
""",
    "extra rules",
)
RULES = load_rules() + EXTRA


class _Scrapes:
    """Scrapes of two targets every STEP seconds: counters (one resets), gauges up and down."""

    def __init__(self) -> None:
        self.rng = random.Random(7)
        self.counters: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}

    def counter(
        self, target: str, index: int, name: str, rate: float, *labels: tuple[str, str]
    ) -> Sample:
        key = (target, name, labels)
        value = self.counters.get(key, 1000.0) + self.rng.uniform(0, rate) * STEP
        if name == "process_cpu_seconds_total" and target == "archivist" and index == 40:
            value = 400.0  # the process restarted
        self.counters[key] = value
        return Sample(name, labels, value)

    def round(self, index: int, target: ScrapeTarget) -> ScrapeResult:
        rng, name = self.rng, target.name
        samples = [
            self.counter(name, index, "bastion_http_responses_total", 20, ("status_class", "2xx")),
            self.counter(name, index, "bastion_http_responses_total", 2, ("status_class", "5xx")),
            self.counter(name, index, "bastion_auth_failures_total", 2, ("agent", name)),
            self.counter(
                name, index, "bastion_waf_matches_total", 8, ("action", "BLOCK"), ("rule_id", "1")
            ),
            self.counter(
                name, index, "bastion_waf_matches_total", 8, ("action", "COUNT"), ("rule_id", "1")
            ),
            self.counter(name, index, "bastion_guardrail_events_total", 1, ("action", "BLOCKED")),
            self.counter(name, index, "process_cpu_seconds_total", 1.2),
            self.counter(name, index, "idle_total", 0),
            Sample(
                "bastion_queue_dead_letters",
                (("queue", "documents"),),
                float(rng.randint(0, 3) + index // 10),
            ),
            Sample(
                "bastion_queue_oldest_age_seconds", (("queue", "documents"),), rng.uniform(0, 600)
            ),
            Sample(
                "bastion_queue_oldest_age_seconds", (("queue", "s3-events"),), rng.uniform(0, 20)
            ),
            Sample(
                "bastion_circuit_state", (("name", target.url),), float(rng.choice([0, 0, 1, 2]))
            ),
            Sample("process_resident_memory_bytes", (), rng.uniform(1e9, 3e9)),
        ]
        return ScrapeResult(target, samples)


def _rounds() -> list[list[ScrapeResult]]:
    scrapes = _Scrapes()
    return [[scrapes.round(index, t) for t in TARGETS] for index in range(ROUNDS)]


def _values(rule: AlarmRule) -> list[tuple[float | None, float | None, bool]]:
    """(local value, reference value, whether the reference's alert holds) at each scrape
    time from the first one whose range holds only scrapes (the reference assumes a sample one
    step after the range's start)."""
    history = SampleHistory(3600)
    series: Series = {}
    out = []
    for index, results in enumerate(_rounds()):
        now = index * STEP
        history.record(now, results)
        for result in results:
            for sample in result.samples:
                key = (sample.name, (*sample.labels, ("instance", result.target.instance)))
                series.setdefault(key, []).append((now, sample.value))
        if now >= (rule.window or 0):
            reference = Reference(series, now)
            alert = reference.alert(alert_expr(rule))
            out.append((evaluate(rule, history, now), reference.value(value_expr(rule)), alert))
    return out


def _same(local: float | None, reference: float | None) -> bool:
    if local is None or reference is None:
        return local is reference
    if math.isnan(local) or math.isnan(reference):
        return math.isnan(local) and math.isnan(reference)
    return math.isclose(local, reference, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_local_value_is_the_promql_value(rule: AlarmRule) -> None:
    values = _values(rule)
    for local, reference, _ in values:
        assert _same(local, reference), (rule.name, local, reference)
    assert any(local is not None for local, _, _ in values)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_alert_holds_when_the_rule_is_breached(rule: AlarmRule) -> None:
    """With the threshold at the median value, the alert both holds and does not."""
    numbers = [v for v, _, _ in _values(rule) if v is not None and not math.isnan(v)]
    if numbers:
        rule = rule.model_copy(update={"threshold": statistics.median(numbers)})
    outcomes = set()
    for local, _, alert in _values(rule):
        breached = local is not None and rule.breached(local)
        assert alert == breached, (rule.name, local)
        outcomes.add(breached)
    if rule.name != "IdleRatio":
        assert outcomes == {True, False}, rule.name

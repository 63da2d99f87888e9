"""A rule as PromQL: the expression of its value, and the alert expression (value op threshold).

    rate   sum(rate(m{l="v"}[5m]))
    ratio  sum(rate(num{...}[5m])) / sum(rate(den{...}[5m]))
    delta  sum(delta(m{...}[15m]))
    gauge  max(m{...})

The local evaluator (`bastion.alarms.evaluate`) computes the same values from scraped samples.
"""

from __future__ import annotations

from bastion.alarms.rules import AlarmRule, Kind, Selector, format_duration

__all__ = ["alert_expr", "selector_expr", "value_expr"]


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector_expr(selector: Selector) -> str:
    """`metric{label="value",...}` (labels in name order), or the bare metric name."""
    if not selector.labels:
        return selector.metric
    matchers = ",".join(f"{k}={_quote(v)}" for k, v in sorted(selector.labels.items()))
    return f"{selector.metric}{{{matchers}}}"


def _ranged(function: str, selector: Selector, window: int) -> str:
    return f"{function}({selector_expr(selector)}[{format_duration(window)}])"


def value_expr(rule: AlarmRule) -> str:
    """The PromQL expression of the rule's value."""
    if rule.kind is Kind.GAUGE:
        return f"{rule.how}({selector_expr(rule.selector)})"
    assert rule.window is not None  # the model requires one
    if rule.kind is Kind.RATIO:
        assert rule.denominator is not None
        numerator = _ranged("rate", rule.selector, rule.window)
        denominator = _ranged("rate", rule.denominator, rule.window)
        return f"sum({numerator}) / sum({denominator})"
    function = "rate" if rule.kind is Kind.RATE else "delta"
    return f"{rule.how}({_ranged(function, rule.selector, rule.window)})"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def alert_expr(rule: AlarmRule) -> str:
    """The PromQL alert expression: the value compared with the threshold."""
    value = value_expr(rule)
    if rule.kind is Kind.RATIO:
        value = f"({value})"
    return f"{value} {rule.op} {_number(rule.threshold)}"

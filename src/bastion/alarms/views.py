"""The console's view of the alarm engine: rules, states, targets, history and deliveries as
JSON-ready dicts (no secrets: webhooks are already redacted, targets are configured URLs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bastion.alarms.notify import Delivery
from bastion.alarms.promql import alert_expr
from bastion.alarms.rules import AlarmRule, format_duration
from bastion.alarms.scrape import TargetStatus
from bastion.alarms.state import AlarmState, Transition

__all__ = ["rule_view", "snapshot"]


def rule_view(rule: AlarmRule) -> dict[str, Any]:
    """A rule as the console lists it, with its PromQL alert expression."""
    return {
        "name": rule.name,
        "kind": rule.kind.value,
        "expr": alert_expr(rule),
        "op": rule.op,
        "threshold": rule.threshold,
        "for": format_duration(rule.hold),
        "severity": rule.severity,
        "summary": rule.summary,
    }


def snapshot(
    *,
    enabled: bool,
    interval_seconds: float,
    rules: Sequence[AlarmRule],
    states: Sequence[AlarmState],
    targets: Sequence[TargetStatus],
    history: Sequence[Transition],
    notifications: Sequence[Delivery],
) -> dict[str, Any]:
    """Everything the console's Alarms view shows, newest first in the lists."""
    return {
        "enabled": enabled,
        "interval_seconds": interval_seconds,
        "rules": [rule_view(rule) for rule in rules],
        "states": [{**asdict(state), "status": state.status.value} for state in states],
        "targets": [asdict(target) for target in targets],
        "history": [asdict(change) for change in history],
        "notifications": [asdict(delivery) for delivery in notifications],
    }

"""Alarm states: inactive -> pending -> firing -> resolved (inactive), as Prometheus moves alerts.

A rule whose condition holds becomes `pending` (at `active_since`), and `firing` once it has
held for the rule's `for:` (at once with `for: 0s`). A pending rule whose condition fails goes
back to `inactive`; a firing one is `resolved` (then `inactive`). A rule without a value (no
matching series: its targets could not be scraped, or nothing counted yet) keeps its state and
shows `nodata`. Every change is kept in a bounded history; `firing` and `resolved` are the
changes that are notified.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bastion.alarms.rules import AlarmRule

__all__ = ["AlarmState", "Status", "Tracker", "Transition"]


class Status(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class AlarmState:
    """Where one rule stands after the latest evaluation."""

    rule: str
    severity: str
    status: Status
    value: float | None  # None: no value, or not a number (a ratio over nothing)
    nodata: bool
    active_since: float | None  # when the condition started to hold (pending and firing)
    firing_since: float | None
    evaluated_at: float | None


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change. `event` is `pending`, `firing`, `resolved` or `inactive` (a pending
    rule whose condition failed before `for:` passed)."""

    at: float
    rule: str
    severity: str
    event: str
    value: float | None
    summary: str

    @property
    def notified(self) -> bool:
        return self.event in ("firing", "resolved")


class Tracker:
    """The states of a set of rules and the history of their changes."""

    def __init__(self, rules: Sequence[AlarmRule], *, history_size: int) -> None:
        self._rules = {rule.name: rule for rule in rules}
        self._states = {
            rule.name: AlarmState(
                rule.name, rule.severity, Status.INACTIVE, None, True, None, None, None
            )
            for rule in rules
        }
        self._history: deque[Transition] = deque(maxlen=history_size)

    def states(self) -> list[AlarmState]:
        return list(self._states.values())

    def history(self, limit: int) -> list[Transition]:
        """The latest `limit` changes, newest first."""
        return list(reversed(self._history))[: max(limit, 0)]

    def observe(self, rule: AlarmRule, value: float | None, now: float) -> list[Transition]:
        """Apply one evaluation of `rule` at `now`; the changes it made."""
        state = self._states[rule.name]
        if value is None:
            self._states[rule.name] = replace(state, nodata=True, evaluated_at=now)
            return []
        shown = None if math.isnan(value) else value
        state = replace(state, value=shown, nodata=False, evaluated_at=now)
        changes: list[str] = []
        if rule.breached(value):
            if state.status is Status.INACTIVE:
                state = replace(state, status=Status.PENDING, active_since=now)
                changes.append("pending")
            assert state.active_since is not None
            if state.status is Status.PENDING and now - state.active_since >= rule.hold:
                state = replace(state, status=Status.FIRING, firing_since=now)
                changes.append("firing")
        elif state.status is not Status.INACTIVE:
            changes.append("resolved" if state.status is Status.FIRING else "inactive")
            state = replace(state, status=Status.INACTIVE, active_since=None, firing_since=None)
        self._states[rule.name] = state
        made = [Transition(now, rule.name, rule.severity, e, shown, rule.summary) for e in changes]
        self._history.extend(made)
        return made

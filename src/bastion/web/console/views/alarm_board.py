"""What the Alarms view shows, from the engine's snapshot: one row per rule with the state an
operator reads (`firing`, `pending`, `resolved`, `inactive` or `nodata`), and the targets,
state changes and webhook deliveries with readable times. No secrets: the snapshot carries
webhook destinations already redacted to scheme and host."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bastion.alarms import Transition

__all__ = [
    "AlarmRow",
    "Board",
    "board",
    "iso",
    "latest_changes",
    "shown_state",
    "stamp",
    "value_text",
]

NO_VALUE = "—"


def stamp(at: float | None) -> str:
    """`at` (epoch seconds) as `2026-12-07 22:30:01Z`, or a dash."""
    if at is None:
        return NO_VALUE
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso(at: float | None) -> str:
    """`at` for a `<time datetime>` attribute (empty when unknown)."""
    return "" if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def value_text(value: float | None) -> str:
    """A value as the table shows it: four significant digits, or a dash."""
    if value is None or math.isnan(value):
        return NO_VALUE
    return f"{value:.4g}"


def delivery_detail(status: int | None, error: str | None) -> str:
    """A delivery's answer in one line: `HTTP 500`, the error, or both when they differ."""
    answer = f"HTTP {status}" if status is not None else ""
    if not error or error == answer:
        return answer
    return f"{answer}: {error}" if answer else error


def shown_state(status: str, nodata: bool, last_event: str | None) -> str:
    """The state an operator reads: `firing` and `pending` as they are; an inactive alarm whose
    latest change was `resolved` shows `resolved`; one with no value in the latest round (or
    not evaluated yet) shows `nodata`."""
    if status != "inactive":
        return status
    if nodata:
        return "nodata"
    return "resolved" if last_event == "resolved" else "inactive"


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One rule and where it stands."""

    name: str
    state: str
    nodata: bool  # no value in the latest round (kept state shown for firing and pending)
    value: str
    condition: str  # `> 0.05`
    hold: str  # the rule's `for:`
    severity: str
    summary: str
    expr: str
    since: float | None

    @property
    def since_text(self) -> str:
        return stamp(self.since)

    @property
    def since_iso(self) -> str:
        return iso(self.since)


@dataclass(frozen=True, slots=True)
class Board:
    """Everything the live part of the page shows."""

    enabled: bool
    interval_seconds: float
    alarms: list[AlarmRow]
    targets: list[dict[str, Any]]
    history: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    counts: dict[str, int]


def _since(state: Mapping[str, Any], shown: str, last_at: float | None) -> float | None:
    """When the shown state began: firing and pending from the state, the others at the
    rule's latest change."""
    key = {"firing": "firing_since", "pending": "active_since"}.get(shown)
    at = state.get(key) if key else last_at
    return None if at is None else float(at)


def board(snapshot: Mapping[str, Any], latest: Mapping[str, tuple[str, float]]) -> Board:
    """The view of `snapshot` (`AlarmService.snapshot`); `latest` is each rule's latest change
    (event, when), from the engine's whole history."""
    states = {state["rule"]: state for state in snapshot["states"]}
    rows = []
    for rule in snapshot["rules"]:
        state = states.get(rule["name"], {})
        event, at = latest.get(rule["name"], (None, None))
        shown = shown_state(state.get("status", "inactive"), state.get("nodata", True), event)
        rows.append(
            AlarmRow(
                name=rule["name"],
                state=shown,
                nodata=bool(state.get("nodata", True)),
                value=value_text(state.get("value")),
                condition=f"{rule['op']} {rule['threshold']:g}",
                hold=rule["for"],
                severity=rule["severity"],
                summary=rule["summary"],
                expr=rule["expr"],
                since=_since(state, shown, at) if state else None,
            )
        )
    counts = {name: sum(row.state == name for row in rows) for name in ("firing", "pending")}
    return Board(
        enabled=bool(snapshot["enabled"]),
        interval_seconds=float(snapshot["interval_seconds"]),
        alarms=rows,
        targets=list(snapshot["targets"]),
        history=list(snapshot["history"]),
        notifications=[
            {**sent, "detail": delivery_detail(sent["status"], sent["error"])}
            for sent in snapshot["notifications"]
        ],
        counts=counts,
    )


def latest_changes(history: Sequence[Transition]) -> dict[str, tuple[str, float]]:
    """Each rule's latest change (event, when) in `history` (newest first)."""
    latest: dict[str, tuple[str, float]] = {}
    for change in history:
        latest.setdefault(change.rule, (change.event, change.at))
    return latest

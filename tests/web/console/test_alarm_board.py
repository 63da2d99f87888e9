"""What the Alarms view shows for the engine's states: the state an operator reads (resolved
after a firing alarm's condition fails, nodata without a value), since when, and the values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bastion.alarms import Transition
from bastion.alarms.rules import load_rules
from bastion.alarms.views import rule_view
from bastion.project import DEFAULT_POLICY
from bastion.security import PolicyStore
from bastion.web.console.pages import Pages
from bastion.web.console.views.alarm_board import (
    board,
    delivery_detail,
    iso,
    latest_changes,
    shown_state,
    stamp,
    value_text,
)
from bastion.web.console.views.alarms import refresh_ms
from tests.web.console.alarm_drill import DRILL, QUIET, RULES_FILE


@pytest.mark.parametrize(
    ("status", "nodata", "last", "shown"),
    [
        ("firing", False, "firing", "firing"),
        ("firing", True, "firing", "firing"),  # kept through a round without data
        ("pending", False, "pending", "pending"),
        ("inactive", False, "resolved", "resolved"),
        ("inactive", False, "inactive", "inactive"),  # pending that never fired
        ("inactive", False, None, "inactive"),
        ("inactive", True, None, "nodata"),
        ("inactive", True, "resolved", "nodata"),
    ],
)
def test_shown_state(status: str, nodata: bool, last: str | None, shown: str) -> None:
    assert shown_state(status, nodata, last) == shown


def test_a_delivery_says_its_answer_once() -> None:
    assert delivery_detail(500, "HTTP 500") == "HTTP 500"
    assert delivery_detail(None, "ConnectError: refused") == "ConnectError: refused"
    assert delivery_detail(200, None) == "HTTP 200" and delivery_detail(None, None) == ""
    assert delivery_detail(302, "redirect not allowed") == "HTTP 302: redirect not allowed"


def test_values_and_times_are_readable() -> None:
    assert value_text(None) == value_text(math.nan) == "—"
    assert value_text(2147483648.0) == "2.147e+09" and value_text(0.05) == "0.05"
    assert stamp(None) == "—" and stamp(0) == "1970-01-01 00:00:00Z"
    assert refresh_ms(0.25) == 1000 and refresh_ms(5) == 5000 and refresh_ms(60) == 15000


def snapshot_at(states: list[dict[str, object]]) -> dict[str, object]:
    return {
        "enabled": True,
        "interval_seconds": 0.25,
        "rules": [rule_view(rule) for rule in load_rules(RULES_FILE)],
        "states": states,
        "targets": [],
        "history": [],
        "notifications": [],
    }


def state(rule: str, status: str, **values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "rule": rule,
        "severity": "warning",
        "status": status,
        "value": None,
        "nodata": False,
        "active_since": None,
        "firing_since": None,
        "evaluated_at": 30.0,
    }
    return {**base, **values}


def test_the_board_reads_states_and_the_latest_changes() -> None:
    history = [  # newest first
        Transition(20.0, DRILL, "warning", "resolved", 0.0, "s"),
        Transition(12.0, DRILL, "warning", "firing", 1.5, "s"),
        Transition(10.0, DRILL, "warning", "pending", 1.5, "s"),
    ]
    view = board(
        snapshot_at([state(DRILL, "inactive", value=0.0), state(QUIET, "inactive", nodata=True)]),
        latest_changes(history),
    )
    drill, quiet = view.alarms
    assert (drill.state, drill.since, drill.value) == ("resolved", 20.0, "0")
    assert drill.condition == "> 0"
    assert (drill.hold, drill.severity) == ("1s", "warning")
    assert (quiet.state, quiet.since, quiet.value) == ("nodata", None, "—")
    assert view.counts == {"firing": 0, "pending": 0}

    view = board(
        snapshot_at(
            [
                state(DRILL, "firing", value=1.5, active_since=10.0, firing_since=12.0),
                state(QUIET, "pending", value=2e15, active_since=25.0),
            ]
        ),
        latest_changes(history[1:]),
    )
    drill, quiet = view.alarms
    assert (drill.state, drill.since, drill.since_iso) == (
        "firing",
        12.0,
        "1970-01-01T00:00:12+00:00",
    )
    assert (quiet.state, quiet.since, quiet.condition) == ("pending", 25.0, "> 1e+15")
    assert view.counts == {"firing": 1, "pending": 1}


def test_untrusted_text_is_escaped_in_the_live_part(tmp_path: Path) -> None:
    """Errors come from other processes and summaries from a rules file: text, never markup."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(DEFAULT_POLICY))
    env = Pages(PolicyStore(policy)).env
    hostile = '<img src=x onerror="alert(1)">'
    snapshot = snapshot_at([state(DRILL, "firing", value=1.0, firing_since=1.0)])
    snapshot["targets"] = [
        {"name": "archivist", "url": "http://a:1", "up": False, "error": hostile, "scraped_at": 1}
    ]
    snapshot["notifications"] = [
        {
            "at": 1.0,
            "rule": DRILL,
            "event": "firing",
            "webhook": "https://hooks.example",
            "attempt": 1,
            "outcome": "error",
            "status": 500,
            "error": hostile,
        }
    ]
    view = board(snapshot, {})
    html = env.get_template("alarms_live.html").render(
        board=view,
        webhooks=1,
        now_text="now",
        stamp=stamp,
        iso=iso,
        value_text=value_text,
    )
    assert "<img" not in html and html.count("&lt;img src=x onerror=&#34;alert(1)&#34;&gt;") == 2
    assert 'data-outcome="error"' in html and "HTTP 500: &lt;img" in html

"""Rules YAML: the shipped rules load, and every mistake is refused naming file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.alarms.rules import (
    AlarmRule,
    Kind,
    RulesError,
    format_duration,
    load_rules,
    parse_duration,
    parse_rules,
)

GOOD = """
rules:
  - name: Errors
    kind: rate
    metric: errors_total
    labels: {code: "500"}
    window: 5m
    threshold: 1
    for: 1m30s
    severity: critical
    summary: too many errors
"""


def test_the_shipped_rules_load_and_cover_the_platform() -> None:
    rules = load_rules()
    metrics = {s.metric for rule in rules for s in rule.selectors()}
    assert {
        "bastion_http_responses_total",
        "bastion_auth_failures_total",
        "bastion_queue_dead_letters",
        "bastion_queue_oldest_age_seconds",
        "bastion_circuit_state",
        "bastion_waf_matches_total",
        "bastion_guardrail_events_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    } <= metrics
    assert {rule.kind for rule in rules} == set(Kind)
    guardrail = next(r for r in rules if r.metric == "bastion_guardrail_events_total")
    assert guardrail.labels == {"action": "BLOCKED"}  # the label value GuardService writes


def test_a_rule_reads_its_fields() -> None:
    [rule] = parse_rules(GOOD, "t.yaml")
    assert rule == AlarmRule.model_validate(
        {
            "name": "Errors",
            "kind": "rate",
            "metric": "errors_total",
            "labels": {"code": "500"},
            "window": 300,
            "threshold": 1,
            "for": 90,
            "severity": "critical",
            "summary": "too many errors",
        }
    )
    assert rule.how == "sum" and rule.hold == 90
    assert rule.breached(1.5) and not rule.breached(1.0)


@pytest.mark.parametrize(
    ("text", "duration"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("0s", 0), (45, 45)]
)
def test_durations(text: str | int, duration: int) -> None:
    assert parse_duration(text) == duration
    assert parse_duration(format_duration(duration)) == duration


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "-1s", "1d", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="30s, 5m"):
        parse_duration(text)


def _broken(**changes: object) -> str:
    fields: dict[str, object] = {
        "name": "Errors",
        "kind": "rate",
        "metric": "errors_total",
        "window": "5m",
        "threshold": 1,
        "summary": "too many errors",
    }
    fields.update(changes)
    lines = [f"    {k}: {v}" for k, v in fields.items() if v is not None]
    return "rules:\n  -\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", r"t\.yaml:1: not valid YAML"),
        ("- a\n- b\n", "one key, rules"),
        ("rules: []\n", "non-empty list"),
        ("rules: [3]\n", r"rules\[0\]: a rule is a mapping"),
        (_broken(colour="red"), r"rules\[0\] \(Errors\): colour: unknown field"),
        (_broken(window=None), "a rate rule needs a window"),
        (_broken(window="5 minutes"), "window: bad duration"),
        (_broken(kind="gauge"), "remove window"),
        (_broken(kind="ratio"), "ratio rule needs a denominator"),
        (_broken(denominator="{metric: x_total}"), "only a ratio rule takes one"),
        (_broken(kind="histogram"), "kind: Input should be"),
        (_broken(metric="'bad-name'"), "bad metric name"),
        (_broken(labels="{'bad-label': x}"), "bad label name"),
        (_broken(name="'9lives'"), "bad name"),
        (_broken(op="'=>'"), "op: Input should be"),
        (_broken(severity="page"), "severity: Input should be"),
        (_broken(threshold="lots"), "threshold: Input should be a valid number"),
        (_broken(threshold=".nan"), "threshold: Input should be a finite number"),
        ("rules:\n" + "  - {}\n" * 201, "201 rules, at most 200"),
        (_broken(summary="''"), "one-line summary"),
        (_broken(summary=None), "summary: Field required"),
        (
            _broken(kind="ratio", denominator="{metric: x_total}", aggregate="max"),
            "remove aggregate",
        ),
    ],
)
def test_mistakes_are_refused_with_the_place_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message) as caught:
        parse_rules(text, "t.yaml")
    assert str(caught.value).startswith("t.yaml")


def test_two_rules_of_one_name_are_refused() -> None:
    body = GOOD.split("rules:\n", 1)[1]
    with pytest.raises(RulesError, match="two rules are named Errors"):
        parse_rules("rules:\n" + body + body, "t.yaml")


def test_a_missing_rules_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"cannot read the alarm rules .* alarms\.rules_file"):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "ok.yaml").write_text(GOOD)
    assert [r.name for r in load_rules(tmp_path / "ok.yaml")] == ["Errors"]

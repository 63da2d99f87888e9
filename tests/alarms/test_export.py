"""Export: the committed Prometheus rules and Grafana dashboard are what the shipped rules
export to, the files have the shapes Prometheus and Grafana read, and `bastion alarms export`
writes them from the shipped rules, `--rules` or `alarms.rules_file`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bastion.alarms.export import DASHBOARD_FILE, RULES_FILE, grafana_dashboard, prometheus_rules
from bastion.alarms.promql import alert_expr, value_expr
from bastion.alarms.rules import format_duration, load_rules
from tests.cli.runner import run

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "observability"
CUSTOM = """
rules:
  - {name: Custom, kind: gauge, metric: my_gauge, op: "<", threshold: 3, summary: low}
"""


def test_the_committed_files_are_the_shipped_rules_exported() -> None:
    rules = load_rules()
    assert (COMMITTED / RULES_FILE).read_text(encoding="utf-8") == prometheus_rules(rules), (
        "out of date: run `bastion alarms export --out deploy/observability`"
    )
    assert (COMMITTED / DASHBOARD_FILE).read_text(encoding="utf-8") == grafana_dashboard(rules)
    assert (COMMITTED / "README.md").is_file()


def test_the_rule_group_is_what_prometheus_reads() -> None:
    rules = load_rules()
    document = yaml.safe_load(prometheus_rules(rules))
    [group] = document["groups"]
    assert group["name"] == "bastion"
    for rule, alert in zip(rules, group["rules"], strict=True):
        assert set(alert) == {"alert", "expr", "for", "labels", "annotations"}
        assert alert["alert"] == rule.name and alert["expr"] == alert_expr(rule)
        assert alert["labels"] == {"severity": rule.severity}
        assert alert["annotations"] == {"summary": rule.summary}


def test_the_dashboard_has_a_panel_per_rule_with_its_expression_and_threshold() -> None:
    rules = load_rules()
    dashboard = json.loads(grafana_dashboard(rules))
    panels = dashboard["panels"]
    assert [p["title"] for p in panels] == [r.name for r in rules]
    assert len({p["id"] for p in panels}) == len(rules)
    assert len({(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels}) == len(rules)
    for rule, panel in zip(rules, panels, strict=True):
        [target] = panel["targets"]
        assert target["expr"] == value_expr(rule)
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[1] == {"color": "red", "value": rule.threshold}


def test_the_command_writes_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no bastion.yaml here: the shipped rules
    result = run("alarms", "export", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / RULES_FILE).read_text() == (COMMITTED / RULES_FILE).read_text()
    assert (tmp_path / "out" / DASHBOARD_FILE).read_text() == (
        COMMITTED / DASHBOARD_FILE
    ).read_text()


def test_the_command_reads_rules_from_the_option_or_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(CUSTOM)
    result = run(
        "alarms", "export", "--out", str(tmp_path / "a"), "--rules", str(tmp_path / "mine.yaml")
    )
    assert result.exit_code == 0, result.output
    assert "my_gauge) < 3" in (tmp_path / "a" / RULES_FILE).read_text()
    config = tmp_path / "bastion.yaml"
    config.write_text("alarms:\n  rules_file: mine.yaml\n")
    result = run("alarms", "export", "--out", str(tmp_path / "b"), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "alert: Custom" in (tmp_path / "b" / RULES_FILE).read_text()


def test_a_bad_rules_file_is_one_line_naming_the_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("rules:\n  - {name: X, kind: gauge}\n")
    result = run("alarms", "export", "--out", str(tmp_path), "--rules", str(tmp_path / "bad.yaml"))
    assert result.exit_code == 1
    assert "bad.yaml: rules[0] (X): metric: Field required" in result.output
    assert not (tmp_path / RULES_FILE).exists()


def test_the_docs_list_the_shipped_rules_as_exported() -> None:
    docs = (ROOT / "docs" / "alarms.md").read_text(encoding="utf-8")
    for rule in load_rules():
        row = f"| `{rule.name}` | `{alert_expr(rule)}` | {format_duration(rule.hold)} | "
        assert row + f"{rule.severity} |" in docs, f"docs/alarms.md: the {rule.name} row"

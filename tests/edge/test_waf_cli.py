"""`bastion waf test FILE.jsonl`: one verdict per recorded request, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import Result

from tests.cli.runner import run, run_process

UA = {"User-Agent": "OWASP CRS test agent", "Host": "localhost"}


def record(uri: str = "/get", body: str = "", **extra: Any) -> str:
    return json.dumps({"method": "GET", "uri": uri, "headers": UA, "body": body, **extra})


def write(tmp_path: Path, *lines: str, waf: dict[str, Any] | None = None) -> tuple[Path, Path]:
    data = tmp_path / "cases.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "bastion.yaml"
    config.write_text(yaml.safe_dump({"waf": waf or {}}), encoding="utf-8")
    return data, config


def verdicts(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_one_verdict_per_line_in_order(tmp_path: Path) -> None:
    data, config = write(
        tmp_path,
        record(),
        record(uri="/post", body="x" * 70_000),  # over the default body limit
        record(uri="/get?" + "q" * 9000),
        waf={"limits": {"body_bytes": 65536}},
    )
    result = run("waf", "test", str(data), "--config", str(config))
    assert verdicts(result) == [
        {"action": "ALLOW", "rule_ids": []},
        {"action": "BLOCK", "rule_ids": ["size.body"]},
        {"action": "BLOCK", "rule_ids": ["size.uri", "size.query"]},
    ]
    assert "3 requests" in result.stderr


def test_malformed_lines_name_their_number_and_evaluation_goes_on(tmp_path: Path) -> None:
    data, config = write(
        tmp_path,
        "{not json",
        json.dumps({"uri": "/x"}),
        json.dumps({"method": "GET", "uri": "/x", "headers": 5}),
        json.dumps([1, 2]),
        record(),
    )
    out = verdicts(run("waf", "test", str(data), "-c", str(config)))
    assert [v["action"] for v in out] == ["ERROR", "ERROR", "ERROR", "ERROR", "ALLOW"]
    assert [v["line"] for v in out[:4]] == [1, 2, 3, 4]
    assert "method" in out[1]["error"] and "headers" in out[2]["error"]


def test_count_mode_reports_count(tmp_path: Path) -> None:
    data, config = write(
        tmp_path,
        record(body="y" * 100),
        waf={"groups": {"size": "COUNT"}, "limits": {"body_bytes": 10}},
    )
    assert verdicts(run("waf", "test", str(data), "-c", str(config))) == [
        {"action": "COUNT", "rule_ids": ["size.body"]}
    ]


def test_edge_rules_only_when_asked(tmp_path: Path) -> None:
    lines = [record(uri="/api/documents", client_ip="203.0.113.1") for _ in range(3)]
    lines.append(record(uri="/unknown"))
    lines.append(record(uri="/api/documents", client_ip="203.0.113.2"))
    data, config = write(tmp_path, *lines, waf={"rate_limit": 2, "rate_window_seconds": 60})
    plain = verdicts(run("waf", "test", str(data), "-c", str(config)))
    assert {v["action"] for v in plain} == {"ALLOW"}
    edge = verdicts(
        run("waf", "test", str(data), "-c", str(config), "--edge", "--allow", "/api/documents")
    )
    assert edge == [
        {"action": "ALLOW", "rule_ids": []},
        {"action": "ALLOW", "rule_ids": []},
        {"action": "BLOCK", "rule_ids": ["rate.per_ip"]},
        {"action": "BLOCK", "rule_ids": ["path_allowlist.unknown_path"]},
        {"action": "ALLOW", "rule_ids": []},
    ]


def test_unreadable_file_exits_non_zero(tmp_path: Path) -> None:
    _, config = write(tmp_path, record())
    result = run("waf", "test", str(tmp_path / "missing.jsonl"), "-c", str(config))
    assert result.exit_code != 0
    assert "cannot read" in result.output


def test_bad_config_is_named(tmp_path: Path) -> None:
    data, config = write(tmp_path, record(), waf={"rate_window_seconds": 45})
    result = run("waf", "test", str(data), "-c", str(config))
    assert result.exit_code != 0
    assert "waf.rate_window_seconds" in result.output


def test_real_rules_block_attacks_and_scanners(tmp_path: Path) -> None:
    scanner = json.dumps(
        {"method": "GET", "uri": "/", "headers": {"User-Agent": "Nikto/2.5.0"}, "body": ""}
    )
    data, config = write(
        tmp_path,
        record(uri="/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
        scanner,
        record(uri="/search?q=invoice%20march"),
    )
    out = verdicts(run("waf", "test", str(data), "-c", str(config)))
    assert out[0]["action"] == "BLOCK"
    assert all(i.startswith("managed.sqli.") for i in out[0]["rule_ids"])
    assert out[1] == {"action": "BLOCK", "rule_ids": ["bot.scanner_user_agent"]}
    assert out[2] == {"action": "ALLOW", "rule_ids": []}


def test_a_bad_override_value_is_a_usage_error_naming_the_variable(tmp_path: Path) -> None:
    data, config = write(tmp_path, record())
    result = run_process(
        "waf", "test", str(data), "--config", str(config), env={"BASTION_WAF__RATE_LIMIT": "lots"}
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: environment variable BASTION_WAF__RATE_LIMIT")
    assert "Traceback" not in result.stderr and result.stdout == ""

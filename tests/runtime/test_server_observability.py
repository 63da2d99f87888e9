"""Correlation IDs reach every log line and audit record; errors of every kind are audited;
policy edits under live traffic drop no request."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog

from bastion.config import LoggingSettings, Settings
from bastion.observability.logging import configure_logging
from tests.runtime.conftest import AgentEnv, make_env


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(LoggingSettings(level="INFO", format="json"), stream=stream)
    yield stream
    structlog.configure(**previous)


def test_log_lines_carry_the_correlation_id(log_stream: io.StringIO, agent: AgentEnv) -> None:
    @agent.app.definition.registry.method("fail_loudly")
    async def fail_loudly() -> None:
        raise RuntimeError("boom")

    cid = "log-correlation-0001"
    r = agent.rpc("fail_loudly", key=agent.admin_key, headers={"X-Correlation-ID": cid})
    assert r.json()["error"]["code"] == -32603
    lines = [
        orjson.loads(line) for line in log_stream.getvalue().splitlines() if line.startswith("{")
    ]
    failure = [line for line in lines if line.get("event") == "handler failed"]
    assert failure and failure[0]["correlation_id"] == cid
    assert failure[0]["level"] == "error"


def _audit_lines(text: str, cid: str) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [x for x in lines if x.get("event") == "audit" and x.get("correlation_id") == cid]


def test_audit_records_are_json_log_lines_in_process(
    log_stream: io.StringIO, tmp_path: Path
) -> None:
    cid = "audit-log-line-0001"

    def in_process(s: Settings) -> None:
        s.audit.writer = "in_process"

    for env in make_env(tmp_path, in_process):
        env.rpc("echo", {"message": "x"}, key=env.admin_key, headers={"X-Correlation-ID": cid})
        env.audit_records(lambda a: a.correlation_id == cid)
    audit = _audit_lines(log_stream.getvalue(), cid)
    assert audit and audit[0]["principal"] == "admin" and audit[0]["outcome"] == "ok"
    assert "hash" in audit[0] and "seq" in audit[0]


def test_the_writer_process_logs_each_record_as_a_json_line(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cid = "audit-log-line-0002"
    for env in make_env(tmp_path):
        assert env.settings.audit.writer == "process"
        env.rpc("echo", {"message": "x"}, key=env.admin_key, headers={"X-Correlation-ID": cid})
        env.audit_records(lambda a: a.correlation_id == cid)
    audit = _audit_lines(capfd.readouterr().err, cid)
    assert audit and audit[0]["principal"] == "admin" and audit[0]["outcome"] == "ok"


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b"{oops", "error:-32700"),
        (b'{"jsonrpc":"1.0","method":"echo","id":1}', "error:-32600"),
        (b'{"jsonrpc":"2.0","method":"nope","id":1}', "error:-32601"),
        (b'{"jsonrpc":"2.0","method":"echo","params":{},"id":1}', "error:-32602"),
    ],
)
def test_every_jsonrpc_error_is_audited(agent: AgentEnv, body: bytes, outcome: str) -> None:
    cid = f"rpc-error-{outcome[-5:]}"
    agent.post(body, key=agent.admin_key, headers={"X-Correlation-ID": cid})
    rows = agent.audit_records(lambda a: a.correlation_id == cid)
    assert rows and rows[0].outcome == outcome and rows[0].principal == "admin"


def test_policy_edits_under_load_drop_no_request(agent: AgentEnv) -> None:
    bob = agent.key("bob")
    allow = {"allow": {"admin": ["*"], "bob": ["echo"]}}
    deny = {"allow": {"admin": ["*"]}}
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(agent.rpc("echo", {"message": "x"}, key=bob).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    policy_path = agent.settings.path(agent.settings.policy.file)
    for i in range(40):
        tmp = policy_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(allow if i % 2 else deny))
        tmp.replace(policy_path)  # atomic swap, as an operator's deploy would do
    policy_path.write_text(json.dumps(allow))
    stop.set()
    for w in workers:
        w.join(timeout=30)
    assert statuses, "no request was made"
    assert set(statuses) <= {200, 403}, f"unexpected statuses: {sorted(set(statuses))}"
    assert agent.rpc("echo", {"message": "x"}, key=bob).status_code == 200

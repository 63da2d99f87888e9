"""Every refused request leaves one JSON log line with the principal (when known), the
correlation ID and the reason: captured from `bastion serve` processes, the echo agent and the
gateway, for a bad key, a forbidden method, a rate-limited caller and an oversized body."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bastion.config import load_settings
from bastion.project import InitResult, init_project
from bastion.security.stack import build_api_key_store
from tests.runtime.test_serve_process import BASTION, RUNNING_RE, child_env

START_TIMEOUT = 60.0  # a hang guard: the cores are shared with other tests' processes
MAX_BODY = 4096
UPLOAD_LIMIT = 64 * 1024
# Well formed, unknown: the key id is logged as the reason, the secret never.
BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64


@contextmanager
def served(project: InitResult, agent: str) -> Iterator[tuple[str, Path]]:
    """`bastion serve AGENT --port 0` until the block exits: its URL and its log file (stdout
    and stderr), complete once the block has exited."""
    log_path = project.directory / f"{agent}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*BASTION, "serve", agent, "--config", str(project.config), "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=project.directory,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (m := RUNNING_RE.search(log_path.read_text(errors="replace"))):
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{m.group(3)}", log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@contextmanager
def point_at(project: InitResult, agent: str, url: str) -> Iterator[None]:
    """`agents.AGENT.url` set to `url` in the project's config for the block (the services
    started inside it read it), and put back after."""
    before = project.config.read_text()
    doc = yaml.safe_load(before)
    doc["agents"][agent]["url"] = url
    project.config.write_text(yaml.safe_dump(doc))
    try:
        yield
    finally:
        project.config.write_text(before)


def rejections(log_path: Path) -> dict[str, dict[str, Any]]:
    """The `request rejected` lines of a log, by correlation ID."""
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    return {x["correlation_id"]: x for x in lines if x.get("event") == "request rejected"}


@pytest.fixture
def project(tmp_path: Path) -> InitResult:
    res = init_project(tmp_path / "proj")
    doc = yaml.safe_load(res.config.read_text())
    doc["server"]["max_body_bytes"] = MAX_BODY
    doc["pipeline"]["max_upload_bytes"] = UPLOAD_LIMIT
    doc["rate_limit"]["principals"].update({"bob": "2/minute", "submitter": "2/minute"})
    doc["logging"] = {"level": "INFO", "format": "json"}
    res.config.write_text(yaml.safe_dump(doc))
    policy_path = res.directory / "policy.json"
    policy = json.loads(policy_path.read_text())
    policy["allow"]["bob"] = ["echo"]
    policy_path.write_text(json.dumps(policy))
    return res


def key(project: InitResult, principal: str) -> str:
    return build_api_key_store(load_settings(project.config)).create(principal)


def test_agent_rejections_are_logged_with_principal_correlation_id_and_reason(
    project: InitResult,
) -> None:
    bob = key(project, "bob")

    def rpc(method: str, cid: str, api_key: str, body: bytes | None = None) -> int:
        doc = {"jsonrpc": "2.0", "method": method, "params": {"message": "x"}, "id": 1}
        headers = {"X-API-Key": api_key, "X-Correlation-ID": cid}
        content = body if body is not None else json.dumps(doc).encode()
        headers["content-type"] = "application/json"
        r = httpx.post(url + "/message", content=content, headers=headers, timeout=10)
        return r.status_code

    with served(project, "echo") as (url, log_path):
        assert rpc("echo", "reject-bad-key-0001", BAD_KEY) == 401
        assert rpc("get_status", "reject-forbidden-0001", bob) == 403
        assert rpc("echo", "allowed-call-0001", bob) == 200
        assert rpc("echo", "allowed-call-0002", bob) == 200
        assert rpc("echo", "reject-rate-limited-0001", bob) == 429
        oversized = b'{"jsonrpc":"2.0","method":"echo","id":1,"pad":"' + b"x" * MAX_BODY + b'"}'
        assert rpc("echo", "reject-oversized-0001", bob, oversized) == 413
    lines = rejections(log_path)

    bad_key = lines["reject-bad-key-0001"]
    assert bad_key["status"] == 401 and bad_key["stage"] == "authenticate"
    assert bad_key["principal"] is None and "unknown api key id aaaaaaaaaaaa" in bad_key["reason"]
    forbidden = lines["reject-forbidden-0001"]
    assert forbidden["status"] == 403 and forbidden["stage"] == "authorize"
    assert forbidden["principal"] == "bob" and forbidden["method"] == "get_status"
    assert forbidden["reason"]
    limited = lines["reject-rate-limited-0001"]
    assert limited["status"] == 429 and limited["stage"] == "rate_limit"
    assert limited["principal"] == "bob" and limited["reason"]
    big = lines["reject-oversized-0001"]
    assert big["status"] == 413 and big["stage"] == "size_limit"
    assert "max_body_bytes" in big["reason"]
    for line in lines.values():
        assert line["level"] == "warning" and line["agent"] == "echo"
    assert not {"allowed-call-0001", "allowed-call-0002"} & set(lines)
    text = log_path.read_text()
    assert bob not in text and BAD_KEY not in text
    assert re.search(r"bst_\w{12}_[0-9a-f]{64}", text) is None


def test_gateway_rejections_are_logged_with_principal_correlation_id_and_reason(
    project: InitResult,
) -> None:
    submitter = key(project, "submitter")
    monitoring = key(project, "monitoring")

    def upload(cid: str, api_key: str | None, data: bytes = b"%PDF-1.4 tiny") -> int:
        headers = {"X-Correlation-ID": cid}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        files = {"file": ("a.pdf", data, "application/pdf")}
        r = httpx.post(url + "/api/documents", files=files, headers=headers, timeout=10)
        return r.status_code

    # The upload that passes is recorded by the archivist: serve it first, at its own port.
    with (
        served(project, "archivist") as (archivist_url, _),
        point_at(project, "archivist", archivist_url),
        served(project, "gateway") as (url, log_path),
    ):
        assert upload("gw-no-credential-0001", None) == 401
        assert upload("gw-bad-key-0001", BAD_KEY) == 401
        assert upload("gw-forbidden-0001", monitoring) == 403
        assert upload("gw-oversized-0001", submitter, b"%PDF-" + b"x" * (UPLOAD_LIMIT + 10)) == 413
        assert upload("gw-allowed-0001", submitter) == 202
        assert upload("gw-rate-limited-0001", submitter) == 429
    lines = rejections(log_path)

    assert lines["gw-no-credential-0001"]["reason"] == "no credential"
    assert lines["gw-bad-key-0001"]["principal"] is None
    assert lines["gw-bad-key-0001"]["stage"] == "authenticate"
    forbidden = lines["gw-forbidden-0001"]
    assert forbidden["status"] == 403 and forbidden["principal"] == "monitoring"
    assert forbidden["method"] == "upload_document" and forbidden["reason"]
    big = lines["gw-oversized-0001"]
    assert big["status"] == 413 and big["principal"] == "submitter"
    assert "upload limit" in big["reason"]
    limited = lines["gw-rate-limited-0001"]
    assert limited["status"] == 429 and limited["principal"] == "submitter"
    assert limited["stage"] == "rate_limit" and limited["reason"]
    assert "gw-allowed-0001" not in lines
    text = log_path.read_text()
    assert submitter not in text and monitoring not in text and BAD_KEY not in text

"""JSON-RPC 2.0 over real HTTP through the full security stack: every malformed case."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.runtime.conftest import AgentEnv


def _err(resp: httpx.Response) -> dict[str, object]:
    return resp.json()["error"]  # type: ignore[no-any-return]


def test_echo_round_trip(agent: AgentEnv) -> None:
    r = agent.rpc("echo", {"message": "hello"}, key=agent.admin_key)
    assert r.status_code == 200
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 1
    assert body["result"]["message"] == "hello"


def test_positional_params(agent: AgentEnv) -> None:
    r = agent.rpc("echo", ["positional"], key=agent.admin_key)
    assert r.json()["result"]["message"] == "positional"


@pytest.mark.parametrize(
    "body", [b"{", b"nope", b'{"jsonrpc": "2.0", "method": "echo", "id": 1,}', b"\x00\xff"]
)
def test_parse_error(agent: AgentEnv, body: bytes) -> None:
    r = agent.post(body, key=agent.admin_key)
    assert r.status_code == 200
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }


@pytest.mark.parametrize(
    ("doc", "rid"),
    [
        ({"jsonrpc": "1.0", "method": "echo", "id": 5}, 5),
        ({"method": "echo", "id": 5}, 5),
        ({"jsonrpc": "2.0", "method": "echo", "id": {"x": 1}}, None),
        ({"jsonrpc": "2.0", "method": "echo", "id": True}, None),
        ({"jsonrpc": "2.0", "method": 42, "id": 5}, 5),
        ({"jsonrpc": "2.0", "method": "echo", "params": "str", "id": 5}, 5),
    ],
)
def test_invalid_request(agent: AgentEnv, doc: dict[str, object], rid: object) -> None:
    r = agent.post(json.dumps(doc).encode(), key=agent.admin_key)
    assert r.status_code == 200
    assert r.json()["id"] == rid
    assert _err(r)["code"] == -32600


def test_method_not_found(agent: AgentEnv) -> None:
    r = agent.rpc("no_such_method", key=agent.admin_key)
    assert _err(r)["code"] == -32601


@pytest.mark.parametrize(
    "params", [{}, {"message": 5}, {"message": None}, {"message": "x" * 70000}, ["a", "b"]]
)
def test_invalid_params(agent: AgentEnv, params: object) -> None:
    r = agent.rpc("echo", params, key=agent.admin_key)
    err = _err(r)
    assert err["code"] == -32602
    assert isinstance(err["data"], list) and err["data"]


def test_invalid_params_never_echo_the_input(agent: AgentEnv) -> None:
    secret = "s3cr3t-value-that-must-not-come-back"
    r = agent.rpc("echo", {"message": {"nested": secret}}, key=agent.admin_key)
    assert _err(r)["code"] == -32602
    assert secret not in r.text


def test_internal_error_has_no_stack_trace(agent: AgentEnv) -> None:
    @agent.app.definition.registry.method("explode")
    async def explode() -> None:
        raise RuntimeError("database password is hunter2 at /srv/app.py line 3")

    r = agent.rpc("explode", key=agent.admin_key)
    err = _err(r)
    assert err["code"] == -32603 and err["message"] == "Internal error"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "app.py" not in r.text
    assert err["data"] == {"correlation_id": r.headers["x-correlation-id"]}


def test_notification_gets_no_body(agent: AgentEnv) -> None:
    r = agent.post(
        b'{"jsonrpc":"2.0","method":"echo","params":{"message":"n"}}', key=agent.admin_key
    )
    assert r.status_code == 204 and r.content == b""
    # ...but it was still executed and audited.
    rows = agent.audit_records(lambda a: a.method == "echo" and a.outcome == "ok")
    assert rows


def test_batch(agent: AgentEnv) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "echo", "params": {"message": "a"}, "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": {"message": "note"}},
        {"jsonrpc": "2.0", "method": "nope", "id": 2},
        1,
        {"jsonrpc": "2.0", "method": "echo", "params": {}, "id": 3},
    ]
    r = agent.post(json.dumps(batch).encode(), key=agent.admin_key)
    assert r.status_code == 200
    out = r.json()
    assert len(out) == 4  # the notification gets no entry
    assert out[0]["result"]["message"] == "a"
    assert out[1]["error"]["code"] == -32601 and out[1]["id"] == 2
    assert out[2]["error"]["code"] == -32600 and out[2]["id"] is None
    assert out[3]["error"]["code"] == -32602 and out[3]["id"] == 3


def test_batch_of_notifications_gets_no_body(agent: AgentEnv) -> None:
    batch = [{"jsonrpc": "2.0", "method": "echo", "params": {"message": "x"}}] * 2
    r = agent.post(json.dumps(batch).encode(), key=agent.admin_key)
    assert r.status_code == 204 and r.content == b""


def test_empty_and_oversized_batches(agent: AgentEnv) -> None:
    r = agent.post(b"[]", key=agent.admin_key)
    assert _err(r)["code"] == -32600
    one = {"jsonrpc": "2.0", "method": "echo", "params": {"message": "x"}, "id": 1}
    limit = agent.settings.server.max_batch
    r = agent.post(json.dumps([one] * (limit + 1)).encode(), key=agent.admin_key)
    assert _err(r)["code"] == -32600
    r = agent.post(json.dumps([one] * limit).encode(), key=agent.admin_key)
    assert len(r.json()) == limit


def test_oversized_body_is_413(agent: AgentEnv) -> None:
    big = json.dumps(
        {"jsonrpc": "2.0", "method": "echo", "params": {"message": "x" * (1024 * 1024)}, "id": 1}
    )
    r = agent.post(big.encode(), key=agent.admin_key)
    assert r.status_code == 413 and _err(r)["code"] == -32043

    # Chunked upload without Content-Length is cut off while reading.
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    r2 = httpx.post(
        agent.url + "/message", content=chunks(), headers={"X-API-Key": agent.admin_key}
    )
    assert r2.status_code == 413
    rows = agent.audit_records(lambda a: a.outcome == "denied:size_limit", at_least=2)
    assert len(rows) >= 2


def test_get_is_not_allowed(agent: AgentEnv) -> None:
    r = httpx.get(agent.url + "/message", headers={"X-API-Key": agent.admin_key})
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_correlation_id_accepted_echoed_and_audited(agent: AgentEnv) -> None:
    cid = "order-1234-abcd"
    r = agent.rpc("echo", {"message": "c"}, key=agent.admin_key, headers={"X-Correlation-ID": cid})
    assert r.headers["x-correlation-id"] == cid
    rows = agent.audit_records(lambda a: a.correlation_id == cid)
    assert rows and rows[0].principal == "admin"

    bad = "bad id with spaces <script>"
    r = agent.rpc("echo", {"message": "c"}, key=agent.admin_key, headers={"X-Correlation-ID": bad})
    assert r.headers["x-correlation-id"] != bad
    assert len(r.headers["x-correlation-id"]) >= 16

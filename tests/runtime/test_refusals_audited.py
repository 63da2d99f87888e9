"""Every way an agent's `/message` refuses or fails a request leaves exactly one audit record.

One agent serves all the cases (a module fixture); each request carries its own correlation ID.
"Exactly one" is checked after a later request's record has arrived: records are written before
the answer is sent and the writer keeps their order, so a second record of the same request
would be there by then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.agents.echo import echo_definition
from bastion.config import Settings
from bastion.storage.models import AuditRecord
from tests.runtime.conftest import AgentEnv, make_env

MAX_BODY = 4096
POLICY = {"allow": {"admin": ["*"], "flooder": ["*"], "monitoring": ["get_status"]}}


def _configure(settings: Settings) -> None:
    settings.audit.writer = "in_process"
    settings.server.max_body_bytes = MAX_BODY
    settings.rate_limit.principals["flooder"] = "1/minute"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentEnv]:
    """The echo agent plus a method whose handler fails."""
    definition = echo_definition()

    @definition.registry.method("fail")
    async def fail() -> dict[str, str]:
        raise RuntimeError("the handler broke")

    for env in make_env(tmp_path_factory.mktemp("refusals"), _configure, definition):
        env.set_policy(POLICY)
        yield env


def only_record(env: AgentEnv, cid: str) -> AuditRecord:
    """The one audit record of `cid` (see the module docstring)."""
    marker = f"{cid}-next"
    env.rpc("get_status", key=env.admin_key, headers={"X-Correlation-ID": marker})
    assert env.audit_records(lambda a: a.correlation_id == marker)
    rows = env.audit_records(lambda a: a.correlation_id == cid)
    assert len(rows) == 1, [(r.method, r.outcome) for r in rows]
    return rows[0]


def _forged_jwt() -> str:
    claims = {"iss": "bastion", "aud": "bastion", "sub": "admin", "exp": int(time.time()) + 60}
    return pyjwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")


def _rate_limited(env: AgentEnv, cid: str) -> httpx.Response:
    flooder = env.key("flooder")
    assert env.rpc("get_status", key=flooder).status_code == 200
    return env.rpc("get_status", key=flooder, headers={"X-Correlation-ID": cid})


Send = Callable[[AgentEnv, str], httpx.Response]

CASES: dict[str, tuple[Send, int, str]] = {
    "bad key": (
        lambda env, cid: env.rpc(
            "echo", {"message": "x"}, key="bst_aaaaaaaaaaaa_" + "0" * 64,
            headers={"X-Correlation-ID": cid},
        ),
        401, "denied:authenticate",
    ),
    "forged jwt": (
        lambda env, cid: env.rpc(
            "echo", {"message": "x"},
            headers={"Authorization": f"Bearer {_forged_jwt()}", "X-Correlation-ID": cid},
        ),
        401, "denied:authenticate",
    ),
    "forbidden method": (
        lambda env, cid: env.rpc(
            "echo", {"message": "x"}, key=env.key("monitoring"), headers={"X-Correlation-ID": cid}
        ),
        403, "denied:authorize",
    ),
    "rate limit": (_rate_limited, 429, "denied:rate_limit"),
    "oversized": (
        lambda env, cid: env.post(
            b'{"jsonrpc": "2.0", "method": "echo", "id": 1, "params": {"message": "'
            + b"x" * MAX_BODY + b'"}}',
            key=env.admin_key, headers={"X-Correlation-ID": cid},
        ),
        413, "denied:size_limit",
    ),
    "malformed json-rpc after auth": (
        lambda env, cid: env.post(
            b"{not json", key=env.admin_key, headers={"X-Correlation-ID": cid}
        ),
        200, "error:-32700",
    ),
    "invalid params": (
        lambda env, cid: env.rpc(
            "echo", {"wrong": 1}, key=env.admin_key, headers={"X-Correlation-ID": cid}
        ),
        200, "error:-32602",
    ),
    "handler error": (
        lambda env, cid: env.rpc("fail", key=env.admin_key, headers={"X-Correlation-ID": cid}),
        200, "error:-32603",
    ),
    "not a POST": (
        lambda env, cid: httpx.get(
            env.url + "/message", headers={"X-API-Key": env.admin_key, "X-Correlation-ID": cid}
        ),
        405, "error:405",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_leaves_exactly_one_audit_record(agent: AgentEnv, case: str) -> None:
    send, status, outcome = CASES[case]
    cid = "refusal-" + case.replace(" ", "-")
    r = send(agent, cid)
    assert r.status_code == status
    record = only_record(agent, cid)
    assert (record.outcome, record.status) == (outcome, status)
    if outcome.startswith("denied:"):
        assert record.detail  # the reason, for operators


def test_each_call_of_a_batch_leaves_exactly_one_record(agent: AgentEnv) -> None:
    batch = (
        b'[{"jsonrpc": "2.0", "method": "get_status", "id": 1},'
        b' {"jsonrpc": "2.0", "method": "fail", "id": 2},'
        b' {"jsonrpc": "2.0", "method": "echo", "params": {"message": "x"}, "id": 3}]'
    )
    cid = "refusal-batch"
    monitoring = agent.key("monitoring")
    assert agent.post(batch, key=monitoring, headers={"X-Correlation-ID": cid}).status_code == 200
    agent.rpc("get_status", key=agent.admin_key, headers={"X-Correlation-ID": "batch-next"})
    assert agent.audit_records(lambda a: a.correlation_id == "batch-next")
    rows = agent.audit_records(lambda a: a.correlation_id == cid, at_least=3)
    assert sorted((r.method, r.outcome) for r in rows) == [
        ("echo", "denied:authorize"),
        ("fail", "denied:authorize"),
        ("get_status", "ok"),
    ]


def test_rate_limit_store_down_leaves_exactly_one_record(tmp_path: Path) -> None:
    def dead_store(settings: Settings) -> None:
        _configure(settings)
        settings.rate_limit.backend = "redis"
        settings.rate_limit.redis_url = "redis://127.0.0.1:1/0"

    for env in make_env(tmp_path, dead_store):
        cid = "refusal-store-down"
        r = env.rpc("echo", {"message": "x"}, key=env.admin_key, headers={"X-Correlation-ID": cid})
        assert r.status_code == 503
        record = only_record(env, cid)
        assert (record.outcome, record.status) == ("denied:rate_limit", 503)

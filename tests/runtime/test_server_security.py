"""Attack tests over real HTTP: every rejection path of the zero-trust pipeline, audited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.config import Settings
from tests.runtime.conftest import AgentEnv, make_env

GENERIC_401 = {"code": -32040, "message": "Unauthenticated"}


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401
    assert r.json()["error"] == GENERIC_401  # never says which check failed
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "bst_aaaaaaaaaaaa_" + "0" * 64},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
    ],
)
def test_bad_credentials_are_401_and_audited(agent: AgentEnv, headers: dict[str, str]) -> None:
    cid = f"attack-{abs(hash(json.dumps(headers))):x}"
    r = agent.rpc("echo", {"message": "x"}, headers={**headers, "X-Correlation-ID": cid})
    _assert_401(r)
    rows = agent.audit_records(lambda a: a.correlation_id == cid)
    assert rows[0].outcome == "denied:authenticate" and rows[0].status == 401
    assert rows[0].detail  # the reason is recorded for operators, not sent to the caller


def test_wrong_secret_for_real_key_id(agent: AgentEnv) -> None:
    good = agent.admin_key
    forged = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    _assert_401(agent.rpc("echo", {"message": "x"}, key=forged))


def test_revoked_and_expired_keys(agent: AgentEnv) -> None:
    key = agent.key("admin")
    assert agent.rpc("echo", {"message": "x"}, key=key).status_code == 200
    from bastion.security.apikeys import parse_key_id
    from bastion.security.stack import build_api_key_store

    build_api_key_store(agent.settings).revoke(parse_key_id(key) or "")
    _assert_401(agent.rpc("echo", {"message": "x"}, key=key))

    expired = agent.key("admin", expires_at=time.time() - 1)
    _assert_401(agent.rpc("echo", {"message": "x"}, key=expired))


def test_both_credentials_at_once_is_rejected(agent: AgentEnv) -> None:
    r = agent.rpc(
        "echo", {"message": "x"}, key=agent.admin_key, headers={"Authorization": "Bearer abc"}
    )
    _assert_401(r)


def test_unauthenticated_caller_learns_nothing_from_the_parser(agent: AgentEnv) -> None:
    _assert_401(agent.post(b"{not json"))
    _assert_401(agent.post(b"[]"))


def test_key_of_another_principal_and_forbidden_method(agent: AgentEnv) -> None:
    agent.set_policy({"allow": {"admin": ["*"], "monitoring": ["get_status"]}})
    mon = agent.key("monitoring")
    assert agent.rpc("get_status", key=mon).status_code == 200
    r = agent.rpc("echo", {"message": "x"}, key=mon, headers={"X-Correlation-ID": "forbid-0001"})
    assert r.status_code == 403
    assert r.json()["error"] == {"code": -32041, "message": "Forbidden"}
    rows = agent.audit_records(lambda a: a.correlation_id == "forbid-0001")
    assert rows[0].outcome == "denied:authorize" and rows[0].principal == "monitoring"


def test_unknown_method_is_403_for_those_without_a_grant(agent: AgentEnv) -> None:
    agent.set_policy({"allow": {"admin": ["*"], "monitoring": ["get_status"]}})
    mon = agent.key("monitoring")
    assert agent.rpc("no_such_method", key=mon).status_code == 403
    assert agent.rpc("no_such_method", key=agent.admin_key).json()["error"]["code"] == -32601


def test_policy_change_needs_no_restart(agent: AgentEnv) -> None:
    bob = agent.key("bob")
    agent.set_policy({"allow": {"admin": ["*"]}})
    assert agent.rpc("echo", {"message": "x"}, key=bob).status_code == 403
    agent.set_policy({"allow": {"admin": ["*"], "bob": ["echo.echo"]}})
    time.sleep(0.02)
    assert agent.rpc("echo", {"message": "x"}, key=bob).status_code == 200


def test_batch_authorizes_each_element(agent: AgentEnv) -> None:
    agent.set_policy({"allow": {"admin": ["*"], "monitoring": ["get_status"]}})
    mon = agent.key("monitoring")
    batch = [
        {"jsonrpc": "2.0", "method": "get_status", "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": {"message": "x"}, "id": 2},
    ]
    r = agent.post(
        json.dumps(batch).encode(), key=mon, headers={"X-Correlation-ID": "batch-authz-1"}
    )
    assert r.status_code == 200
    first, second = r.json()
    assert first["result"]["status"] == "ok"
    assert second["error"]["code"] == -32041
    outcomes = {
        a.outcome
        for a in agent.audit_records(lambda a: a.correlation_id == "batch-authz-1", at_least=2)
    }
    assert outcomes == {"ok", "denied:authorize"}


def test_jwt_from_the_token_service(agent: AgentEnv) -> None:
    tok = httpx.post(agent.url + "/oauth/token", headers={"X-API-Key": agent.admin_key}).json()
    r = agent.rpc(
        "echo", {"message": "x"}, headers={"Authorization": f"Bearer {tok['access_token']}"}
    )
    assert r.status_code == 200
    rows = agent.audit_records(lambda a: a.auth_method == "jwt")
    assert rows[0].principal == "admin"


def test_forged_jwts_are_401(agent: AgentEnv) -> None:
    claims = {"iss": "bastion", "aud": "bastion", "sub": "admin", "exp": int(time.time()) + 60}
    none_alg = pyjwt.encode(claims, key="", algorithm="none")  # type: ignore[arg-type]
    other_key = pyjwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    tok = httpx.post(agent.url + "/oauth/token", headers={"X-API-Key": agent.admin_key}).json()
    head, payload, _sig = tok["access_token"].split(".")
    for bad in (none_alg, other_key, f"{head}.{payload}.", "x" * 9000):
        _assert_401(agent.rpc("echo", {"message": "x"}, headers={"Authorization": f"Bearer {bad}"}))


def test_token_endpoint_rejects_bad_keys(agent: AgentEnv) -> None:
    r = httpx.post(
        agent.url + "/oauth/token", headers={"X-API-Key": "bst_aaaaaaaaaaaa_" + "0" * 64}
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[AgentEnv]:
    def configure(s: Settings) -> None:
        s.rate_limit.default = "5/minute"

    yield from make_env(tmp_path, configure)


def test_rate_limit_boundary_over_http(limited: AgentEnv) -> None:
    remaining = []
    for _ in range(5):
        r = limited.rpc("echo", {"message": "x"}, key=limited.admin_key)
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"default";q=5;w=60'
        remaining.append(r.json()["result"]["metadata"]["rateLimit"]["remaining"])
    assert remaining == [4, 3, 2, 1, 0]
    r = limited.rpc(
        "echo", {"message": "x"}, key=limited.admin_key, headers={"X-Correlation-ID": "flood-00001"}
    )
    assert r.status_code == 429
    assert r.json()["error"] == {"code": -32042, "message": "Rate limited"}
    assert int(r.headers["retry-after"]) >= 1
    rows = limited.audit_records(lambda a: a.correlation_id == "flood-00001")
    assert rows[0].outcome == "denied:rate_limit"


@pytest.fixture
def dead_redis(tmp_path: Path) -> Iterator[AgentEnv]:
    def configure(s: Settings) -> None:
        s.rate_limit.backend = "redis"
        s.rate_limit.redis_url = "redis://127.0.0.1:1/0"

    yield from make_env(tmp_path, configure)


def test_redis_down_fails_closed_over_http(dead_redis: AgentEnv) -> None:
    r = dead_redis.rpc("echo", {"message": "x"}, key=dead_redis.admin_key)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == -32045
    ready = httpx.get(dead_redis.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("unavailable")

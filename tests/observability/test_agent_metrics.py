"""`GET /metrics` on an agent over real HTTP: authenticated and authorized as `<agent>.metrics`,
the Prometheus text format, counters that move with calls, denials and rate-limit hits, the
token-service and A2A routes counted, and label values an attacker cannot make up."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.agents.echo import echo_definition
from bastion.config import Settings
from bastion.edge.engine import GROUPS
from bastion.runtime.agent import HTTP_LABELS, AgentApp
from bastion.security.token_service import JWKS_PATH, TOKEN_PATH
from bastion.testing import serve_in_thread
from tests.observability.scrape import Scrape, scrape
from tests.runtime.conftest import AgentEnv, make_env

AGENT = "echo"
A2A_V1 = {"A2A-Version": "1.0"}


def limited(settings: Settings) -> None:
    settings.rate_limit.principals["bob"] = "2/minute"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentEnv]:
    """The echo agent with the policy `bastion init` writes (`monitoring` may read metrics),
    plus `bob` allowed only `echo` (two calls a minute)."""
    for env in make_env(tmp_path, limited):
        policy_path = env.settings.path(env.settings.policy.file)
        policy = json.loads(policy_path.read_text())
        policy["allow"]["bob"] = ["echo"]
        env.set_policy(policy)
        yield env


def monitor(env: AgentEnv) -> Scrape:
    return scrape(env.url, {"X-API-Key": env.key("monitoring")})


def metrics_status(env: AgentEnv, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(env.url + "/metrics", headers=headers, timeout=10)


def token_for(env: AgentEnv, principal: str, key: str) -> str:
    """A bearer token as Prometheus's `oauth2` client gets one: client credentials, Basic."""
    r = httpx.post(
        env.url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=(principal, key),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def test_metrics_refuse_callers_without_a_credential_for_them(agent: AgentEnv) -> None:
    anonymous = metrics_status(agent, {})
    assert anonymous.status_code == 401 and "bastion_" not in anonymous.text
    assert "WWW-Authenticate" in anonymous.headers
    assert metrics_status(agent, {"X-API-Key": "bst_nope"}).status_code == 401
    assert metrics_status(agent, {"Authorization": "Bearer not.a.jwt"}).status_code == 401
    bob = metrics_status(agent, {"X-API-Key": agent.key("bob")})
    assert bob.status_code == 403 and "bastion_" not in bob.text
    stranger = metrics_status(agent, {"X-API-Key": agent.key("stranger")})
    assert stranger.status_code == 403


def test_monitoring_and_admin_scrape_with_a_key_or_a_bearer_token(agent: AgentEnv) -> None:
    monitoring = agent.key("monitoring")
    by_key = scrape(agent.url, {"X-API-Key": monitoring})
    # A scrape is counted once answered: the next one shows it.
    token = token_for(agent, "monitoring", monitoring)
    bearer = {"Authorization": f"Bearer {token}"}
    by_token = scrape(agent.url, bearer)
    scrapes = {"agent": AGENT, "method": "metrics", "outcome": "ok"}
    assert by_token.since(by_key, "bastion_requests_total", **scrapes) == 1
    scrape(agent.url, {"X-API-Key": agent.admin_key})
    rows = agent.audit_records(lambda a: a.method == "metrics" and a.principal == "monitoring")
    assert rows and rows[0].outcome == "ok" and rows[0].agent == AGENT


def test_counters_move_with_calls_denials_and_rate_limit_hits(agent: AgentEnv) -> None:
    bob = agent.key("bob")
    before = monitor(agent)
    assert agent.rpc("get_status", key=bob).status_code == 403
    assert agent.rpc("echo", {"message": "a"}, key="bst_wrong").status_code == 401
    assert agent.rpc("echo", {"message": "a"}, key=bob).status_code == 200
    assert agent.rpc("echo", {"message": "b"}, key=bob).status_code == 200
    assert agent.rpc("echo", {"message": "c"}, key=bob).status_code == 429
    after = monitor(agent)

    def delta(name: str, **labels: str) -> float:
        return after.since(before, name, **labels)

    requests = "bastion_requests_total"
    assert delta(requests, agent=AGENT, method="echo", outcome="ok") == 2
    assert delta(requests, agent=AGENT, method="echo", outcome="denied:rate_limit") == 1
    assert delta(requests, agent=AGENT, method="echo", outcome="denied:authenticate") == 1
    assert delta(requests, agent=AGENT, method="get_status", outcome="denied:authorize") == 1
    assert delta("bastion_denials_total", agent=AGENT, stage="authorize") == 1
    assert delta("bastion_denials_total", agent=AGENT, stage="authenticate") == 1
    assert delta("bastion_denials_total", agent=AGENT, stage="rate_limit") == 1
    assert delta("bastion_auth_failures_total", agent=AGENT) == 1
    assert delta("bastion_rate_limit_hits_total", agent=AGENT) == 1
    # The histogram: every bucket, +Inf included, and a count of each answered echo call.
    duration = "bastion_request_duration_seconds"
    assert delta(f"{duration}_count", agent=AGENT, method="echo") == 4
    for le in ("0.001", "0.1", "1.0", "30.0", "+Inf"):
        assert after.has(f"{duration}_bucket", agent=AGENT, method="echo", le=le)
    assert after.value(f"{duration}_bucket", agent=AGENT, method="echo", le="+Inf") == (
        after.value(f"{duration}_count", agent=AGENT, method="echo")
    )


def test_a2a_calls_and_the_token_service_routes_are_counted(agent: AgentEnv) -> None:
    before = monitor(agent)
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}
    sent = agent.rpc("SendMessage", {"message": message}, key=agent.admin_key, headers=A2A_V1)
    assert sent.status_code == 200 and "result" in sent.json()
    bad = {"grant_type": "client_credentials", "client_secret": "bst_wrong"}
    assert httpx.post(agent.url + TOKEN_PATH, data=bad, timeout=10).status_code == 401
    token_for(agent, "admin", agent.admin_key)
    assert httpx.get(agent.url + JWKS_PATH, timeout=10).status_code == 200
    after = monitor(agent)

    def delta(method: str, outcome: str) -> float:
        labels = {"agent": AGENT, "method": method, "outcome": outcome}
        return after.since(before, "bastion_requests_total", **labels)

    assert delta("SendMessage", "ok") == 1
    assert delta(HTTP_LABELS[TOKEN_PATH], "denied:authenticate") == 1
    assert delta(HTTP_LABELS[TOKEN_PATH], "ok") == 1
    assert delta(HTTP_LABELS[JWKS_PATH], "ok") == 1
    assert after.since(before, "bastion_auth_failures_total", agent=AGENT) == 1


def test_made_up_method_names_do_not_create_label_values(agent: AgentEnv) -> None:
    marker = f"evil{uuid.uuid4().hex[:12]}"
    before = monitor(agent)
    assert agent.rpc(f"{marker}-anon").status_code == 401
    assert agent.rpc(f"{marker}-admin", key=agent.admin_key).json()["error"]["code"] == -32601
    calls = [{"jsonrpc": "2.0", "method": f"{marker}-{i}", "id": i} for i in range(5)]
    batch = json.dumps(calls).encode()
    assert agent.post(batch, key=agent.admin_key).status_code == 200
    assert agent.post(batch).status_code == 401
    httpx.get(agent.url + f"/metrics/{marker}", timeout=10)
    httpx.get(agent.url + f"/{marker}", headers={"X-API-Key": agent.admin_key}, timeout=10)
    after = monitor(agent)
    text_labels = after.label_values("method") | after.label_values("outcome")
    assert not any(marker in value for value in text_labels)
    # The label values these requests counted in (other tests may have counted methods of their
    # own on an agent of the same name in this process).
    requests = after.samples["bastion_requests_total"]
    counted = [
        key
        for key, n in requests.items()
        if n != before.samples.get("bastion_requests_total", {}).get(key)
    ]
    methods = {
        value
        for key in counted
        for name, value in key
        if name == "method" and ("agent", AGENT) in key
    }
    allowed = set(agent.app.definition.registry.names()) | set(HTTP_LABELS.values())
    waf_refusals = {f"waf.{group}" for group in GROUPS}  # one label per WAF rule group
    assert methods <= allowed | waf_refusals | {"metrics", "unknown"}
    unknown = {"agent": AGENT, "method": "unknown", "outcome": "error:-32601"}
    # The single call and the five of the batch.
    assert after.since(before, "bastion_requests_total", **unknown) == 6


def test_an_agent_without_its_security_stack_serves_no_metrics(agent: AgentEnv) -> None:
    bare = AgentApp(echo_definition(), agent.settings, security=False)
    with serve_in_thread(bare) as srv:
        r = httpx.get(srv.url + "/metrics", headers={"X-API-Key": agent.admin_key}, timeout=10)
    assert r.status_code == 404

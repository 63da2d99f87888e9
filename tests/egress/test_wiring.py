"""Every outbound client an agent has goes through the egress perimeter: agent clients (bound to
the peers the configuration names), JWKS fetches (bound to the issuer's URL) and an agent's
general outbound client (its `agents.<name>.egress` policy). A source scan keeps other HTTP
clients out of agent code."""

from __future__ import annotations

import ast
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

import bastion.egress.transport as egress_transport
from bastion.config import AgentEndpoint, Settings
from bastion.core.audit_entry import AuditEntry
from bastion.egress import EgressDenied, EgressPolicy, check_address, origin_policy
from bastion.egress.policy import check_url
from bastion.runtime.client import AgentClient
from bastion.runtime.outbound import agent_egress_policy, outbound_client
from bastion.security.jwks import JwksCache, JwksError
from tests.egress.conftest import Recorder

SRC = Path(__file__).resolve().parents[2] / "src"


# --- the origin policy ------------------------------------------------------------------------


def test_origin_policy_allows_exactly_the_named_origins() -> None:
    policy = origin_policy("http://127.0.0.1:8101", "https://auth.example.com/oauth/token")
    assert check_url(policy, "http://127.0.0.1:8101/message").port == 8101
    assert check_url(policy, "https://auth.example.com/.well-known/jwks.json").host
    for url in (
        "http://127.0.0.1:5432/",  # the same loopback host, another port
        "https://auth.example.com:8443/",
        "http://auth.example.com/",  # the same host, another scheme and port
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9000/",
        "https://api.example.org/",
    ):
        with pytest.raises(EgressDenied):
            check_url(policy, url)
    assert policy.max_redirects == 0


def test_origin_policy_refuses_what_is_not_an_http_origin() -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/", "http:///path"):
        with pytest.raises(ValueError, match="not an http"):
            origin_policy(url)


def test_a_named_host_may_not_resolve_to_cloud_metadata() -> None:
    """Allowing a peer's name allows its private addresses, never a metadata address."""
    policy = origin_policy("http://extractor.internal:8102")
    target = check_url(policy, "http://extractor.internal:8102/message")
    check_address(policy, target, ip_address("10.0.0.7"))
    with pytest.raises(EgressDenied, match="metadata"):
        check_address(policy, target, ip_address("169.254.169.254"))
    explicit = EgressPolicy(
        allowed_hosts=("extractor.internal",), allow_private=("169.254.0.0/16",)
    )
    check_address(explicit, target, ip_address("169.254.169.254"))


# --- agent clients ----------------------------------------------------------------------------


async def test_an_agent_client_reaches_its_peer_through_the_perimeter(server: Recorder) -> None:
    client = AgentClient(server.url, use_tokens=False, principal="orchestrator")
    try:
        transport = client._http._transport
        assert isinstance(transport, egress_transport.AsyncEgressTransport)
        resp = await client._http.get(server.url + "/healthz")
        assert resp.status_code == 200
        with pytest.raises(EgressDenied, match="not on the allow-list"):
            await client._http.get(f"http://127.0.0.1:{server.port + 1}/")
    finally:
        await client.aclose()


async def test_an_agent_client_refused_by_its_policy_raises_and_is_audited(
    server: Recorder,
) -> None:
    entries: list[AuditEntry] = []

    async def record(entry: AuditEntry) -> None:
        entries.append(entry)

    client = AgentClient(
        server.url, use_tokens=False, egress=EgressPolicy(), principal="gateway", audit=record
    )
    try:
        with pytest.raises(EgressDenied, match=r"127\.0\.0\.1 is a loopback"):
            await client.call("echo", {"message": "x"})
    finally:
        await client.aclose()
    assert server.seen == []  # nothing left the client
    (entry,) = entries
    assert entry.principal == "gateway"
    assert entry.outcome == "denied:egress"


async def test_a_peer_name_rebound_to_metadata_is_refused(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding against an agent client: its peer's name now answers 169.254.169.254."""
    monkeypatch.setattr(egress_transport, "system_resolver", _resolving_to("169.254.169.254"))
    client = AgentClient(f"http://peer.internal:{server.port}", use_tokens=False)
    try:
        with pytest.raises(EgressDenied, match="metadata"):
            await client.call("echo", {"message": "x"})
    finally:
        await client.aclose()
    assert server.seen == []


# --- JWKS fetches -------------------------------------------------------------------------------


async def test_a_jwks_fetch_goes_through_the_perimeter(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer's JWKS host resolves (rebinds) to cloud metadata: the fetch never leaves."""
    monkeypatch.setattr(egress_transport, "system_resolver", _resolving_to("169.254.169.254"))
    cache = JwksCache(f"http://localhost:{server.port}/jwks.json", name="corp")
    with pytest.raises(JwksError, match="EgressDenied"):
        await cache._read()
    assert server.seen == []


async def test_a_jwks_fetch_reaches_its_configured_url(server: Recorder) -> None:
    cache = JwksCache(f"http://127.0.0.1:{server.port}/jwks.json", name="corp")
    assert await cache._read() == b"ok"  # the recorder's answer: reached through the perimeter
    assert [s.path for s in server.seen] == ["/jwks.json"]


# --- an agent's general outbound client ------------------------------------------------------


def _settings(egress: dict[str, Any] | None = None) -> Settings:
    endpoint: dict[str, Any] = {"url": "http://127.0.0.1:8120"}
    if egress is not None:
        endpoint["egress"] = egress
    return Settings(agents={"researcher": AgentEndpoint.model_validate(endpoint)})


def test_an_agent_without_an_egress_policy_may_reach_nothing() -> None:
    assert agent_egress_policy(_settings(), "researcher") == EgressPolicy()
    assert agent_egress_policy(_settings(), "unknown") == EgressPolicy()


async def test_outbound_client_enforces_the_agents_configured_allow_list(
    server: Recorder, other_server: Recorder
) -> None:
    allowed = f"127.0.0.1:{server.port}"
    settings = _settings({"allowed_hosts": [allowed], "allow_private": ["127.0.0.1"]})
    entries: list[AuditEntry] = []
    async with outbound_client(settings, "researcher", audit=entries.append) as http:
        assert (await http.get(server.url + "/page")).status_code == 200
        for url in (
            other_server.url + "/page",  # loopback allowed, but not on the allow-list
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706433/",  # 127.0.0.1 in decimal
            "http://0x7f.1/",  # 127.0.0.1 in hexadecimal, short form
            "http://[::ffff:127.0.0.1]/",
        ):
            with pytest.raises(EgressDenied):
                await http.get(url)
        with pytest.raises(EgressDenied):  # a redirect to an address it may not reach
            await http.get(server.url + "/r?to=http://169.254.169.254/")
    assert other_server.seen == []
    assert len(entries) == 6
    assert {e.principal for e in entries} == {"researcher"}


def test_a_bad_egress_policy_in_the_configuration_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="only http and https"):
        _settings({"schemes": ["ftp"]})


# --- no other HTTP clients in agent code -----------------------------------------------------

# Modules that may build an httpx client without the perimeter: the perimeter itself, and
# programs that are not agents (the command line, the demo driver, the supervisor's health
# checks of the processes it started). `AgentClient` builds one only around a transport given
# to it (in-process, no network).
_NOT_AGENT_CODE = ("bastion/egress/", "bastion/cli/", "bastion/demos/", "bastion/testing/")
_MAY_BUILD = {"bastion/runtime/supervisor.py", "bastion/runtime/client.py"}


def _client_constructions(source: str) -> list[tuple[int, bool]]:
    """(line, passes transport=) of every `httpx.Client(...)`/`httpx.AsyncClient(...)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("Client", "AsyncClient")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "httpx"
        ):
            found.append((node.lineno, any(k.arg == "transport" for k in node.keywords)))
    return found


def test_agent_code_builds_no_http_client_outside_the_perimeter() -> None:
    offenders = []
    for path in sorted((SRC / "bastion").rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(_NOT_AGENT_CODE):
            continue
        for line, with_transport in _client_constructions(path.read_text(encoding="utf-8")):
            if rel in _MAY_BUILD and (with_transport or rel != "bastion/runtime/client.py"):
                continue
            offenders.append(f"{rel}:{line}")
    assert offenders == [], "build outbound clients with bastion.egress: " + ", ".join(offenders)


def test_the_scan_sees_a_bare_client() -> None:
    assert _client_constructions("import httpx\nc = httpx.AsyncClient(timeout=3)\n") == [(2, False)]


def _resolving_to(address: str) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        return [address]

    return resolve

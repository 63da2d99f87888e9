"""Egress clients against real servers on 127.0.0.1: allowed requests, redirects re-checked hop
by hop, DNS pinning against rebinding, model purpose, auditing and the client options."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog

from bastion.core.audit_entry import AuditEntry
from bastion.egress import (
    EgressDenied,
    EgressPolicy,
    Purpose,
    Rule,
    egress_client,
    egress_sync_client,
    system_resolver,
)
from tests.egress.conftest import Recorder, TableResolver

LOOPBACK = ("127.0.0.1",)


def local(server: Recorder, *more: str, **fields: object) -> EgressPolicy:
    """A policy that allows `server` (on loopback) and the hosts in `more`."""
    values: dict[str, object] = {
        "allowed_hosts": (f"127.0.0.1:{server.port}", *more),
        "allow_private": LOOPBACK,
    }
    values.update(fields)
    return EgressPolicy.model_validate(values)


async def refused(client: httpx.AsyncClient, url: str) -> EgressDenied:
    with pytest.raises(EgressDenied) as caught:
        await client.get(url)
    return caught.value


# --- allowed and denied ---------------------------------------------------------------------


async def test_an_allowed_host_is_reachable(server: Recorder) -> None:
    async with egress_client(local(server)) as http:
        response = await http.get(f"{server.url}/hello?x=1")
    assert (response.status_code, response.text) == (200, "ok")
    assert server.seen[-1].path == "/hello"


async def test_loopback_is_denied_without_allow_private(server: Recorder) -> None:
    policy = EgressPolicy(allowed_hosts=(f"127.0.0.1:{server.port}",))
    async with egress_client(policy) as http:
        error = await refused(http, f"{server.url}/")
    assert error.rule is Rule.ADDRESS
    assert server.seen == []


async def test_a_host_off_the_allow_list_is_denied(
    server: Recorder, other_server: Recorder
) -> None:
    async with egress_client(local(server)) as http:
        error = await refused(http, f"{other_server.url}/")
    assert error.rule is Rule.NOT_ALLOWED
    assert other_server.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
    ],
)
async def test_disguised_loopback_and_metadata_are_denied(url: str) -> None:
    policy = EgressPolicy(allowed_hosts=("*.example.com",))
    async with egress_client(policy) as http:
        error = await refused(http, url)
    assert error.rule is Rule.ADDRESS


async def test_octal_host_never_leaves_the_client() -> None:
    # httpx itself rejects octal IPv4 parts; `check_url` reads them (see test_policy).
    async with egress_client(EgressPolicy()) as http:
        with pytest.raises((EgressDenied, httpx.InvalidURL)):
            await http.get("http://0177.0.0.1/")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x:70/"])
async def test_other_schemes_are_denied(url: str) -> None:
    async with egress_client(EgressPolicy(allowed_hosts=("x", "example.com"))) as http:
        error = await refused(http, url)
    assert error.rule is Rule.SCHEME


# --- redirects ------------------------------------------------------------------------------


async def test_an_allowed_redirect_is_followed(server: Recorder) -> None:
    async with egress_client(local(server)) as http:
        response = await http.get(f"{server.url}/start?to={server.url}/end")
    assert response.text == "ok"
    assert [s.path for s in server.seen] == ["/start", "/end"]


async def test_a_redirect_to_cloud_metadata_is_refused(server: Recorder) -> None:
    async with egress_client(local(server)) as http:
        error = await refused(
            http, f"{server.url}/start?to=http://169.254.169.254/latest/meta-data/"
        )
    assert error.rule is Rule.ADDRESS
    assert "cloud metadata" in str(error)


async def test_a_redirect_to_a_host_off_the_list_never_happens(
    server: Recorder, other_server: Recorder
) -> None:
    async with egress_client(local(server)) as http:
        error = await refused(http, f"{server.url}/start?to={other_server.url}/second")
    assert error.rule is Rule.NOT_ALLOWED
    assert [s.path for s in server.seen] == ["/start"]
    assert other_server.seen == []


async def test_redirects_stop_at_the_hop_limit(server: Recorder) -> None:
    loop = f"{server.url}/loop"
    async with egress_client(local(server, max_redirects=2)) as http:
        with pytest.raises(httpx.TooManyRedirects):
            await http.get(loop)
    assert len(server.seen) == 3


# --- DNS ------------------------------------------------------------------------------------


async def test_dns_is_resolved_once_and_the_connection_pinned(server: Recorder) -> None:
    # "svc.test" first resolves to an allowed address (the local server stands in for a public
    # one), then rebinds to a private one.
    resolver = TableResolver({"svc.test": [["127.0.0.1"], ["10.9.9.9"]]})
    policy = EgressPolicy(allowed_hosts=("svc.test",), allow_private=LOOPBACK)
    async with egress_client(policy, resolver=resolver) as http:
        response = await http.get(f"http://svc.test:{server.port}/one")
        assert resolver.calls == [("svc.test", server.port)]
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
        assert server.seen[-1].host == f"svc.test:{server.port}"
        assert response.url == f"http://svc.test:{server.port}/one"
        # The next request resolves again and is checked again: the rebound answer is refused,
        # although a pooled connection to the first address is open.
        error = await refused(http, f"http://svc.test:{server.port}/two")
    assert error.rule is Rule.ADDRESS
    assert "10.9.9.9 is a private address (svc.test resolves to it)" in str(error)
    assert len(resolver.calls) == 2
    assert [s.path for s in server.seen] == ["/one"]


async def test_every_resolved_address_is_checked(server: Recorder) -> None:
    resolver = TableResolver({"svc.test": [["127.0.0.1", "169.254.169.254"]]})
    policy = EgressPolicy(allowed_hosts=("svc.test",), allow_private=LOOPBACK)
    async with egress_client(policy, resolver=resolver) as http:
        error = await refused(http, f"http://svc.test:{server.port}/")
    assert "169.254.169.254 is a cloud metadata address" in str(error)
    assert server.seen == []


async def test_a_later_address_is_tried_when_the_first_refuses(server: Recorder) -> None:
    resolver = TableResolver({"svc.test": [["127.0.0.2", "127.0.0.1"]]})
    policy = EgressPolicy(allowed_hosts=("svc.test",), allow_private=("127.0.0.0/8",))
    async with egress_client(policy, resolver=resolver) as http:
        # The server listens on 127.0.0.1 only: connecting to 127.0.0.2 is refused.
        response = await http.get(f"http://svc.test:{server.port}/")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
    assert response.status_code == 200


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    policy = EgressPolicy(allowed_hosts=("nowhere.test",))
    async with egress_client(policy, resolver=TableResolver({})) as http:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
            await http.get("http://nowhere.test/")


def test_the_system_resolver_reads_numeric_hosts_without_dns() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


# --- model endpoints ------------------------------------------------------------------------


async def test_a_model_host_needs_a_model_client(server: Recorder) -> None:
    endpoint = f"127.0.0.1:{server.port}"
    policy = EgressPolicy(
        allowed_hosts=(endpoint,), model_hosts=(endpoint,), allow_private=LOOPBACK
    )
    async with egress_client(policy) as http:
        error = await refused(http, f"{server.url}/v1/models")
    assert error.rule is Rule.MODEL_HOST
    assert server.seen == []
    async with egress_client(policy, purpose=Purpose.MODEL) as http:  # as bastion.llm does
        assert (await http.get(f"{server.url}/v1/models")).status_code == 200


# --- audit and logs -------------------------------------------------------------------------


async def test_a_denial_is_audited_and_logged_without_the_query() -> None:
    entries: list[AuditEntry] = []
    policy = EgressPolicy(allowed_hosts=("*.example.com",))
    url = "http://169.254.169.254/latest/meta-data/iam?token=s3cr3t-t0ken"
    with structlog.testing.capture_logs() as logs:
        async with egress_client(policy, principal="researcher", audit=entries.append) as http:
            error = await refused(http, url)
    assert "s3cr3t-t0ken" not in str(error)
    (entry,) = entries
    assert (entry.method, entry.outcome, entry.principal) == (
        "egress.request",
        "denied:egress",
        "researcher",
    )
    assert entry.detail is not None
    assert "rule=address" in entry.detail
    assert "host=169.254.169.254" in entry.detail
    assert "/latest/meta-data/iam" in entry.detail
    assert "s3cr3t" not in entry.detail
    (line,) = [e for e in logs if e["event"] == "egress.denied"]
    assert line["log_level"] == "warning"
    assert line["rule"] == "address"
    assert "s3cr3t" not in repr(line)


async def test_an_async_audit_sink_is_awaited() -> None:
    entries: list[AuditEntry] = []

    async def record(entry: AuditEntry) -> None:
        entries.append(entry)

    async with egress_client(EgressPolicy(), audit=record) as http:
        await refused(http, "https://api.example.com/")
    assert [e.outcome for e in entries] == ["denied:egress"]


def test_allow_private_is_loud() -> None:
    with structlog.testing.capture_logs() as logs:
        egress_client(EgressPolicy(allow_private=("localhost",)))
    (line,) = [e for e in logs if e["event"] == "egress.private_allowed"]
    assert line["log_level"] == "warning"
    assert line["allow_private"] == ["localhost"]


# --- the client factory ---------------------------------------------------------------------


@pytest.mark.parametrize("option", ["transport", "mounts", "proxy", "app", "uds", "max_redirects"])
def test_options_that_bypass_the_transport_are_refused(option: str) -> None:
    with pytest.raises(TypeError, match=option):
        options: dict[str, Any] = {option: None}
        egress_client(EgressPolicy(), **options)


def test_sync_client_enforces_the_same_policy(server: Recorder, other_server: Recorder) -> None:
    entries: list[AuditEntry] = []
    with egress_sync_client(local(server), audit=entries.append) as http:
        assert http.get(f"{server.url}/sync").text == "ok"
        with pytest.raises(EgressDenied) as caught:
            http.get(f"{server.url}/start?to={other_server.url}/")
    assert caught.value.rule is Rule.NOT_ALLOWED
    assert other_server.seen == []
    assert len(entries) == 1

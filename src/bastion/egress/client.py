"""The outbound HTTP client factory: every agent's HTTP goes through a client built here.

    policy = EgressPolicy(allowed_hosts=["api.example.com", "*.example.org:8443"])
    async with egress_client(policy, principal="research-agent", audit=writer.record) as http:
        response = await http.get("https://api.example.com/v1/items")

The client follows redirects by default, at most `policy.max_redirects` hops, and httpx hands
every hop to the egress transport, which checks it like a new request before connecting.
Options that would route around the transport (`transport`, `mounts`, `proxy`, `app`, `uds`)
are refused; the hop limit is the policy's. Connection options (`verify`, `cert`, `http1`,
`http2`, `limits`, `trust_env`, ...) configure the underlying transports; everything else goes
to `httpx.AsyncClient` / `httpx.Client`.
"""

from __future__ import annotations

from typing import Any

import httpx

from bastion.egress.policy import EgressPolicy, Purpose
from bastion.egress.transport import (
    AsyncEgressTransport,
    AuditSink,
    EgressTransport,
    Resolver,
)

__all__ = ["egress_client", "egress_sync_client"]

_REFUSED = frozenset({"transport", "mounts", "proxy", "proxies", "app", "uds", "max_redirects"})
_TRANSPORT_OPTIONS = frozenset(
    {"verify", "cert", "http1", "http2", "limits", "retries", "local_address", "socket_options"}
)


def egress_client(
    policy: EgressPolicy,
    *,
    purpose: Purpose = Purpose.GENERAL,
    principal: str = "-",
    audit: AuditSink | None = None,
    resolver: Resolver | None = None,
    **httpx_options: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose every request, redirects included, `policy` must allow.
    `principal` names the caller in logs and audit entries; `audit` receives an `AuditEntry`
    per denied request (it may be async); `resolver` replaces `socket.getaddrinfo`."""
    client_options, transport_options = _split(httpx_options)
    transport = AsyncEgressTransport(
        policy,
        purpose=purpose,
        principal=principal,
        audit=audit,
        resolver=resolver,
        **transport_options,
    )
    return httpx.AsyncClient(
        transport=transport, max_redirects=policy.max_redirects, **client_options
    )


def egress_sync_client(
    policy: EgressPolicy,
    *,
    purpose: Purpose = Purpose.GENERAL,
    principal: str = "-",
    audit: AuditSink | None = None,
    resolver: Resolver | None = None,
    **httpx_options: Any,
) -> httpx.Client:
    """The synchronous `egress_client`; `audit` must be a synchronous sink."""
    client_options, transport_options = _split(httpx_options)
    transport = EgressTransport(
        policy,
        purpose=purpose,
        principal=principal,
        audit=audit,
        resolver=resolver,
        **transport_options,
    )
    return httpx.Client(transport=transport, max_redirects=policy.max_redirects, **client_options)


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client's options (following redirects unless told not to) and the transports'."""
    refused = sorted(_REFUSED & options.keys())
    if refused:
        raise TypeError(
            f"egress clients do not take {', '.join(refused)}: the egress transport must see "
            "every request (set the hop limit with EgressPolicy.max_redirects)"
        )
    client = {k: v for k, v in options.items() if k not in _TRANSPORT_OPTIONS}
    client.setdefault("follow_redirects", True)
    transport = {k: v for k, v in options.items() if k in _TRANSPORT_OPTIONS}
    if "trust_env" in options:
        transport["trust_env"] = options["trust_env"]
    return client, transport

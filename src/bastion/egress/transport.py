"""The httpx transports that enforce an `EgressPolicy` on every request, redirects included.

For each request (httpx sends every redirect hop through the transport as a new request):

1. `check_url` checks scheme, numeric host and allow-lists;
2. the host name is resolved once, by the pluggable resolver (`socket.getaddrinfo` by default,
   in a worker thread for the async transport), and every address it returns is checked;
3. the request is sent to a checked address (the next one when connecting to the first fails),
   by rewriting its URL to that IP while keeping the `Host` header and, for https, passing the
   host name as TLS SNI (httpcore's `sni_hostname` extension), which is also the name the
   certificate is verified against.

The connection therefore goes to an address that was checked: a name that resolves to a public
address for the check and to 127.0.0.1 a moment later (DNS rebinding) cannot redirect it.

HTTPS connections are pooled per host name, so a connection verified for one name is never
reused for another name served from the same address. Plain-http connections share one pool,
keyed by address.

A denied request raises `EgressDenied`, is logged (`egress.denied`, a warning) and, when the
transport has an audit sink, recorded as an `AuditEntry` (method `egress.request`, outcome
`denied:egress`, detail the rule, host and URL without its query). An async transport awaits a
sink that returns an awaitable (`AuditWriter.record`); a sync transport needs a sync sink
(`AuditWriter.record_nowait`).
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import httpx
import structlog

from bastion.core.audit_entry import AuditEntry, AuditSink
from bastion.egress.policy import (
    EgressDenied,
    EgressPolicy,
    IPAddress,
    Purpose,
    Target,
    check_address,
    check_url,
    parse_ip,
    split_port,
)

__all__ = [
    "AsyncEgressTransport",
    "AuditSink",
    "EgressTransport",
    "Resolver",
    "system_resolver",
]

log = structlog.get_logger("bastion.egress")

Resolver = Callable[[str, int], Sequence[str]]
"""Host name and port to the addresses to connect to, in preference order."""


AUDIT_METHOD = "egress.request"
AUDIT_OUTCOME = "denied:egress"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `socket.getaddrinfo` gives for `host`, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class _Pinned:
    """A request rewritten once per checked address, in the resolver's order, and the pool
    its connections belong to."""

    requests: tuple[httpx.Request, ...]
    pool: str


def _broad_private(policy: EgressPolicy) -> bool:
    """Whether `allow_private` reaches beyond the hosts the allow-lists name (a network, a
    wildcard, a host with no allowed port): worth a warning when a client is built."""
    named = {split_port(entry)[0] for entry in (*policy.allowed_hosts, *policy.model_hosts)}
    return any(entry not in named for entry in policy.allow_private)


class _Gate:
    """The policy checks, the rewrite to a checked address, and the reporting of denials;
    shared by the sync and the async transport."""

    def __init__(
        self,
        policy: EgressPolicy,
        purpose: Purpose,
        principal: str,
        audit: AuditSink | None,
        resolver: Resolver | None,
    ) -> None:
        self.policy = policy
        self.purpose = purpose
        self.principal = principal
        self.audit = audit
        self.resolver = resolver or system_resolver
        if _broad_private(policy):
            log.warning(
                "egress.private_allowed",
                principal=principal,
                purpose=str(purpose),
                allow_private=list(policy.allow_private),
            )

    def admit(self, request: httpx.Request) -> Target:
        """The request's target, after the checks that need no DNS."""
        try:
            return check_url(self.policy, request.url, self.purpose)
        except EgressDenied as denied:
            denied.request = request
            raise

    def pin(self, request: httpx.Request, target: Target, addresses: Sequence[str]) -> _Pinned:
        """Check every resolved address; the request rewritten to each of them."""
        checked = [_address(target, a, request) for a in addresses]
        if not checked:
            raise httpx.ConnectError(f"{target.host} resolved to no address", request=request)
        for address in checked:
            try:
                check_address(self.policy, target, address)
            except EgressDenied as denied:
                denied.request = request
                raise
        return _rewrite(request, target, checked)

    def report(self, denied: EgressDenied, started: float) -> object:
        """Log and audit a denial; returns what the audit sink returned."""
        log.warning(
            "egress.denied",
            rule=str(denied.rule),
            host=denied.host,
            url=denied.url,
            principal=self.principal,
            purpose=str(self.purpose),
        )
        if self.audit is None:
            return None
        return self.audit(self._entry(denied, started))

    def _entry(self, denied: EgressDenied, started: float) -> AuditEntry:
        return AuditEntry.for_event(
            principal=self.principal,
            agent=self.principal,
            method=AUDIT_METHOD,
            outcome=AUDIT_OUTCOME,
            started=started,
            detail=f"rule={denied.rule} host={denied.host} url={denied.url} purpose={self.purpose}",
            auth_method="none",
        )


def _unresolved(request: httpx.Request, target: Target, exc: OSError) -> httpx.ConnectError:
    return httpx.ConnectError(f"cannot resolve {target.host}: {exc}", request=request)


def _address(target: Target, address: str, request: httpx.Request) -> IPAddress:
    parsed = parse_ip(address.split("%")[0])
    if parsed is None:
        raise httpx.ConnectError(
            f"the resolver gave {address!r} for {target.host}, not an IP address",
            request=request,
        )
    return parsed


def _rewrite(request: httpx.Request, target: Target, addresses: Sequence[IPAddress]) -> _Pinned:
    """`request` sent to each of `addresses`: same Host header, the host name as TLS SNI."""
    headers = request.headers.copy()
    if "host" not in headers:
        headers["Host"] = request.url.netloc.decode("ascii")
    extensions = dict(request.extensions)
    pool = ""
    if target.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host
        pool = target.host
    requests = tuple(
        httpx.Request(
            request.method,
            request.url.copy_with(host=address.compressed),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        for address in addresses
    )
    return _Pinned(requests, pool)


class _Checking:
    """What both transports hold: the gate every request passes, and the options of the
    per-host connection pools."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        purpose: Purpose = Purpose.GENERAL,
        principal: str = "-",
        audit: AuditSink | None = None,
        resolver: Resolver | None = None,
        **transport_options: Any,
    ) -> None:
        self._gate = _Gate(policy, purpose, principal, audit, resolver)
        self._options = transport_options


class AsyncEgressTransport(_Checking, httpx.AsyncBaseTransport):
    """An async transport that sends only what `policy` allows, to checked addresses.
    `transport_options` go to each underlying `httpx.AsyncHTTPTransport` (verify, cert, http2,
    limits, ...)."""

    def __init__(self, policy: EgressPolicy, **options: Any) -> None:
        super().__init__(policy, **options)
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            pinned = await self._pin(request)
        except EgressDenied as denied:
            result = self._gate.report(denied, started)
            if inspect.isawaitable(result):
                await result
            raise
        pool = self._pool(pinned.pool)
        *others, last = pinned.requests
        for pinned_request in others:
            with contextlib.suppress(httpx.ConnectError):
                return await pool.handle_async_request(pinned_request)
        return await pool.handle_async_request(last)

    async def _pin(self, request: httpx.Request) -> _Pinned:
        target = self._gate.admit(request)
        if target.ip is not None:
            return self._gate.pin(request, target, [target.ip.compressed])
        try:
            addresses = await anyio.to_thread.run_sync(
                self._gate.resolver, target.host, target.port
            )
        except OSError as exc:
            raise _unresolved(request, target, exc) from exc
        return self._gate.pin(request, target, addresses)

    def _pool(self, key: str) -> httpx.AsyncHTTPTransport:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(**self._options)
        return pool

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


class EgressTransport(_Checking, httpx.BaseTransport):
    """The synchronous `AsyncEgressTransport`."""

    def __init__(self, policy: EgressPolicy, **options: Any) -> None:
        super().__init__(policy, **options)
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            pinned = self._pin(request)
        except EgressDenied as denied:
            result = self._gate.report(denied, started)
            if inspect.iscoroutine(result):
                result.close()
                log.error("egress.audit_sink_async", hint="use a sync sink with a sync client")
            raise
        pool = self._pool(pinned.pool)
        *others, last = pinned.requests
        for pinned_request in others:
            with contextlib.suppress(httpx.ConnectError):
                return pool.handle_request(pinned_request)
        return pool.handle_request(last)

    def _pin(self, request: httpx.Request) -> _Pinned:
        target = self._gate.admit(request)
        if target.ip is not None:
            return self._gate.pin(request, target, [target.ip.compressed])
        try:
            addresses = self._gate.resolver(target.host, target.port)
        except OSError as exc:
            raise _unresolved(request, target, exc) from exc
        return self._gate.pin(request, target, addresses)

    def _pool(self, key: str) -> httpx.HTTPTransport:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = httpx.HTTPTransport(**self._options)
            return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

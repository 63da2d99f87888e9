"""Per-request state: correlation and trace IDs (in contextvars), caller identity, call context.

A correlation ID is a W3C trace ID: 32 lowercase hex digits, not all zero. An incoming
`traceparent` (W3C trace context) gives the trace and the parent span; without one, a 32-hex
`X-Correlation-ID` becomes the trace ID. A caller's correlation ID of another valid form is kept
as the correlation ID (audit, logs) and the spans get a fresh trace ID. Both are kept in
contextvars so that log lines, audit records, spans and outgoing calls carry them without being
passed around by hand.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from random import getrandbits
from typing import Any

CORRELATION_HEADER = "x-correlation-id"
TRACEPARENT_HEADER = "traceparent"
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")
_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# version-trace_id-parent_id-flags; version 00 has exactly these fields, later ones may add more.
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

correlation_id_var: ContextVar[str | None] = ContextVar("bastion_correlation_id", default=None)

# The span calls made now are children of: (trace ID, span ID). Set by the agent server and the
# gateway's guard for the time of a call; read by the agent client to send `traceparent`.
span_var: ContextVar[tuple[str, str] | None] = ContextVar("bastion_span", default=None)

# What one security stage took: (stage, started, ended, refused), `time.perf_counter` seconds.
StageTiming = tuple[str, float, float, bool]

# While set, every call an agent client makes carries a delegation: the function mints the
# delegation token for the next hop, given the principal the call is made as. Set by the
# security stack for a call that arrived with a delegation, and by `acting_for` at the gateway.
onward_delegation_var: ContextVar[Callable[[str], str] | None] = ContextVar(
    "bastion_onward_delegation", default=None
)


# A random per-process half plus a counter: 32 hex digits, never all zero, unique across
# processes and restarts without a system call per request. IDs are identifiers, not secrets.
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_correlation_id() -> str:
    """A new correlation ID, which is also a valid W3C trace ID (32 lowercase hex digits)."""
    return f"{_PREFIX}{next(_COUNTER):016x}"


def new_span_id() -> str:
    """A random W3C span ID: 16 lowercase hex digits, not all zero."""
    return f"{getrandbits(64) or 1:016x}"


def is_trace_id(value: str) -> bool:
    """Whether `value` is a valid W3C trace ID (32 lowercase hex digits, not all zero)."""
    return _TRACE_ID_RE.match(value) is not None and value != _ZERO_TRACE


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace ID, parent span ID) of a valid W3C `traceparent` header, else None."""
    if value is None:
        return None
    m = _TRACEPARENT_RE.match(value.strip())
    if m is None:
        return None
    version, trace_id, span_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id


def traceparent(trace_id: str, span_id: str) -> str:
    """The `traceparent` header naming span `span_id` of trace `trace_id` (sampled)."""
    return f"00-{trace_id}-{span_id}-01"


def incoming_ids(headers: dict[str, str]) -> tuple[str, str, str | None]:
    """(correlation ID, trace ID, parent span ID) of a request, from its headers: see the
    module docstring. A malformed `traceparent` or `X-Correlation-ID` is ignored."""
    given = headers.get(CORRELATION_HEADER)
    correlation = given if given is not None and _CORRELATION_RE.match(given) else None
    parent = parse_traceparent(headers.get(TRACEPARENT_HEADER))
    if parent is not None:
        return correlation or parent[0], parent[0], parent[1]
    if correlation is None:
        correlation = new_correlation_id()
        return correlation, correlation, None
    return correlation, correlation if is_trace_id(correlation) else new_correlation_id(), None


def valid_correlation_id(value: str | None) -> bool:
    return value is not None and _CORRELATION_RE.match(value) is not None


def accept_correlation_id(value: str | None) -> str:
    """The caller's ID when well formed (8-128 chars of [A-Za-z0-9._:-]), else a new one."""
    return value if value is not None and _CORRELATION_RE.match(value) else new_correlation_id()


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


@dataclass(slots=True, frozen=True)
class Identity:
    """Who is calling. `principal` is the name RBAC and rate limits key on."""

    principal: str
    auth_method: str  # "api_key" | "jwt" | "tck" | "none"
    credential_id: str | None = None  # API key id or JWT `jti`/`sub`, never a secret
    expires_at: float | None = None  # when the credential stops being valid (key expiry, `exp`)
    claims: dict[str, Any] | None = None
    # The API key standing behind the credential: the key itself, or the key a token of the
    # built-in token service was exchanged for. Revoking it ends the credential.
    api_key_id: str | None = None


@dataclass(slots=True, frozen=True)
class Delegation:
    """A call made on someone's behalf (RFC 8693 delegation, not impersonation).

    `subject` is the principal who asked (the token's `sub`); `actors` is the chain acting for
    it, the nearest first (the token's nested `act`): the caller of this call is `actors[0]`.
    `token` is the delegation token as received; `key_id` the subject's API key standing
    behind it (revoking that key ends the delegation).
    """

    subject: str
    actors: tuple[str, ...]
    expires_at: float
    token: str = field(repr=False)
    key_id: str | None = None


@dataclass(slots=True)
class RateInfo:
    """The remaining quota after a call, for the RateLimit headers and result metadata."""

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int  # seconds until the quota is full again
    retry_after: int = 0  # seconds, when denied


@dataclass(slots=True)
class RequestContext:
    """One HTTP request to an agent. A batch shares it between its calls."""

    agent: str
    correlation_id: str
    client: str
    headers: dict[str, str]
    started: float = field(default_factory=time.perf_counter)
    identity: Identity | None = None
    rate: RateInfo | None = None
    # Set when the request carries a verified delegation (the caller acts for `subject`).
    delegation: Delegation | None = None
    # The trace the request's spans belong to, and the caller's span (from `traceparent`).
    trace_id: str = ""
    parent_span_id: str | None = None
    # The request's span, and its stages' timings: None when the process does not trace.
    span_id: str = ""
    stage_times: list[StageTiming] | None = None


@dataclass(slots=True)
class CallContext:
    """One JSON-RPC call, as handlers and call-level stages see it."""

    request: RequestContext
    method: str
    started: float = field(default_factory=time.perf_counter)
    rate: RateInfo | None = None
    # The call's stages' timings when traced (a batch element has its own span).
    stage_times: list[StageTiming] | None = None

    @property
    def principal(self) -> str:
        ident = self.request.identity
        return ident.principal if ident else "-"

    @property
    def correlation_id(self) -> str:
        return self.request.correlation_id

    @property
    def delegation(self) -> Delegation | None:
        """Whom the call acts for, when it carries a verified delegation."""
        return self.request.delegation

    @property
    def agent(self) -> str:
        return self.request.agent

    @property
    def headers(self) -> dict[str, str]:
        return self.request.headers

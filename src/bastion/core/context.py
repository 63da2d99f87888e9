"""Per-request state: correlation ID (in a contextvar), caller identity, call context.

The correlation ID is accepted from `X-Correlation-ID` when it is well formed, otherwise
generated; it is kept in a contextvar so that log lines, audit records and outgoing calls all
carry it without being passed around by hand.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")

correlation_id_var: ContextVar[str | None] = ContextVar("bastion_correlation_id", default=None)

# While set, every call an agent client makes carries a delegation: the function mints the
# delegation token for the next hop, given the principal the call is made as. Set by the
# security stack for a call that arrived with a delegation, and by `acting_for` at the gateway.
onward_delegation_var: ContextVar[Callable[[str], str] | None] = ContextVar(
    "bastion_onward_delegation", default=None
)


# A random per-process prefix plus a counter: unique across processes and restarts without a
# system call per request. Correlation IDs are identifiers, not secrets.
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_correlation_id() -> str:
    return f"{_PREFIX}-{next(_COUNTER):08x}"


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


@dataclass(slots=True)
class CallContext:
    """One JSON-RPC call, as handlers and call-level stages see it."""

    request: RequestContext
    method: str
    started: float = field(default_factory=time.perf_counter)
    rate: RateInfo | None = None

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

"""The agent client: JSON-RPC 2.0 calls to one agent, with tokens, retries and a breaker.

`AgentClient` owns everything a caller needs to talk to one agent safely, at one URL or spread
over its replicas (a list of URLs, or a host name with several addresses; `ReplicaSet` in
`bastion.runtime.replicas` chooses one per attempt, least outstanding requests first, passing
over replicas with an open breaker or a failing `/readyz`):

* one pooled, keep-alive `httpx.AsyncClient` with the connect/read timeouts from
  `ClientSettings`; optional TLS through `ssl_context` (a CA to verify the agent, and a
  client certificate for mTLS; see `client_ssl_context`);
* the headers every call carries: `traceparent` (W3C trace context: the current trace, else
  the correlation ID as a new trace, and this call's client span), `X-Correlation-ID` (the
  current correlation ID, else the trace ID), `A2A-Version`, `User-Agent` and `Content-Type`;
  and, when the call is made on someone's behalf (`bastion.core.context.onward_delegation_var`),
  `X-Bastion-Delegation`: a delegation token for the next hop, naming this client's
  `principal` as the nearest actor;
* credentials: with an API key and `use_tokens`, the key is exchanged once at
  `<token_url>/oauth/token` for a short-lived token sent as `Authorization: Bearer`, refreshed
  at 80% of its lifetime (one refresh shared by concurrent callers) and once more when the
  agent answers 401; without a token endpoint (404), or with `use_tokens=False`, the key is
  sent as `X-API-Key`. Neither key nor token ever appears in a repr, a log line or an error;
* retries with exponential backoff and full jitter, only for failures where the agent cannot
  have run the call: connection failures before the request went out, HTTP 503, and HTTP 429
  (waiting at least `Retry-After`). Nothing else is retried: JSON-RPC calls are not idempotent.
  A retry goes to another replica when there is one (after a failed connection, at once);
* a `CircuitBreaker` per replica, so that a dead agent costs callers nothing but a
  `BreakerOpen` until its reset time has passed (`ReplicasDown` when every replica is down).

Errors: `RpcCallError` when the agent (or the token endpoint) answered with an error,
`AgentUnreachable` when no answer could be had, `BreakerOpen` when the call was refused locally.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from bastion.aio import AsyncClosing
from bastion.config import ClientSettings, TLSSettings
from bastion.core.context import (
    TRACEPARENT_HEADER,
    current_correlation_id,
    is_trace_id,
    new_correlation_id,
    new_span_id,
    onward_delegation_var,
    span_var,
    traceparent,
)
from bastion.egress import AuditSink, EgressPolicy, egress_client, origin_policy
from bastion.observability.tracing import current_tracing
from bastion.protocol.endpoints import DELEGATION_HEADER, MESSAGE_PATH, USER_AGENT
from bastion.protocol.errors import (
    FORBIDDEN,
    INVALID_AGENT_RESPONSE,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    SECURITY_UNAVAILABLE,
    UNAUTHENTICATED,
    spec_for,
)
from bastion.runtime.breaker import BreakerOpen, CircuitBreaker
from bastion.runtime.replicas import (
    Replica,
    ReplicaSet,
    Resolver,
    loop_resolver,
    pinned_resolver,
    pinned_to,
    replica_breaker,
)
from bastion.runtime.server import http_outcome
from bastion.security import SecretValue

__all__ = [
    "A2A_VERSION",
    "AgentClient",
    "AgentUnreachable",
    "BreakerOpen",
    "RateLimitStatus",
    "RpcCallError",
    "client_ssl_context",
    "parse_rate_limit",
    "parse_retry_after",
    "result_text",
    "tls_context_from_settings",
]

log = structlog.get_logger("bastion.client")

A2A_VERSION = "1.0"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a URL path, not a secret)
READY_PATH = "/readyz"
DEFAULT_RPC_PATH = MESSAGE_PATH
# Refresh a token once this fraction of its lifetime has passed.
TOKEN_REFRESH_FRACTION = 0.8
# A Retry-After longer than this is not waited out: the error goes back to the caller.
DEFAULT_MAX_RETRY_AFTER = 30.0

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# Failures where the request cannot have reached the agent's handler: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError)

# The error code for an answer without a JSON-RPC error body, by HTTP status.
_STATUS_CODES = {
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    413: PAYLOAD_TOO_LARGE,
    429: RATE_LIMITED,
    503: SECURITY_UNAVAILABLE,
}

_RL_PARAM_RE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\d+)")
_RL_NAME_RE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"')


class RpcCallError(Exception):
    """The agent (or its token endpoint) answered with an error.

    `code` is the JSON-RPC error code (Bastion's security codes for 401/403/429/503),
    `http_status` the HTTP status of the answer, `retry_after` the seconds the agent asked the
    caller to wait (429/503), when it said.
    """

    def __init__(
        self,
        code: int,
        message: str,
        data: Any = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        status = f", HTTP {self.http_status}" if self.http_status is not None else ""
        return f"{self.message} (code {self.code}{status})"

    def __repr__(self) -> str:
        return (
            f"RpcCallError(code={self.code}, message={self.message!r}, "
            f"http_status={self.http_status}, retry_after={self.retry_after})"
        )


class AgentUnreachable(Exception):
    """No answer could be had from the agent (connection failed, or timed out).

    `sent` is True when the request may have reached the agent (a read timeout, a connection
    dropped mid-answer): such failures are never retried, since the call may have run.
    """

    def __init__(self, target: str, reason: str, *, attempts: int, sent: bool) -> None:
        self.target = target
        self.reason = reason
        self.attempts = attempts
        self.sent = sent
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"{target} unreachable after {tries}: {reason}")


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The caller's remaining quota, from the agent's `RateLimit` / `RateLimit-Policy` headers."""

    remaining: int
    reset: int
    policy: str | None = None
    limit: int | None = None
    window: int | None = None


def _sf_params(value: str) -> tuple[str | None, dict[str, int]]:
    m = _RL_NAME_RE.match(value)
    name = m.group(1) if m else None
    return name, {k.lower(): int(v) for k, v in _RL_PARAM_RE.findall(value)}


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitStatus | None:
    """Parse `RateLimit: "name";r=<remaining>;t=<reset>` (and `RateLimit-Policy` q/w).

    Also accepts the older `remaining=..., reset=..., limit=...` style. None when absent or
    unreadable.
    """
    raw = headers.get("ratelimit")
    if not raw:
        return None
    name, params = _sf_params(raw)
    remaining = params.get("r", params.get("remaining"))
    reset = params.get("t", params.get("reset"))
    if remaining is None or reset is None:
        return None
    limit = params.get("limit")
    window = None
    policy_raw = headers.get("ratelimit-policy")
    if policy_raw:
        pname, pparams = _sf_params(policy_raw)
        name = name or pname
        limit = pparams.get("q", limit)
        window = pparams.get("w")
    return RateLimitStatus(
        remaining=remaining, reset=reset, policy=name, limit=limit, window=window
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date. None when absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)


def client_ssl_context(
    *,
    ca_file: str | Path | None = None,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
) -> ssl.SSLContext:
    """A TLS context verifying agents against `ca_file` (system CAs when None), and presenting
    `certfile`/`keyfile` to agents that require mTLS."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile:
        ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return ctx


def tls_context_from_settings(
    tls: TLSSettings, resolve: Callable[[str], Path] = Path
) -> ssl.SSLContext | None:
    """The client TLS context configured in `server.tls` (`ca_file`, `client_certfile`,
    `client_keyfile`); None when none of them is set. `resolve` maps configured paths to files
    (pass `Settings.path`)."""
    if not (tls.ca_file or tls.client_certfile):
        return None
    return client_ssl_context(
        ca_file=resolve(tls.ca_file) if tls.ca_file else None,
        certfile=resolve(tls.client_certfile) if tls.client_certfile else None,
        keyfile=resolve(tls.client_keyfile) if tls.client_keyfile else None,
    )


def result_text(result: Any) -> str:
    """The text parts of an A2A `SendMessage` result (`{"message": ...}` or `{"task": ...}`),
    joined by newlines: the message's parts, else the task's artifacts, else its status
    message."""
    if not isinstance(result, dict):
        return ""

    def texts(parts: Any) -> list[str]:
        if not isinstance(parts, list):
            return []
        return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]

    if isinstance(result.get("message"), dict):
        return "\n".join(texts(result["message"].get("parts")))
    task = result.get("task", result)
    if not isinstance(task, dict):
        return ""
    out: list[str] = []
    for artifact in task.get("artifacts") or []:
        if isinstance(artifact, dict):
            out.extend(texts(artifact.get("parts")))
    if not out:
        status = task.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), dict):
            out.extend(texts(status["message"].get("parts")))
    return "\n".join(out)


def _is_tls_failure(exc: BaseException) -> bool:
    """A certificate or handshake failure: permanent, not worth retrying."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _security_message(code: int) -> str:
    try:
        return spec_for(code).message
    except KeyError:
        return "Error"


class AgentClient(AsyncClosing):
    """JSON-RPC client for one agent. Use as `async with AgentClient(url, ...) as client:`.

    Arguments (all keyword except `base_url`):

    * `base_url`: the agent's root URL, or the root URLs of its replicas; calls go to
      `<url> + rpc_path` (`/message`). A URL whose host is a name is resolved (`resolver`,
      default the event loop's `getaddrinfo`) and calls are spread over its addresses.
    * `api_key`: the caller's API key; with `use_tokens` (default) it is exchanged at
      `token_url` (default `base_url`) + `/oauth/token` for a bearer token.
    * `settings`: timeouts, retries, backoff, and breaker thresholds.
    * `breaker`: the target's breaker; by default one is made from `settings`. Pass the same
      breaker to several clients of one target to share its state. It guards a single URL with
      an IP host (or any single URL with a `transport`); replicas get a breaker each.
    * `ssl_context`: TLS for `https://` agents: the CA to trust and, for mTLS, the client
      certificate (build one with `client_ssl_context`). Default: system CAs, no client cert.
    * `egress`: the egress policy of the client's HTTP (`bastion.egress`). By default it
      allows exactly the origins of the agent's URLs and `token_url`, so a redirect or a rebinding
      name cannot take the client anywhere else; `principal` and `audit` name the caller in
      the log line and the audit record of a refused request.
    * `transport`: an httpx transport to use instead of the network (tests, ASGI in-process;
      no network, so no egress policy, and host names are not resolved to replicas).
    * `resolver`: the async resolver of host names to replica addresses.
    * `headers`: extra headers sent with every request.
    * `sleep`, `clock`: injectable for tests (backoff waits; breaker and token expiry time).
    * `max_retry_after`: a 429/503 asking to wait longer than this is not retried.
    * `trust_env`: pick up proxies and CA bundles from the environment (off by default).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        api_key: str | SecretValue | None = None,
        use_tokens: bool = True,
        token_url: str | None = None,
        settings: ClientSettings | None = None,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        egress: EgressPolicy | None = None,
        principal: str = "-",
        audit: AuditSink | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
        rpc_path: str = DEFAULT_RPC_PATH,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        trust_env: bool = False,
        resolver: Resolver | None = None,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("no agent URL given: pass the agent's URL or its replicas' URLs")
        self.base_url = urls[0].rstrip("/")
        self._rpc_path = "/" + rpc_path.lstrip("/") if rpc_path.strip("/") else "/"
        self.settings = settings or ClientSettings()
        self._principal = principal
        self.rpc_url = self.base_url + self._rpc_path
        self.token_url = (token_url or self.base_url).rstrip("/") + TOKEN_PATH
        # The token endpoint is the agent's own unless another URL was given.
        self._token_on_replicas = token_url is None or token_url.rstrip("/") == self.base_url
        self.breaker = breaker or replica_breaker(self.settings, self.base_url, clock=clock)
        self.replicas = ReplicaSet(
            urls,
            target=self.base_url if len(urls) == 1 else f"{self.base_url} (+{len(urls) - 1})",
            settings=self.settings,
            resolver=None if transport is not None else (resolver or loop_resolver),
            probe=self._ready,
            breaker=self.breaker,
            clock=clock,
        )
        self.max_retry_after = max_retry_after
        self.last_rate_limit: RateLimitStatus | None = None
        self._api_key = SecretValue(api_key) if isinstance(api_key, str) else api_key
        self._use_tokens = use_tokens
        self._token: SecretValue | None = None
        self._token_refresh_at = 0.0
        self._token_endpoint_missing = False
        self._token_lock = asyncio.Lock()
        self._token_shares_breaker = _origin(self.token_url) == _origin(self.base_url)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 (backoff jitter, not security)
        self._ids = itertools.count(1)
        default_headers = {"User-Agent": USER_AGENT, "A2A-Version": A2A_VERSION}
        default_headers.update(headers or {})
        s = self.settings
        options: dict[str, Any] = {
            "timeout": httpx.Timeout(s.timeout_seconds, connect=s.connect_timeout_seconds),
            "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20),
            "headers": default_headers,
            "verify": ssl_context if ssl_context is not None else True,
            "trust_env": trust_env,
            "follow_redirects": False,
        }
        if transport is not None:
            self._http = httpx.AsyncClient(transport=transport, **options)
        else:
            policy = egress or origin_policy(*urls, self.token_url)
            self._http = egress_client(
                policy, principal=principal, audit=audit, resolver=pinned_resolver(), **options
            )

    def __repr__(self) -> str:
        return f"AgentClient(base_url={self.base_url!r}, auth={self.auth_mode!r})"

    @property
    def auth_mode(self) -> str:
        """How calls are authenticated: "none", "api_key" or "bearer"."""
        if self._api_key is None:
            return "none"
        if not self._use_tokens or self._token_endpoint_missing:
            return "api_key"
        return "bearer"

    async def aclose(self) -> None:
        await self.replicas.aclose()
        await self._http.aclose()

    async def _ready(self, replica: Replica) -> bool:
        """Whether `replica` answers `GET /readyz` with 200 (the replica set's probe)."""
        s = self.settings
        timeout = httpx.Timeout(
            min(s.timeout_seconds, s.replica_probe_seconds), connect=s.connect_timeout_seconds
        )
        try:
            with pinned_to(replica):
                resp = await self._http.get(replica.url + READY_PATH, timeout=timeout)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    # -- public calls ------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None) -> Any:
        """Call `method` and return its `result`; raises `RpcCallError` for an error answer."""
        rid = next(self._ids)
        resp, _ = await self._post(_dumps(_request(method, params, rid)), method)
        doc = _json_body(resp)
        if isinstance(doc, dict) and "error" in doc:
            _raise_error(doc["error"], resp)
        if resp.status_code != 200 or not isinstance(doc, dict) or "result" not in doc:
            _raise_unexpected(resp)
        if doc.get("id") != rid:
            raise RpcCallError(
                INVALID_AGENT_RESPONSE, "response id does not match the request", None, 200
            )
        return doc["result"]

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no id, no result). Raises only when the request was refused."""
        resp, _ = await self._post(_dumps(_request(method, params, None)), method)
        if resp.status_code < 300 and not resp.content:
            return
        doc = _json_body(resp)
        if isinstance(doc, dict) and "error" in doc:
            _raise_error(doc["error"], resp)
        if resp.status_code >= 300:
            _raise_unexpected(resp)

    async def batch(self, calls: Sequence[tuple[str, Any]]) -> list[Any]:
        """Send calls as one JSON-RPC batch. Returns one entry per call, in order: its result,
        or an `RpcCallError` (returned, not raised) when that call failed. Raises when the whole
        batch was refused."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        body = [_request(m, p, rid) for (m, p), rid in zip(calls, ids, strict=True)]
        resp, _ = await self._post(_dumps(body), f"(batch of {len(calls)})")
        doc = _json_body(resp)
        if isinstance(doc, dict) and "error" in doc:
            _raise_error(doc["error"], resp)
        if resp.status_code != 200 or not isinstance(doc, list):
            _raise_unexpected(resp)
        by_id: dict[Any, Any] = {}
        for item in doc:
            if not isinstance(item, dict) or "id" not in item:
                continue
            if "error" in item:
                by_id[item["id"]] = _error_from(item["error"], resp)
            elif "result" in item:
                by_id[item["id"]] = item["result"]
        missing = RpcCallError(INVALID_AGENT_RESPONSE, "no response for this call", None, 200)
        return [by_id.get(rid, missing) for rid in ids]

    async def stream(self, method: str, params: Any = None) -> AsyncIterator[Any]:
        """Call a streaming method; yields the `result` of each server-sent event in order.

        An error event raises `RpcCallError`. A plain JSON answer (the server refused or did not
        stream) yields its single result or raises its error.
        """
        rid = next(self._ids)
        resp, replica = await self._post(
            _dumps(_request(method, params, rid)), method, stream=True, accept="text/event-stream"
        )
        try:
            ctype = resp.headers.get("content-type", "")
            if resp.status_code != 200 or "text/event-stream" not in ctype:
                await resp.aread()
                doc = _json_body(resp)
                if isinstance(doc, dict) and "error" in doc:
                    _raise_error(doc["error"], resp)
                if resp.status_code != 200 or not isinstance(doc, dict) or "result" not in doc:
                    _raise_unexpected(resp)
                yield doc["result"]
                return
            try:
                async for event, data in _sse_events(resp):
                    doc = _loads_event(data)
                    if isinstance(doc, dict) and "error" in doc:
                        _raise_error(doc["error"], resp)
                    if event == "error" or not isinstance(doc, dict) or "result" not in doc:
                        raise RpcCallError(
                            INVALID_AGENT_RESPONSE, "malformed event in the stream", None, 200
                        )
                    yield doc["result"]
            except httpx.TransportError as exc:
                raise AgentUnreachable(
                    self.base_url, f"stream broken: {type(exc).__name__}", attempts=1, sent=True
                ) from exc
        finally:
            if replica is not None:
                self.replicas.release(replica)
            await resp.aclose()

    # -- A2A conveniences --------------------------------------------------------------------

    @staticmethod
    def build_message(
        text: str,
        *,
        message_id: str | None = None,
        context_id: str | None = None,
        task_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An A2A v1.0 user `Message` in its JSON form, with one text part."""
        message: dict[str, Any] = {
            "messageId": message_id or uuid.uuid4().hex,
            "role": "ROLE_USER",
            "parts": [{"text": text}],
        }
        if context_id:
            message["contextId"] = context_id
        if task_id:
            message["taskId"] = task_id
        if metadata:
            message["metadata"] = metadata
        return message

    async def send_message(
        self,
        text: str,
        *,
        message_id: str | None = None,
        context_id: str | None = None,
        task_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        configuration: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A2A `SendMessage` with one text part. Returns the `SendMessageResponse` JSON:
        `{"message": {...}}` or `{"task": {...}}` (see `result_text`)."""
        params: dict[str, Any] = {
            "message": self.build_message(
                text,
                message_id=message_id,
                context_id=context_id,
                task_id=task_id,
                metadata=metadata,
            )
        }
        if configuration:
            params["configuration"] = configuration
        result = await self.call("SendMessage", params)
        if not isinstance(result, dict):
            raise RpcCallError(INVALID_AGENT_RESPONSE, "SendMessage result is not an object")
        return result

    async def stream_message(
        self,
        text: str,
        *,
        message_id: str | None = None,
        context_id: str | None = None,
        task_id: str | None = None,
    ) -> AsyncIterator[Any]:
        """A2A `SendStreamingMessage`: yields each `StreamResponse` JSON object."""
        message = self.build_message(
            text, message_id=message_id, context_id=context_id, task_id=task_id
        )
        async for item in self.stream("SendStreamingMessage", {"message": message}):
            yield item

    async def get_task(self, task_id: str, *, history_length: int | None = None) -> dict[str, Any]:
        """A2A `GetTask`: the task's JSON."""
        params: dict[str, Any] = {"id": task_id}
        if history_length is not None:
            params["historyLength"] = history_length
        result = await self.call("GetTask", params)
        if not isinstance(result, dict):
            raise RpcCallError(INVALID_AGENT_RESPONSE, "GetTask result is not a Task object")
        return result

    # -- sending -----------------------------------------------------------------------------

    async def _post(
        self, body: bytes, label: str, *, stream: bool = False, accept: str = "application/json"
    ) -> tuple[httpx.Response, Replica | None]:
        """POST one JSON-RPC body as a client span named `label` (the method), with the trace
        context in `traceparent`; see `_post_traced`."""
        correlation_id = current_correlation_id()
        parent = span_var.get()
        if parent is not None:
            trace_id, parent_id = parent
        else:  # a call of its own: the correlation ID is its trace when it can be one
            usable = correlation_id is not None and is_trace_id(correlation_id)
            trace_id = correlation_id if usable and correlation_id else new_correlation_id()
            parent_id = None
        span_id = new_span_id()
        trace_headers = {
            TRACEPARENT_HEADER: traceparent(trace_id, span_id),
            "X-Correlation-ID": correlation_id or trace_id,
        }
        tracing = current_tracing()
        if tracing is None:
            return await self._post_traced(body, trace_headers, stream=stream, accept=accept)
        started = time.perf_counter()
        outcome, status = "error:cancelled", 0
        try:
            resp, replica = await self._post_traced(
                body, trace_headers, stream=stream, accept=accept
            )
            status = resp.status_code
            outcome = http_outcome(status)
            return resp, replica
        except Exception as exc:  # unreachable, breaker open, token refused: the span says so
            outcome = f"error:{type(exc).__name__}"
            raise
        finally:
            service = self._principal if self._principal != "-" else "client"
            tracing.hop(
                (
                    trace_id,
                    span_id,
                    parent_id,
                    label,
                    service,
                    "client",
                    started,
                    time.perf_counter(),
                    outcome,
                    status,
                    self._principal,
                    correlation_id or trace_id,
                    self.base_url,
                    (),
                    None,
                )
            )

    async def _post_traced(
        self,
        body: bytes,
        trace_headers: dict[str, str],
        *,
        stream: bool = False,
        accept: str = "application/json",
    ) -> tuple[httpx.Response, Replica | None]:
        """POST one JSON-RPC body with auth, retries and the breaker; refresh a rejected token
        once. The caller reads (and, for streams, closes) the response; a stream's replica is
        returned for the caller to release once the stream is over."""
        onward = onward_delegation_var.get()
        delegation = {DELEGATION_HEADER: onward(self._principal)} if onward is not None else {}
        refreshed = False
        while True:
            auth, token = await self._auth_headers()
            headers = {
                "Content-Type": "application/json",
                "Accept": accept,
                **trace_headers,
                **delegation,
                **auth,
            }

            def send(base: str, headers: dict[str, str] = headers) -> Awaitable[httpx.Response]:
                request = self._http.build_request(
                    "POST", base + self._rpc_path, content=body, headers=headers
                )
                return self._http.send(request, stream=stream)

            resp, replica = await self._send_with_retries(
                send, self.replicas, self.base_url, hold=stream
            )
            rate = parse_rate_limit(resp.headers)
            if rate is not None:
                self.last_rate_limit = rate
            if resp.status_code == 401 and token is not None and not refreshed:
                if replica is not None:
                    self.replicas.release(replica)
                await resp.aclose()
                refreshed = True
                log.info("token rejected, refreshing once", target=self.base_url)
                await self._refresh_rejected(token)
                continue
            return resp, replica

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        cap = min(s.backoff_max_seconds, s.backoff_base_seconds * (2**attempt))
        return self._rng.uniform(0.0, cap)

    async def _send_with_retries(
        self,
        send: Callable[[str], Awaitable[httpx.Response]],
        route: ReplicaSet | CircuitBreaker | None,
        target: str,
        *,
        hold: bool = False,
    ) -> tuple[httpx.Response, Replica | None]:
        """Send until an answer that is not worth retrying, or retries run out. `send` gets the
        base URL of the attempt: a replica's chosen from `route`, else `target` (guarded by
        `route` when it is a breaker). With `hold` the replica of the answer stays counted as
        busy and is returned (release it when its stream is over); otherwise None is."""
        max_retries = max(0, self.settings.max_retries)
        attempt = 0
        tried: set[Replica] = set()
        while True:
            replica: Replica | None = None
            breaker = route if isinstance(route, CircuitBreaker) else None
            if isinstance(route, ReplicaSet):
                replica = await route.pick(frozenset(tried))
                tried.add(replica)
                breaker = replica.breaker
            elif breaker is not None:
                breaker.acquire()
            held = False
            try:
                try:
                    with pinned_to(replica):
                        resp = await send(replica.url if replica is not None else target)
                except _NOT_SENT as exc:
                    if breaker is not None:
                        breaker.record_failure()
                    if isinstance(route, ReplicaSet) and replica is not None:
                        route.connect_failed(replica)
                    reason = type(exc).__name__
                    if replica is not None and (replica.ip or replica.url != target):
                        reason = f"{reason} at {replica.name}"
                    if _is_tls_failure(exc) or attempt >= max_retries:
                        raise AgentUnreachable(
                            target, reason, attempts=attempt + 1, sent=False
                        ) from exc
                    # Another replica is tried at once; the same target after a backoff.
                    other = isinstance(route, ReplicaSet) and route.has_other(frozenset(tried))
                    delay = 0.0 if other else self._backoff(attempt)
                    log.info("retrying", target=target, reason=reason, delay=round(delay, 3))
                    await self._sleep(delay)
                    attempt += 1
                    continue
                except httpx.TransportError as exc:
                    # The request went out (or may have): the call may have run, so no retry.
                    if breaker is not None:
                        breaker.record_failure()
                    raise AgentUnreachable(
                        target, type(exc).__name__, attempts=attempt + 1, sent=True
                    ) from exc
                except BaseException:
                    if breaker is not None:
                        breaker.release()
                    raise

                status = resp.status_code
                if breaker is not None:
                    # 429 is the caller's quota, not the agent's health.
                    if status >= 500:
                        breaker.record_failure()
                    else:
                        breaker.record_success()
                if status not in (429, 503):
                    if status >= 300:
                        await resp.aread()
                    held = hold
                    return resp, replica if held else None
                await resp.aread()
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if attempt >= max_retries or (
                    retry_after is not None and retry_after > self.max_retry_after
                ):
                    held = hold
                    return resp, replica if held else None
                delay = self._backoff(attempt)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                await resp.aclose()
            finally:
                if replica is not None and not held and isinstance(route, ReplicaSet):
                    route.release(replica)
            log.info("retrying", target=target, status=status, delay=round(delay, 3))
            await self._sleep(delay)
            attempt += 1

    # -- credentials -------------------------------------------------------------------------

    async def _auth_headers(self) -> tuple[dict[str, str], SecretValue | None]:
        """The credential headers for one call, and the token used (None without a token)."""
        key = self._api_key
        if key is None:
            return {}, None
        if self._use_tokens and not self._token_endpoint_missing:
            if self._token is None or self._clock() >= self._token_refresh_at:
                async with self._token_lock:
                    # Re-check: another caller may have refreshed while this one waited.
                    if self._token is None or self._clock() >= self._token_refresh_at:
                        await self._fetch_token()
            token = self._token
            if token is not None and not self._token_endpoint_missing:
                return {"Authorization": "Bearer " + token.get()}, token
        return {"X-API-Key": key.get()}, None

    async def _refresh_rejected(self, rejected: SecretValue) -> None:
        async with self._token_lock:
            if self._token is None or self._token == rejected:
                await self._fetch_token()

    async def _fetch_token(self) -> None:
        """Exchange the API key for a token. Called with the token lock held."""
        key = self._api_key
        assert key is not None
        headers = {
            "Accept": "application/json",
            "X-API-Key": key.get(),
            "X-Correlation-ID": current_correlation_id() or new_correlation_id(),
        }

        def send(base: str) -> Awaitable[httpx.Response]:
            url = base + TOKEN_PATH if self._token_on_replicas else self.token_url
            request = self._http.build_request(
                "POST", url, data={"grant_type": "client_credentials"}, headers=headers
            )
            return self._http.send(request)

        route: ReplicaSet | CircuitBreaker | None = None
        if self._token_on_replicas:
            route = self.replicas
        elif self._token_shares_breaker:
            route = self.breaker
        resp, _ = await self._send_with_retries(send, route, self.token_url)
        if resp.status_code == 404:
            self._token_endpoint_missing = True
            self._token = None
            log.info("no token endpoint, sending the API key directly", target=self.base_url)
            return
        doc = _json_body(resp)
        if resp.status_code != 200:
            error = doc.get("error") if isinstance(doc, dict) else None
            # 400 from the token endpoint is a malformed client authentication.
            fallback = UNAUTHENTICATED if resp.status_code == 400 else INVALID_AGENT_RESPONSE
            code = _STATUS_CODES.get(resp.status_code, fallback)
            what = f": {error}" if isinstance(error, str) and len(error) <= 64 else ""
            raise RpcCallError(
                code,
                f"token exchange failed{what}",
                None,
                resp.status_code,
                parse_retry_after(resp.headers.get("retry-after")),
            )
        token = doc.get("access_token") if isinstance(doc, dict) else None
        expires_in = doc.get("expires_in") if isinstance(doc, dict) else None
        token_type = doc.get("token_type", "Bearer") if isinstance(doc, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or not isinstance(token_type, str)
            or token_type.lower() != "bearer"
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
            or expires_in <= 0
        ):
            raise RpcCallError(INVALID_AGENT_RESPONSE, "token endpoint answered malformed JSON")
        self._token = SecretValue(token)
        self._token_refresh_at = self._clock() + float(expires_in) * TOKEN_REFRESH_FRACTION
        log.debug("token obtained", target=self.base_url, expires_in=expires_in)


# -- wire helpers ----------------------------------------------------------------------------


def _request(method: str, params: Any, rid: int | None) -> dict[str, Any]:
    req: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        req["params"] = params
    if rid is not None:
        req["id"] = rid
    return req


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _json_body(resp: httpx.Response) -> Any:
    """The decoded JSON body, or None when the body is empty or not JSON."""
    if not resp.content:
        return None
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None


def _loads_event(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise RpcCallError(
            INVALID_AGENT_RESPONSE, "stream event is not valid JSON", None, 200
        ) from None


def _error_from(error: Any, resp: httpx.Response) -> RpcCallError:
    retry_after = parse_retry_after(resp.headers.get("retry-after"))
    if not isinstance(error, dict) or isinstance(error.get("code"), bool):
        return RpcCallError(
            INVALID_AGENT_RESPONSE, "malformed error object", error, resp.status_code, retry_after
        )
    code = error.get("code")
    if not isinstance(code, int):
        code = INVALID_AGENT_RESPONSE
    message = error.get("message")
    if not isinstance(message, str):
        message = _security_message(code)
    return RpcCallError(code, message, error.get("data"), resp.status_code, retry_after)


def _raise_error(error: Any, resp: httpx.Response) -> NoReturn:
    raise _error_from(error, resp)


def _raise_unexpected(resp: httpx.Response) -> NoReturn:
    code = (
        INVALID_AGENT_RESPONSE
        if resp.status_code < 300
        else _STATUS_CODES.get(resp.status_code, INVALID_AGENT_RESPONSE)
    )
    raise RpcCallError(
        code,
        f"unexpected answer: HTTP {resp.status_code}",
        None,
        resp.status_code,
        parse_retry_after(resp.headers.get("retry-after")),
    )


async def _sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) for each server-sent event (W3C event-stream format)."""
    event = "message"
    data: list[str] = []
    async for line in resp.aiter_lines():
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield event, "\n".join(data)

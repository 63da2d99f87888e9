"""The WAF as ASGI middleware, in front of the gateway and of any agent configured `public`.

`protect(app, settings, agent=..., audit=...)` wraps an app (returned as is when `waf.enabled`
is false). Per HTTP request or WebSocket handshake, in order:

    0 the path must be one of the app's routes or `waf.extra_paths`        else 404
    1 the client IP (see `clientip`) must be within its rate               else 429
    2 URI, query and headers within their limits; the body (HTTP only) is
      buffered up to its route's limit (a larger declared Content-Length
      is refused before reading, a longer stream as soon as it passes)    else 413
      and the managed detectors must find nothing                          else 403
    3 the bot rules must find nothing                                      else 403

then the app gets the request with the identical body, replayed. WebSocket handshakes get the
same rules on their URI and headers; a refused handshake is answered with the HTTP error when
the server supports denial responses, else closed with code 1008.

Refusals are JSON in the gateway's error shape and carry `X-Correlation-ID`; 403s also list
`rule_ids`. A request without a valid `X-Correlation-ID` gets one here, which the app then
uses, so that the WAF's log lines and the app's records share it. Every block is logged (rule
ids, client IP, correlation ID; never request content) and managed or bot blocks are audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.config import Settings
from bastion.core.context import CORRELATION_HEADER, RequestContext, accept_correlation_id
from bastion.edge import limits as size
from bastion.edge.allowlist import PathAllowList, RouteSource, app_routes
from bastion.edge.body import buffer_body, declared_length, replay
from bastion.edge.clientip import UNKNOWN, ClientAddressResolver, rate_key
from bastion.edge.engine import (
    BOT,
    MANAGED,
    PATH_ALLOWLIST,
    RATE,
    SIZE,
    Detectors,
    Verdict,
    WafEngine,
)
from bastion.edge.ratebased import IpRateRule, build_ip_limiter
from bastion.protocol.endpoints import MESSAGE_PATHS
from bastion.protocol.http_errors import ApiError, error_response
from bastion.security import AuditSink, OutcomeRecorder, RateLimiter

WAF_OUTCOME = "denied:waf"  # the audit outcome and metrics outcome of a refusal

log = structlog.get_logger("bastion.waf")

_CID = CORRELATION_HEADER.encode("latin-1")
_XFF = b"x-forwarded-for"
_FORBIDDEN_MESSAGE = (
    "the request was refused by the web application firewall: if it is legitimate, "
    "quote the correlation ID to an operator"
)


def refusal(verdict: Verdict) -> ApiError:
    """The caller's view of a block."""
    group = verdict.blocked_by
    if group == RATE:
        return ApiError(
            429,
            "rate_limited",
            "too many requests from this address: retry after Retry-After seconds",
            headers={"Retry-After": str(max(1, verdict.retry_after))},
        )
    if group == SIZE:
        what = size.describe(verdict.rule_ids[0])
        return ApiError(
            413,
            "too_large",
            f"{what} is over this endpoint's limit of {verdict.limit} bytes: send a smaller one",
        )
    if group in (MANAGED, BOT):
        return ApiError(403, "forbidden", _FORBIDDEN_MESSAGE)
    return ApiError(404, "not_found", "no such endpoint: check the path against the API")


def refusal_response(verdict: Verdict, correlation_id: str) -> JSONResponse:
    fields = {"rule_ids": verdict.rule_ids} if verdict.blocked_by in (MANAGED, BOT) else {}
    return error_response(
        refusal(verdict), correlation_id, headers={"X-Correlation-ID": correlation_id}, **fields
    )


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == name]


def _uri(scope: Scope) -> tuple[bytes, bytes]:
    """The request's raw path and query string, as sent."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    return raw_path, scope.get("query_string", b"")


def _with_correlation_id(scope: Scope, correlation_id: str) -> Scope:
    """The scope with exactly one `X-Correlation-ID` header, ours."""
    headers = [(k, v) for k, v in scope["headers"] if k != _CID]
    headers.append((_CID, correlation_id.encode("latin-1")))
    return {**scope, "headers": headers}


class WafMiddleware:
    """Runs the rule groups on each request, then passes it on or refuses it."""

    def __init__(
        self,
        app: ASGIApp,
        engine: WafEngine,
        *,
        allowlist: PathAllowList,
        limits: size.SizeLimits,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.engine = engine
        self.allowlist = allowlist
        self.limits = limits
        self.recorder = OutcomeRecorder(engine.agent, audit)
        self.resolver = ClientAddressResolver(engine.settings.trusted_proxies)
        self.rate = IpRateRule(engine.settings, clock, rate_limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        cid_values = _header_values(scope, _CID)
        correlation_id = accept_correlation_id(cid_values[0] if len(cid_values) == 1 else None)
        client = scope.get("client")
        addr = self.resolver.resolve(client[0] if client else None, _header_values(scope, _XFF))
        ip = str(addr) if addr is not None else UNKNOWN
        verdict = Verdict()
        blocked = await self._head_rules(scope, verdict, rate_key(addr) if addr else UNKNOWN)
        if not blocked and scope["type"] == "http":
            blocked, receive, body = await self._body_rules(scope, verdict, receive)
            if body is None:  # the client went away while sending
                return
        else:
            body = b""
        if not blocked and self.engine.needs_content():
            blocked = self._content_rules(scope, verdict, body)
        if verdict.counted():
            log.info(
                "waf.counted",
                agent=self.engine.agent,
                rule_ids=[f.match.rule_id for f in verdict.counted()],
                client_ip=ip,
                correlation_id=correlation_id,
            )
        if blocked:
            await self._refuse(scope, receive, send, verdict, ip, correlation_id, started)
            return
        await self.app(_with_correlation_id(scope, correlation_id), receive, send)

    # -- rules -------------------------------------------------------------------------------

    async def _head_rules(self, scope: Scope, verdict: Verdict, key: str) -> bool:
        engine = self.engine
        if engine.enabled(PATH_ALLOWLIST) and engine.path(verdict, self.allowlist.allows(scope)):
            return True
        if engine.enabled(RATE) and engine.rate(verdict, await self.rate.hit(key)):
            return True
        if not engine.enabled(SIZE):
            return False
        raw_path, query = _uri(scope)
        uri_len = len(raw_path) + (len(query) + 1 if query else 0)
        return engine.size(
            verdict, self.limits.head_violations(uri_len, len(query), scope["headers"])
        )

    async def _body_rules(
        self, scope: Scope, verdict: Verdict, receive: Receive
    ) -> tuple[bool, Receive, bytes | None]:
        """(blocked, the receive to hand the app, the body to inspect or None: client gone)."""
        engine = self.engine
        limit = self.limits.body_limit(scope["path"])
        over = [(size.BODY_RULE, limit)]
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            # Refused unread; in COUNT or OFF mode it streams through uninspected.
            return engine.size(verdict, over), receive, b""
        if not (engine.enabled(SIZE) or engine.needs_content()):
            return False, receive, b""
        body = await buffer_body(receive, limit)
        if body.disconnected:
            return False, receive, None
        if body.over:
            return engine.size(verdict, over), replay(body, receive), b""
        return False, replay(body, receive), body.data

    def _content_rules(self, scope: Scope, verdict: Verdict, body: bytes) -> bool:
        raw_path, query = _uri(scope)
        uri = (raw_path + (b"?" + query if query else b"")).decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        method = scope.get("method", "GET")
        req = self.engine.detectors.parse(method, uri, headers, body)
        return self.engine.content(verdict, req)

    # -- refusal -----------------------------------------------------------------------------

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        verdict: Verdict,
        ip: str,
        correlation_id: str,
        started: float,
    ) -> None:
        req = RequestContext(
            agent=self.engine.agent, correlation_id=correlation_id, client=ip, headers={}
        )
        method = f"waf.{verdict.blocked_by}"  # a bounded label: one per rule group
        blocking = [f.match for f in verdict.findings if f.action == verdict.action]
        # The console's summaries read the rule ids back from this exact form (`waf_rules`).
        reason = "rules: " + ", ".join(f"{m.rule_id}@{m.target}" for m in blocking)
        log.warning(
            "waf.blocked",
            agent=self.engine.agent,
            group=verdict.blocked_by,
            rule_ids=verdict.rule_ids,
            status=verdict.status,
            client_ip=ip,
            correlation_id=correlation_id,
        )
        await self.recorder.record(
            req,
            method=method,
            outcome=WAF_OUTCOME,
            status=verdict.status,
            started=started,
            detail=reason,
            audited=verdict.blocked_by in (MANAGED, BOT),  # floods of 429/413/404 are not
        )
        response = refusal_response(verdict, correlation_id)
        if scope["type"] == "http":
            await response(scope, receive, send)
        else:
            await _deny_websocket(scope, receive, send, response)


async def _deny_websocket(
    scope: Scope, receive: Receive, send: Send, response: JSONResponse
) -> None:
    """Refuse a WebSocket handshake: the HTTP error if the server can send one, else 1008."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": "refused by the WAF"})
        return
    await send(
        {
            "type": "websocket.http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "websocket.http.response.body", "body": response.body})


def protect(
    app: ASGIApp,
    settings: Settings,
    *,
    agent: str,
    audit: AuditSink | None = None,
    routes: RouteSource | None = None,
    paths: Iterable[str] = (),
    detectors: Detectors | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    """`app` behind the WAF configured in `settings.waf` (or `app` itself when disabled).

    `routes` is the route table to allow (default: `app`'s own) and `paths` fixed paths the
    app serves outside it; `waf.extra_paths` is added to both. The per-IP counts are shared
    through Redis when the rate limits use Redis (see `ratebased`).
    """
    waf = settings.waf
    if not waf.enabled:
        return app
    return WafMiddleware(
        app,
        WafEngine(waf, agent=agent, detectors=detectors),
        allowlist=PathAllowList(routes or app_routes(app), [*paths, *waf.extra_paths]),
        limits=size.SizeLimits.from_settings(settings),
        audit=audit,
        clock=clock,
        rate_limiter=build_ip_limiter(settings, clock),
    )


def protect_agent(
    server: ASGIApp, router: object, settings: Settings, *, agent: str, audit: AuditSink | None
) -> ASGIApp:
    """An agent's app behind the WAF when `agents.<agent>.public` is set, else `server` itself.

    Agents not at the public edge are called only by authenticated principals, which have
    their own rate limits, so they are not wrapped. `router` is the Starlette app holding the
    agent's plain routes; `/message` is served outside it.
    """
    endpoint = settings.agents.get(agent)
    if endpoint is None or not endpoint.public:
        return server
    return protect(
        server, settings, agent=agent, audit=audit, routes=app_routes(router), paths=MESSAGE_PATHS
    )

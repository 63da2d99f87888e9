"""An agent = a method registry + the runtime around it: server, security stack, card, health.

`AgentApp` is the ASGI app for one agent. With `security=False` it serves the same methods with
no pipeline and no audit (used only to measure the cost of security in the benchmark), and no
`GET /metrics`, which is only ever served behind the security stack. An agent configured
`public` (`agents.<name>.public`) is served behind the edge WAF (`bastion.edge.middleware`).
Every answer, the WAF's refusals included, counts in `bastion_http_responses_total` by route
template (`bastion.runtime.http_metrics`).
Tracing (`observability` settings) is started for the process when the app is built; with the
security stack the app also serves `GET /traces/{trace_id}` (authorized as `<agent>.traces`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from bastion._version import __version__
from bastion.config import Settings
from bastion.core.audit_entry import AuditSink
from bastion.edge.middleware import protect_agent
from bastion.protocol.agent_card import build_agent_card
from bastion.protocol.endpoints import MESSAGE_PATHS
from bastion.runtime.http_guard import Guard
from bastion.runtime.http_metrics import count_responses
from bastion.runtime.methods import MethodRegistry
from bastion.runtime.metrics_endpoint import metrics_route
from bastion.runtime.server import AgentServer, ReadinessCheck, run_checks
from bastion.runtime.traces import start_tracing, traces_route
from bastion.security import JWKS_PATH, TOKEN_PATH, SecurityStack, build_security, database_ready

Hook = Callable[[], Awaitable[None]]


CARD_PATH = "/.well-known/agent-card.json"
# The plain routes counted in the metrics, by the `method` label they are counted under
# (`/metrics` is counted by its own guard, like the gateway's routes).
HTTP_LABELS = {
    CARD_PATH: "agent_card",
    "/healthz": "healthz",
    "/readyz": "readyz",
    TOKEN_PATH: "oauth_token",
    JWKS_PATH: "jwks",
}


class AgentConfigError(Exception):
    """An agent is missing configuration it needs; the message says what to add."""


@dataclass
class AgentDefinition:
    """What an agent is: its name, its methods and how it describes itself."""

    name: str
    description: str
    registry: MethodRegistry
    skills: list[dict[str, Any]] = field(default_factory=list)
    version: str = __version__
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    # Told the agent's audit sink once it is served with the security stack, for records the
    # agent writes on its own account (a research source the guardrails quarantined).
    on_audit: list[Callable[[AuditSink], None]] = field(default_factory=list)


class AgentApp:
    """The ASGI application serving one agent."""

    def __init__(
        self,
        definition: AgentDefinition,
        settings: Settings,
        *,
        security: bool = True,
        anonymous_principal: str | None = None,
        public_url: str | None = None,
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.stack: SecurityStack | None = (
            build_security(definition.name, settings, anonymous_principal=anonymous_principal)
            if security
            else None
        )
        self.public_url = public_url
        if self.stack is not None:
            for told in definition.on_audit:
                told(self.stack.audit.record)
        self._card_cache: tuple[bytes, str] | None = None
        self.checks: list[tuple[str, ReadinessCheck]] = []
        if security:
            self.checks.append(("database", lambda: database_ready(settings)))
            limiter = self.stack.limiter if self.stack else None
            if limiter is not None and hasattr(limiter, "ping"):
                self.checks.append(("redis", limiter.ping))
        routes: list[BaseRoute] = [
            Route(CARD_PATH, self._card, methods=["GET"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/readyz", self._readyz, methods=["GET"]),
        ]
        if self.stack is not None:
            routes.extend(self.stack.routes)
            guard = Guard(definition.name, self.stack.pipeline, self.stack.audit)
            routes.append(metrics_route(guard))
            routes.append(traces_route(guard))
        self.tracing = start_tracing(settings, definition.name)
        inner = Starlette(routes=routes, lifespan=self._lifespan)
        self.server = AgentServer(
            name=definition.name,
            registry=definition.registry,
            app=inner,
            pipeline=self.stack.pipeline if self.stack else None,
            audit=self.stack.audit if self.stack else None,
            max_body_bytes=settings.server.max_body_bytes,
            max_batch=settings.server.max_batch,
            http_labels=HTTP_LABELS,
            tracing=self.tracing,
        )
        # An agent configured `public` is served behind the edge WAF.
        self.edge = protect_agent(
            self.server,
            inner,
            settings,
            agent=definition.name,
            audit=self.stack.audit if self.stack else None,
        )
        # Outermost: every answer counts, the WAF's refusals included.
        self.counted = count_responses(
            self.edge, definition.name, router=inner, paths=MESSAGE_PATHS
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.counted(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        if self.stack is not None:
            await self.stack.start()
        for hook in self.definition.on_startup:
            await hook()
        try:
            yield
        finally:
            for hook in reversed(self.definition.on_shutdown):
                await hook()
            if self.stack is not None:
                await self.stack.close()
            if self.tracing is not None:
                await asyncio.to_thread(self.tracing.flush)

    # -- routes ------------------------------------------------------------------------------

    def _card_bytes(self, request: Request) -> tuple[bytes, str]:
        if self._card_cache is None:
            base = self.public_url or str(request.base_url).rstrip("/")
            card = build_agent_card(
                name=self.definition.name,
                description=self.definition.description,
                version=self.definition.version,
                url=f"{base}/message",
                skills=self.definition.skills,
            )
            body = orjson.dumps(card)
            self._card_cache = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        return self._card_cache

    async def _card(self, request: Request) -> Response:
        body, etag = self._card_bytes(request)
        headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def _healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "alive", "agent": self.definition.name})

    async def _readyz(self, _request: Request) -> Response:
        ok, results = await run_checks(self.checks)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": results},
            status_code=200 if ok else 503,
        )

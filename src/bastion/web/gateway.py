"""The gateway: the pipeline's HTTP API for people and scripts (`build_gateway(settings)`).

    POST   /api/documents            upload a PDF (multipart, field `file`)   upload_document
    GET    /api/documents            list: ?status=&cursor=&limit=            list_documents
    GET    /api/documents/{id}       status, outcome, fields, history         get_document
    GET    /api/documents/{id}/file  the original bytes                       get_file
    DELETE /api/documents/{id}       remove data (and unshared bytes)         delete_document
    GET    /healthz                  liveness (no credential)
    WS     /ws/events                live pipeline events (see `bastion.web.events`)    events
    POST   /api/research             ask a research question: 202 {id, conversation_id}   research
    GET    /api/research/{id}        a run's status and result                        research
    POST   /api/research/{id}/cancel cancel a run                                     research
    GET    /api/conversations        the caller's conversations: ?cursor=&limit=  conversations
    GET    /api/conversations/{id}   a conversation and its turns                 conversations
    WS     /ws/research              ask and follow a run live (`bastion.web.research_ws`) research
    POST   /mcp                      the archive over MCP (`bastion.web.mcp_archive`)  mcp.<tool>
    GET    /metrics                  Prometheus metrics, queue and archive included   metrics
    GET    /traces/{trace_id}        this process's spans of a trace (docs/tracing.md)  traces
    GET    /, /login, /console/...   the operator's console (`bastion.web.console`)  console_<view>

Answers are JSON and carry the request's correlation ID in `X-Correlation-ID` and, except for
the document itself (whose `correlation_id` is its upload's, the ID that traces its processing),
in the body too. Errors are `{"error": {"code", "message"}, "correlation_id"}`.

A document's `id` is opaque (one upload, one owner); `sha256` names its bytes. A caller sees
the documents it owns, all of them only with `gateway.read_all_documents`; another owner's is a
404 like a missing one, audited `denied:not_owner` (see `bastion.web.ownership`).

Before any of that, every request passes the edge WAF (`bastion.edge.middleware`, settings
`waf`): path allow-list (404), per-IP rate (429), size limits (413), managed and bot rules (403).
Every API request is authenticated, authorized as `gateway.<action>` (the right-hand column),
rate limited and audited by `Guard`. Uploads go through `Ingest` (the archivist's upload
record, object store, queue); deletions, reads, live events and document counts go to the
Archivist agent: the gateway never opens the archive's tables. Its calls carry the gateway's own
credential (`pipeline.gateway_api_key`) and the request's correlation ID. Research goes to the
research agent, with that credential and a delegation naming the asking principal
(`bastion.web.research`). With `pipeline.watch_dir` set, the gateway also runs the
watched-folder ingester.

Settings read: `agents.archivist.url`, `agents.research.url`, `pipeline.gateway_api_key`,
`pipeline.max_upload_bytes`,
`pipeline.objects_dir`, `pipeline.queue_url` (and its retention settings), `pipeline.watch_dir`,
`pipeline.watch_patterns`, `client`, and the security sections (`auth`, `policy`,
`rate_limit`, `audit`, `database`), and `waf`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from bastion.alarms import AlarmService
from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.edge.middleware import protect
from bastion.pipeline import (
    ArchiveCalls,
    ArchiveUnavailable,
    EventFeed,
    FolderWatcher,
    Ingest,
    ScrapeCollector,
    UploadRejected,
    WatchLedger,
    credential,
    peer_url,
    pipeline_collector,
)
from bastion.protocol.http_errors import ApiError, error_response, not_found
from bastion.runtime import (
    AgentClient,
    Endpoint,
    Guard,
    count_responses,
    json_response,
    metrics_route,
    start_tracing,
    traces_route,
)
from bastion.security import SecretValue, build_security
from bastion.storage import ObjectNotFoundError, shared_engine
from bastion.web.archivist import call_archivist, unavailable
from bastion.web.console import Console, ConsoleDeps, ConsoleSessions, Pages, Sessions
from bastion.web.console.trace_source import trace_source
from bastion.web.console.views import view_routes
from bastion.web.console.views.audit import audit_path_source
from bastion.web.events import EventsEndpoint
from bastion.web.mcp_archive import PATH as MCP_PATH
from bastion.web.mcp_archive import McpArchive
from bastion.web.ownership import owner_scope
from bastion.web.params import document_id, list_params
from bastion.web.research import (
    CONVERSATIONS_ACTION,
    RESEARCH_ACTION,
    ResearchCalls,
    ResearchRoutes,
)
from bastion.web.research_ws import ResearchSocket
from bastion.web.storage import in_storage, pdf_response, storage_errors
from bastion.web.upload import read_upload, rejected
from bastion.web.ws_auth import hide_query_token

NAME = "gateway"


def gateway_api_key(settings: Settings) -> SecretValue:
    """The gateway's own credential for its calls to the Archivist."""
    ref = settings.pipeline.gateway_api_key
    return credential(settings, "pipeline.gateway_api_key", ref, "gateway")


def by_method(**endpoints: Endpoint) -> Endpoint:
    """One endpoint serving several methods of a path (HEAD is served as GET), so that the
    path's `Allow` header lists them all."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint


class Gateway:
    """The gateway's state (security stack, ingest, archivist client, watcher) and routes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stack = build_security(NAME, settings)
        self.guard = Guard(NAME, self.stack.pipeline, self.stack.audit)
        self.tracing = start_tracing(settings, NAME)
        self.archivist = AgentClient(
            peer_url(settings, NAME, "archivist"),
            api_key=gateway_api_key(settings),
            settings=settings.client,
            principal=NAME,
            audit=self.stack.audit.record,
        )
        self.archive = ArchiveCalls(self.archivist)
        self.alarms = AlarmService.from_settings(
            settings, api_key=gateway_api_key(settings), audit=self.stack.audit.record
        )
        self.ingest = Ingest(settings, self.archive)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events = EventFeed(
            self.archive.watch_events,
            retry_seconds=settings.events.poll_interval_seconds,
            queue_size=settings.events.queue_size,
            max_per_principal=settings.events.max_subscriptions_per_principal,
        )
        self.events_endpoint = EventsEndpoint(
            self.guard,
            self.events,
            self.stack.policy,
            settings.events,
            credentials=self.stack.credentials,
        )
        self.mcp = McpArchive(self.guard, self.stack.policy, self.archivist)
        self.research = ResearchCalls(settings, self.stack, gateway_api_key(settings))
        self.research_routes = ResearchRoutes(self.research)
        self.research_socket = ResearchSocket(
            self.guard,
            self.research,
            self.stack.policy,
            settings.events,
            credentials=self.stack.credentials,
        )

    def app(self) -> Starlette:
        protect = self.guard.protect
        documents = by_method(
            GET=protect("list_documents", self.list_documents),
            POST=protect("upload_document", self.upload_document),
        )
        document = by_method(
            GET=protect("get_document", self.get_document),
            DELETE=protect("delete_document", self.delete_document),
        )
        routes = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/api/documents", documents, methods=["GET", "POST"]),
            Route("/api/documents/{id}", document, methods=["GET", "DELETE"]),
            Route("/api/documents/{id}/file", protect("get_file", self.get_file), methods=["GET"]),
            WebSocketRoute("/ws/events", self.events_endpoint.handle),
            Route(MCP_PATH, self.mcp, methods=["GET", "POST", "DELETE"]),
            *self._research_routes(),
            metrics_route(self.guard, self._pipeline_metrics()),
            traces_route(self.guard),
            *self._console_routes(),
        ]
        console = self.settings.console
        return Starlette(
            routes=routes,
            lifespan=self.lifespan,
            exception_handlers={HTTPException: self.http_error},
            middleware=[
                Middleware(
                    ConsoleSessions,
                    sessions=Sessions(self.stack),
                    allowed_origins=console.allowed_origins,
                )
            ]
            if console.enabled
            else [],
        )

    def _console_routes(self) -> list[BaseRoute]:
        """The operator's console (`bastion.web.console`), unless `console.enabled` is off."""
        if not self.settings.console.enabled:
            return []
        deps = ConsoleDeps(
            settings=self.settings,
            stack=self.stack,
            guard=self.guard,
            pages=Pages(self.stack.policy),
            archivist=self.archivist,
            queue=self.ingest.queue,
            research=self.research,
            scope=self._scope,
            alarms=self.alarms,
            trace=trace_source(self.settings, NAME, gateway_api_key(self.settings)),
            audit_path=audit_path_source(self.settings),
        )
        return Console(deps).routes(view_routes(deps))

    def _research_routes(self) -> list[BaseRoute]:
        protect, research = self.guard.protect, self.research_routes
        return [
            Route("/api/research", protect(RESEARCH_ACTION, research.start), methods=["POST"]),
            Route("/api/research/{id}", protect(RESEARCH_ACTION, research.get), methods=["GET"]),
            Route(
                "/api/research/{id}/cancel",
                protect(RESEARCH_ACTION, research.cancel),
                methods=["POST"],
            ),
            Route(
                "/api/conversations",
                protect(CONVERSATIONS_ACTION, research.conversations),
                methods=["GET"],
            ),
            Route(
                "/api/conversations/{id}",
                protect(CONVERSATIONS_ACTION, research.conversation),
                methods=["GET"],
            ),
            WebSocketRoute("/ws/research", self.research_socket.handle),
        ]

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        await self.stack.start()
        await self.events.start()
        await self.alarms.start()  # nothing when `alarms.enabled` is off
        stop = asyncio.Event()
        watcher = self._start_watcher(stop)
        try:
            async with self.mcp.running():
                yield
        finally:
            stop.set()
            if watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self.alarms.close()
            await self.events.close()
            await self.archivist.aclose()
            await self.research.aclose()
            self.ingest.close()
            if self.tracing is not None:
                await asyncio.to_thread(self.tracing.flush)
            await self.stack.close()

    def _start_watcher(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        if not self.settings.pipeline.watch_dir:
            return None
        ledger = WatchLedger(shared_engine(self.settings.database_url()))
        watcher = FolderWatcher(self.settings, self.ingest, ledger, audit=self.stack.audit.record)
        return asyncio.create_task(watcher.run(stop))

    def _pipeline_metrics(self) -> ScrapeCollector:
        """Queue depth, DLQ size and documents by status, read when `/metrics` is scraped."""
        ttl = self.settings.metrics.cache_seconds
        return pipeline_collector(self.ingest.queue, self._document_counts, ttl=ttl)

    def _document_counts(self) -> dict[str, int]:
        """Documents by status from the archivist (`archivist.stats`); runs in the scrape's
        thread, so it hands the call to the gateway's loop and waits for it."""
        if self._loop is None:
            raise RuntimeError("the gateway is not running")
        call = asyncio.run_coroutine_threadsafe(self.archive.stats(), self._loop)
        return call.result(timeout=self.settings.client.timeout_seconds)

    def _scope(self, call: CallContext) -> str | None:
        """Whose documents the caller may see (None: everyone's)."""
        return owner_scope(self.stack.policy, call.principal)

    # -- routes ------------------------------------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "alive", "agent": NAME})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and methods answer in the same JSON shape as everything else."""
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            code, message = "method_not_allowed", f"this endpoint does not accept {request.method}"
        else:
            code, message = "not_found", "no such endpoint: see the gateway's API routes"
        err = ApiError(exc.status_code, code, message, headers=dict(exc.headers or {}))
        return error_response(err, None)

    async def upload_document(self, request: Request, call: CallContext) -> Response:
        data, filename = await read_upload(request, self.ingest.max_bytes)
        try:
            with storage_errors():
                result = await self.ingest.ingest(
                    data, filename, call.principal, call.correlation_id
                )
        except UploadRejected as exc:
            raise rejected(exc) from None
        except ArchiveUnavailable as exc:
            raise unavailable(str(exc)) from None
        body: dict[str, object] = {
            "id": result.id,
            "sha256": result.sha256,
            "status": result.status,
        }
        if result.outcome is not None:
            body["outcome"] = result.outcome
        return json_response(call, body, 202 if result.created else 200)

    async def list_documents(self, request: Request, call: CallContext) -> Response:
        params = {**list_params(request), "owner": self._scope(call)}
        page = await call_archivist(self.archivist, "list_documents", params)
        return json_response(call, page)

    async def get_document(self, request: Request, call: CallContext) -> Response:
        params = {"document_id": document_id(request), "owner": self._scope(call)}
        doc = await call_archivist(self.archivist, "get_document", params)
        return JSONResponse(doc)  # its correlation_id is the upload's, which traces processing

    async def get_file(self, request: Request, call: CallContext) -> Response:
        doc_id = document_id(request)
        params = {"document_id": doc_id, "owner": self._scope(call)}
        sha256 = (await call_archivist(self.archivist, "stored_file", params))["sha256"]
        try:
            fh = await in_storage(self.ingest.store.open, sha256)
        except ObjectNotFoundError:
            raise not_found() from None
        return await pdf_response(fh, doc_id)

    async def delete_document(self, request: Request, call: CallContext) -> Response:
        doc_id = document_id(request)
        params = {"document_id": doc_id, "owner": self._scope(call), "deleted_by": call.principal}
        await call_archivist(self.archivist, "delete_document", params)
        return json_response(call, {"id": doc_id, "deleted": True})


def build_gateway(settings: Settings) -> ASGIApp:
    """The gateway's ASGI app behind the edge WAF (`waf` settings); serve it with uvicorn (its
    lifespan starts and stops everything)."""
    gateway = Gateway(settings)
    router = gateway.app()
    app = protect(router, settings, agent=NAME, audit=gateway.stack.audit)
    app = hide_query_token(app)  # no layer, log line or rule inside sees a query token
    # Outermost: every answer counted by route template and status class, WAF refusals too.
    return count_responses(app, NAME, router=router)

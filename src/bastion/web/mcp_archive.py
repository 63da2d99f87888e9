"""The document archive over MCP: `POST /mcp` on the gateway (streamable HTTP, `McpArchive`).

Built on the official `mcp` SDK (`MCPServer`), served stateless with JSON answers: every HTTP
request stands alone, so no MCP session outlives the credential that opened it.

    tool search_documents {query, limit?}             archivist.search          mcp.search_documents
    tool list_documents   {status?, cursor?, limit?}  archivist.list_documents  mcp.list_documents
    tool get_document     {document_id}               archivist.get_document    mcp.get_document
    resource document://{id}                          archivist.get_document    mcp.get_document

Every HTTP request is authenticated first, by the security stack's request stages (an API key
in `X-API-Key` or a bearer token in `Authorization`, as for every route): a refusal is a 401 in
the gateway's JSON error shape, audited as `mcp.request`, before the body is read. Each tool
call and resource read is then authorized as `mcp.<tool>` (RBAC), rate limited as the method
`<tool>`, and audited (agent `gateway`, method `mcp.<tool>`) with its outcome. Reads go to the
Archivist like the REST routes' (`call_archivist`), scoped to the caller's own documents
unless it is granted `gateway.read_all_documents` (`owner_scope`); another owner's document is
"not found" exactly like a missing one, audited `denied:not_owner`.

A tool answers its result as JSON text (and as structured content); a refusal is a tool error
(`isError`) whose text is the REST API's `{"error": {"code", "message"}, "correlation_id"}`.
A resource read that fails is a JSON-RPC error with the same `code` and message in `data`.
Arguments that do not fit a tool's input schema are refused by the SDK before any of this.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import structlog
from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from bastion.core.context import (
    CORRELATION_HEADER,
    CallContext,
    RequestContext,
    accept_correlation_id,
    correlation_id_var,
)
from bastion.protocol.errors import (
    DEPENDENCY_UNAVAILABLE,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    RATE_LIMITED,
)
from bastion.protocol.http_errors import ApiError, error_response
from bastion.runtime import AgentClient, Guard, denied_error
from bastion.security import Denied, PolicyStore
from bastion.web.archivist import call_archivist
from bastion.web.ownership import owner_scope
from bastion.web.params import checked_document_id, checked_limit, list_filters

log = structlog.get_logger("bastion.gateway")

PATH = "/mcp"
AGENT = "mcp"  # the RBAC namespace: a tool is authorized as `mcp.<tool>`
SEARCH_ACTION = "search_documents"
LIST_ACTION = "list_documents"
GET_ACTION = "get_document"  # the tool and the `document://{id}` resource
TRANSPORT_ACTION = "request"  # an HTTP-level refusal (no or a bad credential): `mcp.request`
_SCOPE_KEY = "bastion.mcp.request"
# JSON-RPC codes of a failed resource read, by the REST API's status (MCP's own for not found).
RESOURCE_NOT_FOUND = -32002
_RPC_CODES = {
    400: INVALID_PARAMS,
    403: FORBIDDEN,
    404: RESOURCE_NOT_FOUND,
    429: RATE_LIMITED,
    503: DEPENDENCY_UNAVAILABLE,
}
_INTERNAL = ApiError(
    500,
    "internal_error",
    "the gateway failed on this call: quote the correlation ID to an operator",
)


class Refused(Exception):
    """A call answered with `err` (already audited)."""

    def __init__(self, err: ApiError, correlation_id: str) -> None:
        super().__init__(err.message)
        self.err = err
        self.correlation_id = correlation_id

    def body(self) -> dict[str, Any]:
        """The REST API's error body."""
        error = {"code": self.err.code, "message": self.err.message}
        return {"error": error, "correlation_id": self.correlation_id}


def request_context(scope: Scope) -> RequestContext:
    """The HTTP request as the security stages see it (agent `mcp`)."""
    request = Request(scope)
    client = request.client
    return RequestContext(
        agent=AGENT,
        correlation_id=accept_correlation_id(request.headers.get(CORRELATION_HEADER)),
        client=f"{client.host}:{client.port}" if client else "-",
        headers=dict(request.headers),
    )


@contextmanager
def sdk_leaves_logging_alone() -> Iterator[None]:
    """`MCPServer()` calls `logging.basicConfig` (a Rich handler on the root logger, level INFO),
    which acts only while the root logger has no handler: give it one for the while, so that
    Bastion's own logging set-up alone decides where and how records go."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def tool_result(value: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json_text(value))], structured_content=value
    )


class McpArchive:
    """The MCP server over the Archivist, and the ASGI endpoint that guards it."""

    def __init__(self, guard: Guard, policy: PolicyStore, archivist: AgentClient) -> None:
        self.guard = guard
        self.policy = policy
        self.archivist = archivist
        with sdk_leaves_logging_alone():
            self.server: MCPServer = MCPServer(
                "bastion-archive",
                instructions="Search, list and read the documents you uploaded to Bastion.",
            )
        self._register()
        # Builds the session manager (the returned app is not used: the gateway routes here).
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            # Callers authenticate with a header, never a cookie: a rebound page has no credential.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager: StreamableHTTPSessionManager = self.server.session_manager

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session manager, for the gateway's lifespan."""
        async with self.manager.run():
            yield

    # -- HTTP: authentication ---------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = request_context(scope)
        cid = req.correlation_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = (CORRELATION_HEADER.encode("latin-1"), cid)
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.guard.pipeline.admit_request(req)
        except Denied as denied:
            err = denied_error(denied, "use the archive over MCP")
            call = CallContext(request=req, method=TRANSPORT_ACTION)
            await self._record(call, err.outcome, err.status, err.detail or err.message)
            await error_response(err, req.correlation_id)(scope, receive, send_with_id)
            return
        scope[_SCOPE_KEY] = req
        await self.manager.handle_request(scope, receive, send_with_id)

    # -- each call: authorization, rate limit, audit -----------------------------------------

    async def _record(
        self, call: CallContext, outcome: str, status: int, detail: str | None = None
    ) -> None:
        await self.guard.recorder.record(
            call.request,
            method=f"{AGENT}.{call.method}",
            outcome=outcome,
            status=status,
            started=call.started,
            detail=detail,
        )

    async def _admitted(
        self, ctx: Context, action: str, run: Callable[[CallContext], Awaitable[Any]]
    ) -> Any:
        """`run(call)`'s result once the caller may `mcp.<action>`; `Refused` otherwise."""
        http = ctx.request_context.request
        req = http.scope.get(_SCOPE_KEY) if isinstance(http, Request) else None
        if not isinstance(req, RequestContext):  # not through __call__: never served
            raise MCPError(INTERNAL_ERROR, "the archive is served over the gateway's /mcp only")
        call = CallContext(request=req, method=action)
        token = correlation_id_var.set(req.correlation_id)
        try:
            await self.guard.pipeline.admit_call(call)
            result = await run(call)
        except Denied as denied:
            err = denied_error(denied, action)
        except ApiError as api_error:
            err = api_error
        except Exception:
            log.exception("mcp call failed", action=action)
            err = _INTERNAL
        else:
            await self._record(call, "ok", 200)
            return result
        finally:
            correlation_id_var.reset(token)
        await self._record(call, err.outcome, err.status, err.detail or err.message)
        raise Refused(err, req.correlation_id)

    async def _tool(
        self,
        ctx: Context,
        action: str,
        method: str,
        params: Callable[[CallContext], dict[str, Any]],
    ) -> CallToolResult:
        """A tool call: `archivist.<method>(params(call))` as JSON, or its refusal as a tool
        error."""

        async def run(call: CallContext) -> Any:
            return await call_archivist(self.archivist, method, params(call))

        try:
            result = await self._admitted(ctx, action, run)
        except Refused as refused:
            body = refused.body()
            return CallToolResult(
                content=[TextContent(type="text", text=json_text(body))],
                structured_content=body,
                is_error=True,
            )
        return tool_result(result)

    def _owner(self, call: CallContext) -> str | None:
        return owner_scope(self.policy, call.principal)

    # -- the tools and the resource ----------------------------------------------------------

    def _register(self) -> None:
        server = self.server

        @server.tool(name=SEARCH_ACTION)
        async def search_documents(ctx: Context, query: str, limit: int = 20) -> CallToolResult:
            """Full-text search of your documents (issuer, customer, invoice number, text and
            file name), best matches first: `{"results": [...]}`."""
            return await self._tool(
                ctx,
                SEARCH_ACTION,
                "search",
                lambda call: {
                    "owner": self._owner(call),
                    "query": query,
                    "limit": checked_limit(limit),
                },
            )

        @server.tool(name=LIST_ACTION)
        async def list_documents(
            ctx: Context,
            status: str | None = None,
            cursor: str | None = None,
            limit: int | None = None,
        ) -> CallToolResult:
            """Your documents, newest first, one page at a time: `{"documents": [...],
            "next_cursor"}`; pass `next_cursor` back as `cursor` for the next page. `status`:
            queued, processing, archived or failed."""
            return await self._tool(
                ctx,
                LIST_ACTION,
                "list_documents",
                lambda call: {**list_filters(status, cursor, limit), "owner": self._owner(call)},
            )

        @server.tool(name=GET_ACTION)
        async def get_document(ctx: Context, document_id: str) -> CallToolResult:
            """One document by its id (`doc_...`): status, outcome, fields, line items,
            findings and history."""
            return await self._tool(
                ctx, GET_ACTION, "get_document", lambda call: self._get_params(call, document_id)
            )

        @server.resource(
            "document://{id}",
            name="document",
            description="A document of yours by its id (doc_...), as JSON.",
            mime_type="application/json",
        )
        async def document(id: str, ctx: Context) -> str:
            async def run(call: CallContext) -> Any:
                return await call_archivist(
                    self.archivist, "get_document", self._get_params(call, id)
                )

            try:
                return json_text(await self._admitted(ctx, GET_ACTION, run))
            except Refused as refused:
                code = _RPC_CODES.get(refused.err.status, INTERNAL_ERROR)
                raise MCPError(code, refused.err.message, data=refused.body()) from None

    def _get_params(self, call: CallContext, document_id: str) -> dict[str, Any]:
        return {"document_id": checked_document_id(document_id), "owner": self._owner(call)}

"""The gateway's research API: runs and conversations, answered by the research agent.

    POST /api/research                   {"message", "mode"?, "conversation_id"?} -> 202  research
    GET  /api/research/{id}              the run: {"id", "status", "result"?, "error"?}   research
    POST /api/research/{id}/cancel       cancel the run: its status                       research
    GET  /api/conversations              ?cursor=&limit=: {"conversations", "next_cursor"}
                                                                                  conversations
    GET  /api/conversations/{id}         the conversation and its turns          conversations

The gateway calls the research agent (`agents.research.url`) with its own credential
(`pipeline.gateway_api_key`) and a delegation naming the asking principal
(`SecurityStack.acting_for`): the agent acts for that principal only, so another principal's
run or conversation is a 404 exactly like a missing one. `ResearchCalls` maps the agent's
answers to HTTP: RESEARCH_NOT_FOUND -> 404, invalid params -> 400, no answer, an open breaker or
a refusal of the gateway itself -> 503 `research_unavailable` with `Retry-After`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
import structlog
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from bastion.config import Settings
from bastion.core.context import CallContext, Identity
from bastion.protocol.errors import INVALID_PARAMS, RESEARCH_NOT_FOUND
from bastion.protocol.http_errors import ApiError, invalid, service_unavailable
from bastion.research.model import is_conversation_id, is_run_id
from bastion.research.protocol import (
    MAX_CONVERSATION_LIMIT,
    RESEARCH,
    ListConversationsParams,
    StartParams,
)
from bastion.runtime import AgentClient, AgentUnreachable, BreakerOpen, RpcCallError, json_response
from bastion.security import DelegationError, SecretValue, SecurityStack
from bastion.web.archivist import problems_text
from bastion.web.storage import RETRY_AFTER_SECONDS

log = structlog.get_logger("bastion.gateway")

RESEARCH_ACTION = "research"
CONVERSATIONS_ACTION = "conversations"
# The largest JSON body `POST /api/research` reads (a message is at most 4000 characters).
MAX_BODY_BYTES = 64 * 1024


def research_unavailable(reason: str) -> ApiError:
    return service_unavailable(
        "research_unavailable", "the research service", reason, RETRY_AFTER_SECONDS
    )


def _not_found(method: str) -> ApiError:
    """A missing run or conversation, or another principal's: the same answer."""
    if method in ("conversation", "start", "ask"):
        what, where = "conversation", "GET /api/conversations"
    else:
        what, where = "research run", "the `id` of POST /api/research's answer"
    return ApiError(404, "not_found", f"no {what} with this id: check it ({where})")


def _no_delegation(exc: DelegationError) -> ApiError:
    return ApiError(403, "forbidden", str(exc), outcome="denied:delegation", detail=str(exc))


def checked(model: type[BaseModel], data: Any) -> Any:
    """`data` validated as `model` (its JSON form), else 400 naming each problem (never the
    values)."""
    try:
        return model.model_validate(data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        raise invalid(problems_text(problems)) from None


def start_params(data: Any) -> dict[str, Any]:
    """A research request (`{"message", "mode"?, "conversation_id"?}`) checked, else 400."""
    if not isinstance(data, dict):
        raise invalid('send a JSON object: {"message": "...", "mode": "auto"}')
    params: dict[str, Any] = checked(StartParams, data)
    conversation = params.get("conversation_id")
    if conversation is not None and not is_conversation_id(conversation):
        raise invalid("conversation_id: not a conversation id (conv_...)")
    return params


class ResearchCalls:
    """The gateway's client of the research agent, every call on the asker's behalf."""

    def __init__(self, settings: Settings, stack: SecurityStack, api_key: SecretValue) -> None:
        self.stack = stack
        target = settings.agents.get(RESEARCH)
        self.client: AgentClient | None = None
        if target is not None and target.url:
            self.client = AgentClient(
                target.url,
                api_key=api_key,
                settings=settings.client,
                principal="gateway",
                audit=stack.audit.record,
            )

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _client(self) -> AgentClient:
        if self.client is None:
            raise research_unavailable("agents.research.url is not set")
        return self.client

    async def call(self, identity: Identity, method: str, params: dict[str, Any]) -> Any:
        """`research.<method>(params)` for `identity`'s principal; ApiError for anything but a
        result."""
        client = self._client()
        try:
            with self.stack.acting_for(identity):
                result = await client.call(method, params)
        except DelegationError as exc:
            raise _no_delegation(exc) from None
        except (RpcCallError, AgentUnreachable, BreakerOpen) as exc:
            raise _mapped(method, exc) from None
        if isinstance(result, dict):
            result.pop("metadata", None)
        return result

    async def stream(
        self, identity: Identity, method: str, params: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """The items of the streaming `research.<method>(params)` for `identity`'s principal
        (iterate it in one task); ApiError when the stream cannot be had or breaks."""
        client = self._client()
        try:
            with self.stack.acting_for(identity):
                async for item in client.stream(method, params):
                    yield item
        except DelegationError as exc:
            raise _no_delegation(exc) from None
        except (RpcCallError, AgentUnreachable, BreakerOpen) as exc:
            raise _mapped(method, exc) from None


def _mapped(method: str, exc: Exception) -> ApiError:
    if isinstance(exc, RpcCallError):
        if exc.code == RESEARCH_NOT_FOUND:
            return _not_found(method)
        if exc.code == INVALID_PARAMS:
            return invalid(problems_text(exc.data))
        log.warning("research refused the gateway", method=method, error=str(exc))
        return research_unavailable(f"research answered {exc}")
    log.warning("research unreachable", method=method, error=str(exc))
    return research_unavailable(str(exc))


def _identity(call: CallContext) -> Identity:
    identity = call.request.identity
    assert identity is not None  # the guard admitted the call
    return identity


def _run_id(request: Request) -> str:
    raw = str(request.path_params["id"])
    if not is_run_id(raw):
        raise invalid("not a run id: use the `id` of the research request's answer (run_...)")
    return raw


def _conversation_id(request: Request) -> str:
    raw = str(request.path_params["id"])
    if not is_conversation_id(raw):
        raise invalid("not a conversation id: use a `conversation_id` (conv_...)")
    return raw


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        return orjson.loads(body)
    except ValueError:
        raise invalid('the body is not JSON: send {"message": "...", "mode": "auto"}') from None


class ResearchRoutes:
    """The handlers of the research routes (mounted by the gateway behind `Guard.protect`)."""

    def __init__(self, calls: ResearchCalls) -> None:
        self.calls = calls

    async def start(self, request: Request, call: CallContext) -> Response:
        params = start_params(await _json_body(request))
        started = await self.calls.call(_identity(call), "start", params)
        return json_response(call, dict(started), 202)

    async def get(self, request: Request, call: CallContext) -> Response:
        run = await self.calls.call(_identity(call), "get", {"id": _run_id(request)})
        return json_response(call, dict(run))

    async def cancel(self, request: Request, call: CallContext) -> Response:
        run = await self.calls.call(_identity(call), "cancel", {"id": _run_id(request)})
        return json_response(call, dict(run))

    async def conversations(self, request: Request, call: CallContext) -> Response:
        query = request.query_params
        params: dict[str, Any] = {}
        if query.get("cursor"):
            params["cursor"] = query["cursor"]
        limit = query.get("limit")
        if limit:
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_CONVERSATION_LIMIT:
                raise invalid(f"limit must be a whole number from 1 to {MAX_CONVERSATION_LIMIT}")
            params["limit"] = int(limit)
        page = await self.calls.call(
            _identity(call), "conversations", checked(ListConversationsParams, params)
        )
        return json_response(call, dict(page))

    async def conversation(self, request: Request, call: CallContext) -> Response:
        params = {"id": _conversation_id(request)}
        found = await self.calls.call(_identity(call), "conversation", params)
        return json_response(call, dict(found))

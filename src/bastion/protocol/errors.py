"""Every error code Bastion puts on the wire, with its HTTP status, in one table.

JSON-RPC 2.0 reserves -32768..-32000. A2A v1.0 uses -32001..-32009. Bastion's own security
codes sit at -32040..-32045, clear of both. The README's error table is generated from
`ERROR_TABLE` so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# JSON-RPC 2.0
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# A2A v1.0
TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
PUSH_NOTIFICATION_NOT_SUPPORTED = -32003
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005
INVALID_AGENT_RESPONSE = -32006
EXTENDED_CARD_NOT_CONFIGURED = -32007
EXTENSION_SUPPORT_REQUIRED = -32008
VERSION_NOT_SUPPORTED = -32009

# Bastion security stages
UNAUTHENTICATED = -32040
FORBIDDEN = -32041
RATE_LIMITED = -32042
PAYLOAD_TOO_LARGE = -32043
EDGE_BLOCKED = -32044
SECURITY_UNAVAILABLE = -32045

# Bastion document pipeline
DOCUMENT_REJECTED = -32050
DOCUMENT_NOT_FOUND = -32051
DEPENDENCY_UNAVAILABLE = -32052

# Bastion research
RESEARCH_NOT_FOUND = -32060


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: int
    name: str
    http_status: int
    message: str
    meaning: str


ERROR_TABLE: tuple[ErrorSpec, ...] = (
    ErrorSpec(PARSE_ERROR, "ParseError", 200, "Parse error", "The body is not valid JSON."),
    ErrorSpec(
        INVALID_REQUEST,
        "InvalidRequest",
        200,
        "Invalid Request",
        "Not a JSON-RPC 2.0 request object (wrong `jsonrpc`, bad `id` type, ...).",
    ),
    ErrorSpec(
        METHOD_NOT_FOUND, "MethodNotFound", 200, "Method not found", "The agent has no such method."
    ),
    ErrorSpec(
        INVALID_PARAMS,
        "InvalidParams",
        200,
        "Invalid params",
        "The params do not match the method's signature.",
    ),
    ErrorSpec(
        INTERNAL_ERROR,
        "InternalError",
        200,
        "Internal error",
        "The handler failed; details are in the server log under the correlation ID.",
    ),
    ErrorSpec(
        TASK_NOT_FOUND,
        "TaskNotFoundError",
        200,
        "Task not found",
        "No such task for this principal.",
    ),
    ErrorSpec(
        TASK_NOT_CANCELABLE,
        "TaskNotCancelableError",
        200,
        "Task cannot be canceled",
        "The task is already in a terminal state.",
    ),
    ErrorSpec(
        PUSH_NOTIFICATION_NOT_SUPPORTED,
        "PushNotificationNotSupportedError",
        200,
        "Push Notification is not supported",
        "The agent does not send push notifications.",
    ),
    ErrorSpec(
        UNSUPPORTED_OPERATION,
        "UnsupportedOperationError",
        200,
        "This operation is not supported",
        "The agent does not implement this operation.",
    ),
    ErrorSpec(
        CONTENT_TYPE_NOT_SUPPORTED,
        "ContentTypeNotSupportedError",
        200,
        "Incompatible content types",
        "A part's media type is not accepted.",
    ),
    ErrorSpec(
        INVALID_AGENT_RESPONSE,
        "InvalidAgentResponseError",
        200,
        "Invalid agent response",
        "The agent produced an invalid response.",
    ),
    ErrorSpec(
        EXTENDED_CARD_NOT_CONFIGURED,
        "ExtendedAgentCardNotConfiguredError",
        200,
        "Extended agent card not configured",
        "No extended card is available.",
    ),
    ErrorSpec(
        EXTENSION_SUPPORT_REQUIRED,
        "ExtensionSupportRequiredError",
        200,
        "Extension support required",
        "The client must support a required extension.",
    ),
    ErrorSpec(
        VERSION_NOT_SUPPORTED,
        "VersionNotSupportedError",
        200,
        "Version not supported",
        "The `A2A-Version` header names a version we do not serve.",
    ),
    ErrorSpec(
        UNAUTHENTICATED,
        "Unauthenticated",
        401,
        "Unauthenticated",
        "Missing or invalid credential. Send `X-API-Key` or `Authorization: Bearer`.",
    ),
    ErrorSpec(
        FORBIDDEN,
        "Forbidden",
        403,
        "Forbidden",
        "The RBAC policy does not grant this method to the caller.",
    ),
    ErrorSpec(
        RATE_LIMITED,
        "RateLimited",
        429,
        "Rate limited",
        "Over the caller's quota; retry after `Retry-After` seconds.",
    ),
    ErrorSpec(
        PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        413,
        "Payload too large",
        "The body exceeds the size limit (default 1 MiB).",
    ),
    ErrorSpec(EDGE_BLOCKED, "EdgeBlocked", 403, "Blocked", "Blocked by the edge layer."),
    ErrorSpec(
        SECURITY_UNAVAILABLE,
        "SecurityUnavailable",
        503,
        "Service unavailable",
        "A security dependency (rate-limit store, key store) is unreachable; fails closed.",
    ),
    ErrorSpec(
        DOCUMENT_REJECTED,
        "DocumentRejected",
        200,
        "Document rejected",
        "The document cannot be processed; `data.reason` is the reason code (`encrypted`, ...).",
    ),
    ErrorSpec(
        DOCUMENT_NOT_FOUND,
        "DocumentNotFound",
        200,
        "Document not found",
        "No document with this id (or it was deleted).",
    ),
    ErrorSpec(
        DEPENDENCY_UNAVAILABLE,
        "DependencyUnavailable",
        200,
        "Dependency unavailable",
        "An agent this call needs is unreachable or failing; the worker retries with backoff.",
    ),
    ErrorSpec(
        RESEARCH_NOT_FOUND,
        "ResearchNotFound",
        200,
        "Research run or conversation not found",
        "No such run or conversation for the asking principal (another's answers the same).",
    ),
)

_BY_CODE = {spec.code: spec for spec in ERROR_TABLE}


def spec_for(code: int) -> ErrorSpec:
    return _BY_CODE[code]


class RpcError(Exception):
    """An error that becomes a JSON-RPC error object.

    `http_status` is 200 for JSON-RPC/A2A errors and the security status for Bastion's codes.
    `headers` are extra response headers (for example `Retry-After`).
    """

    def __init__(
        self,
        code: int,
        message: str | None = None,
        data: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        spec = _BY_CODE.get(code)
        self.code = code
        self.message = message or (spec.message if spec else "Error")
        self.data = data
        self.http_status = spec.http_status if spec else 200
        self.headers = headers or {}
        super().__init__(self.message)

    def to_error(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

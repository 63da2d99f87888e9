"""Strict JSON-RPC 2.0 framing: parse a body into calls, build responses.

Parsing never raises for a bad request: it returns a `ParsedBody` whose items are either a
valid `Call` or an `InvalidCall` carrying the error to answer with, so that one bad element of a
batch does not spoil the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from bastion.protocol.errors import INVALID_REQUEST, PARSE_ERROR, RpcError

JsonId = str | int | float | None

DEFAULT_MAX_BATCH = 50

_MISSING = object()


@dataclass(slots=True)
class Call:
    """One valid JSON-RPC request or notification."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: JsonId = None
    is_notification: bool = False


@dataclass(slots=True)
class InvalidCall:
    """One element that is not a valid request; answered with `error`."""

    error: RpcError
    id: JsonId = None


@dataclass(slots=True)
class ParsedBody:
    items: list[Call | InvalidCall] = field(default_factory=list)
    is_batch: bool = False
    # Set when the whole body is unusable (parse error, empty batch, batch too large).
    fatal: InvalidCall | None = None


def _valid_id(value: Any) -> bool:
    # bool is an int subclass in Python but not a JSON-RPC id.
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def parse_call(obj: Any) -> Call | InvalidCall:
    """Validate one request object."""
    if not isinstance(obj, dict):
        return InvalidCall(RpcError(INVALID_REQUEST, data="request must be a JSON object"))
    raw_id = obj.get("id", _MISSING)
    is_notification = raw_id is _MISSING
    rid: JsonId = None if is_notification else raw_id
    if not is_notification and not _valid_id(rid):
        return InvalidCall(RpcError(INVALID_REQUEST, data="id must be a string, number or null"))
    if obj.get("jsonrpc") != "2.0":
        return InvalidCall(RpcError(INVALID_REQUEST, data='jsonrpc must be exactly "2.0"'), rid)
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        return InvalidCall(RpcError(INVALID_REQUEST, data="method must be a non-empty string"), rid)
    params = obj.get("params")
    if params is not None and not isinstance(params, dict | list):
        return InvalidCall(RpcError(INVALID_REQUEST, data="params must be an object or array"), rid)
    return Call(method=method, params=params, id=rid, is_notification=is_notification)


def parse_body(body: bytes, max_batch: int = DEFAULT_MAX_BATCH) -> ParsedBody:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ParsedBody(fatal=InvalidCall(RpcError(PARSE_ERROR)))
    if isinstance(doc, list):
        if not doc:
            return ParsedBody(
                is_batch=True,
                fatal=InvalidCall(RpcError(INVALID_REQUEST, data="empty batch")),
            )
        if len(doc) > max_batch:
            return ParsedBody(
                is_batch=True,
                fatal=InvalidCall(
                    RpcError(INVALID_REQUEST, data=f"batch too large: at most {max_batch} calls")
                ),
            )
        return ParsedBody(items=[parse_call(obj) for obj in doc], is_batch=True)
    return ParsedBody(items=[parse_call(doc)])


def result_response(rid: JsonId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def error_response(rid: JsonId, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": error.to_error()}


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)

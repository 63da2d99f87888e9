"""The HTTP API's error shape: `{"error": {"code", "message"}, "correlation_id"}`.

The gateway's routes, the HTTP guard in front of any plain route (an agent's `/metrics` too)
and the edge WAF answer errors in this one shape, so it lives with the wire formats.

`code` is a short stable word (`not_found`, `too_large`, ...); `message` says what to do about
it and never contains a credential or a server-side reason that would help an attacker.
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answered to the caller as JSON with `status`.

    `outcome` is the audit outcome (default `error:<code>`), `detail` an internal reason for
    the audit record only, `headers` extra response headers (`Retry-After`, ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        outcome: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.outcome = outcome or f"error:{code}"
        self.detail = detail
        super().__init__(f"{status} {code}: {message}")


def error_response(
    err: ApiError,
    correlation_id: str | None,
    *,
    headers: dict[str, str] | None = None,
    **fields: object,
) -> JSONResponse:
    """The error as JSON; `fields` are added to the body (the WAF's `rule_ids`), `headers` to
    the error's own."""
    return JSONResponse(
        {
            "error": {"code": err.code, "message": err.message},
            **fields,
            "correlation_id": correlation_id,
        },
        status_code=err.status,
        headers={**err.headers, **(headers or {})},
    )


def not_found(what: str = "document") -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"no {what} with this id (it may have been deleted): check the id from the upload",
    )


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def service_unavailable(code: str, service: str, detail: str, retry_after: int) -> ApiError:
    """503 `code`: `service` ("the archive service") cannot be reached now; the caller retries
    after `retry_after` seconds. `detail` is for the audit record only."""
    return ApiError(
        503,
        code,
        f"{service} is unavailable: retry in a few seconds",
        headers={"Retry-After": str(retry_after)},
        detail=detail,
    )

"""The gateway's calls to the Archivist agent, with its answers mapped to HTTP errors.

DOCUMENT_NOT_FOUND -> 404 (audited as `denied:not_owner` when the document is another
owner's); invalid params -> 400 with the archivist's problem list; no answer,
an open breaker or a refusal of the gateway itself (its credential or grant) -> 503, logged for
the operator with the reason.
"""

from __future__ import annotations

from typing import Any

import structlog

from bastion.pipeline import NOT_OWNER
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, INVALID_PARAMS
from bastion.protocol.http_errors import ApiError, invalid, not_found, service_unavailable
from bastion.runtime import AgentClient, AgentUnreachable, BreakerOpen, RpcCallError
from bastion.web.ownership import not_owner
from bastion.web.storage import RETRY_AFTER_SECONDS

log = structlog.get_logger("bastion.gateway")


def problems_text(data: Any) -> str:
    """A JSON-RPC invalid-params problem list (`[{field, problem}]`) as one line."""
    if not isinstance(data, list):
        return "the request parameters are invalid"
    return "; ".join(
        f"{p.get('field', '?')}: {p.get('problem', 'invalid')}" for p in data if isinstance(p, dict)
    )


def unavailable(reason: str) -> ApiError:
    return service_unavailable(
        "archive_unavailable", "the archive service", reason, RETRY_AFTER_SECONDS
    )


async def call_archivist(client: AgentClient, method: str, params: dict[str, Any]) -> Any:
    """`archivist.<method>(params)`'s result (without the gateway's own quota metadata);
    ApiError for anything but a result."""
    try:
        result = await client.call(method, params)
    except RpcCallError as exc:
        if exc.code == DOCUMENT_NOT_FOUND:
            refused = isinstance(exc.data, dict) and exc.data.get("reason") == NOT_OWNER
            raise (not_owner() if refused else not_found()) from None
        if exc.code == INVALID_PARAMS:
            raise invalid(problems_text(exc.data)) from None
        log.warning("archivist refused the gateway", method=method, error=str(exc))
        raise unavailable(f"archivist answered {exc}") from None
    except (AgentUnreachable, BreakerOpen) as exc:
        log.warning("archivist unreachable", method=method, error=str(exc))
        raise unavailable(str(exc)) from None
    if isinstance(result, dict):
        result.pop("metadata", None)
    return result

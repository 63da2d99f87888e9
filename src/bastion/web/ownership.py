"""Object-level authorization on documents: whose documents a caller of the gateway may see.

A principal sees the documents it owns (its uploads); reading every owner's needs the explicit
grant `gateway.read_all_documents` (the shipped policy: `admin`). `owner_scope` is the one
place that decides it, for the API routes and the live event stream. Another owner's document
is answered exactly like a missing one (404 `not_found`) and audited as a denial,
`denied:not_owner`.
"""

from __future__ import annotations

from bastion.pipeline import NOT_OWNER, READ_ALL_ACTION, READ_ALL_AGENT
from bastion.protocol.http_errors import ApiError, not_found
from bastion.security import DENIED_PREFIX, PolicyStore


def owner_scope(policy: PolicyStore, principal: str) -> str | None:
    """The owner whose documents `principal` may see: itself, or None (every owner) when the
    policy grants it `gateway.read_all_documents`."""
    allowed, _reason = policy.decide(principal, READ_ALL_AGENT, READ_ALL_ACTION)
    return None if allowed else principal


def not_owner() -> ApiError:
    """Another owner's document: the caller's 404 for a missing one, audited as a denial."""
    missing = not_found()
    return ApiError(
        missing.status,
        missing.code,
        missing.message,
        outcome=DENIED_PREFIX + NOT_OWNER,
        detail=NOT_OWNER,
    )

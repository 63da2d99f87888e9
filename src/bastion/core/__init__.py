"""The vocabulary every layer shares: the request context (caller, correlation ID) and the
shape of an audit record. It imports nothing else of Bastion's."""

from __future__ import annotations

from bastion.core.audit_entry import AuditEntry, AuditSink
from bastion.core.context import (
    CORRELATION_HEADER,
    CallContext,
    Identity,
    RateInfo,
    RequestContext,
    accept_correlation_id,
    correlation_id_var,
    current_correlation_id,
    new_correlation_id,
    valid_correlation_id,
)

__all__ = [
    "CORRELATION_HEADER",
    "AuditEntry",
    "AuditSink",
    "CallContext",
    "Identity",
    "RateInfo",
    "RequestContext",
    "accept_correlation_id",
    "correlation_id_var",
    "current_correlation_id",
    "new_correlation_id",
    "valid_correlation_id",
]

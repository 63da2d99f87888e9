"""The egress perimeter: all outbound HTTP from agents goes through `egress_client`, which
enforces an `EgressPolicy` (host allow-lists, no private, loopback, link-local or cloud
metadata addresses unless explicitly allowed, http(s) only, redirects re-checked hop by hop,
DNS resolved once per request and the connection pinned to the checked address).

Model endpoints (`EgressPolicy.model_hosts`) are reachable only by `Purpose.MODEL` clients,
which only the guarded LLM provider (`bastion.llm`) builds; a test scans the source tree for
other uses of `Purpose.MODEL`.

A refused request raises `EgressDenied` (an `httpx.RequestError`) naming the rule and the
policy field to change; it is logged and, given an audit sink, audited.
"""

from __future__ import annotations

from bastion.egress.client import egress_client, egress_sync_client
from bastion.egress.policy import (
    AddressClass,
    EgressDenied,
    EgressPolicy,
    Purpose,
    Rule,
    Target,
    check_address,
    check_url,
    classify_address,
    origin_policy,
    parse_ip,
)
from bastion.egress.transport import (
    AsyncEgressTransport,
    AuditSink,
    EgressTransport,
    Resolver,
    system_resolver,
)

__all__ = [
    "AddressClass",
    "AsyncEgressTransport",
    "AuditSink",
    "EgressDenied",
    "EgressPolicy",
    "EgressTransport",
    "Purpose",
    "Resolver",
    "Rule",
    "Target",
    "check_address",
    "check_url",
    "classify_address",
    "egress_client",
    "egress_sync_client",
    "origin_policy",
    "parse_ip",
    "system_resolver",
]

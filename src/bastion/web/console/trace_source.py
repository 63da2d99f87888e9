"""A document's trace for the console: the spans of its correlation id, gathered from the gateway
and every agent, ordered as a tree (parents before children, `depth` set) for the waterfall.

A correlation id made by Bastion is the trace id (32 hex digits). A caller-supplied id of another
form is not: its spans carry it as an attribute under a trace id of their own, which the console
does not search for, so such a document's trace is "not available". Each agent is asked once
(one replica of a replicated agent: the others' spans are not shown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bastion.config import Settings
from bastion.core.context import is_trace_id
from bastion.pipeline import peer_url
from bastion.runtime import collect_trace
from bastion.security import SecretValue

TraceSource = Callable[[str], Awaitable[list[dict[str, Any]]]]


def as_tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`spans` (sorted by start) depth-first: each span followed by its children, `depth` set.
    A span whose parent is not among them is a root."""
    ids = {span.get("span_id") for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    ordered: list[dict[str, Any]] = []
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        ordered.append({**span, "depth": depth})
        stack.extend(
            (child, depth + 1) for child in reversed(children.get(span.get("span_id"), []))
        )
    return ordered


def _first(url: str | list[str]) -> str:
    return url if isinstance(url, str) else url[0]


def trace_source(settings: Settings, agent: str, api_key: SecretValue) -> TraceSource:
    """The console's `trace(correlation_id)`: every monitored agent's spans of that trace."""
    targets = [
        (name, _first(peer_url(settings, agent, name)))
        for name, endpoint in sorted(settings.agents.items())
        if endpoint.monitored
    ]

    async def trace(correlation_id: str) -> list[dict[str, Any]]:
        if not is_trace_id(correlation_id):
            return []
        collected = await collect_trace(targets, correlation_id, api_key)
        return as_tree(collected.spans)

    return trace

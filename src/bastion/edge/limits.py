"""Request size limits (HTTP 413): URI, query string and headers, and the body per route.

Body limits are set per path prefix, the longest matching prefix winning: `/message` (the
JSON-RPC endpoint) takes `server.max_body_bytes` (1 MiB), `/api/documents` (uploads)
`pipeline.max_upload_bytes` (25 MiB) plus the multipart framing allowance the gateway itself
grants, and any other path `waf.limits.body_bytes`; `waf.limits.routes` overrides or adds
prefixes. A prefix matches the path itself and everything below it (`/api/documents` covers
`/api/documents/{id}`, not `/api/documentsX`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bastion.config import Settings
from bastion.protocol.endpoints import MESSAGE_PATH

URI_RULE = "size.uri"
QUERY_RULE = "size.query"
HEADERS_RULE = "size.headers"
BODY_RULE = "size.body"

MESSAGE_PREFIX = MESSAGE_PATH
UPLOAD_PREFIX = "/api/documents"
# An upload's multipart framing on top of the file itself: boundaries, part headers and a few
# small extra fields (the gateway's upload route allows the same).
MULTIPART_ALLOWANCE = 64 * 1024

_WHAT = {
    URI_RULE: "the request URI",
    QUERY_RULE: "the query string",
    HEADERS_RULE: "the request headers",
    BODY_RULE: "the request body",
}


def describe(rule_id: str) -> str:
    """What a size rule measures, for error messages."""
    return _WHAT.get(rule_id, "the request")


@dataclass(frozen=True, slots=True)
class SizeLimits:
    uri_bytes: int
    query_bytes: int
    header_bytes: int
    body_bytes: int
    # (prefix, limit), longest prefix first
    routes: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> SizeLimits:
        limits = settings.waf.limits
        routes = {
            MESSAGE_PREFIX: settings.server.max_body_bytes,
            UPLOAD_PREFIX: settings.pipeline.max_upload_bytes + MULTIPART_ALLOWANCE,
            **limits.routes,
        }
        ordered = sorted(
            ((p.rstrip("/") or "/", n) for p, n in routes.items()), key=lambda r: -len(r[0])
        )
        return cls(
            limits.uri_bytes, limits.query_bytes, limits.header_bytes, limits.body_bytes,
            tuple(ordered),
        )  # fmt: skip

    def body_limit(self, path: str) -> int:
        """The body limit of the route serving `path`."""
        for prefix, limit in self.routes:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.body_bytes

    def head_violations(
        self, uri_len: int, query_len: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[str, int]]:
        """The size rules the request line and headers break, each with its limit."""
        out: list[tuple[str, int]] = []
        if uri_len > self.uri_bytes:
            out.append((URI_RULE, self.uri_bytes))
        if query_len > self.query_bytes:
            out.append((QUERY_RULE, self.query_bytes))
        if sum(len(k) + len(v) for k, v in headers) > self.header_bytes:
            out.append((HEADERS_RULE, self.header_bytes))
        return out

"""Offline evaluation: recorded requests judged by the configured rules, without a server.

Input is JSON Lines, one `{"method", "uri", "headers", "body"}` object per line (the OWASP CRS
test-case format; `headers` an object or a list of pairs, `body` a string; other keys are
ignored, and an optional `client_ip` names the client for the rate rule). Each request goes
through the same groups, in the same order and modes, as at the edge: size limits (the body
limit of the recorded path's route), managed rules and bot rules. Rule 0 (path allow-list) and
rule 1 (rate per client IP) run only with `edge=True`, since recorded paths rarely belong to
the app: the allowed paths are then `waf.extra_paths` plus the ones passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from bastion.config import Settings
from bastion.edge.allowlist import PathAllowList
from bastion.edge.clientip import parse_address, rate_key
from bastion.edge.engine import Detectors, Verdict, WafEngine
from bastion.edge.limits import BODY_RULE, SizeLimits
from bastion.edge.ratebased import IpRateRule

AGENT = "offline"
# Recorded requests without a `client_ip` all come from this documentation address.
DEFAULT_CLIENT_IP = "192.0.2.1"


class BadRecord(ValueError):
    """A line that is not a recorded request; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    client_ip: str = DEFAULT_CLIENT_IP


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    pairs = value.items() if isinstance(value, dict) else value
    try:
        return tuple((str(k), str(v)) for k, v in pairs)
    except (TypeError, ValueError):
        raise BadRecord("`headers` must be an object or a list of [name, value] pairs") from None


def parse_record(line: str | bytes) -> RecordedRequest:
    """One JSON line as a recorded request; BadRecord when it is not one."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRecord("expected a JSON object with method, uri, headers and body")
    method, uri, body = doc.get("method"), doc.get("uri"), doc.get("body", "")
    if not isinstance(method, str) or not method:
        raise BadRecord("`method` is missing or not a string")
    if not isinstance(uri, str) or not uri:
        raise BadRecord("`uri` is missing or not a string")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise BadRecord("`body` must be a string")
    client_ip = doc.get("client_ip")
    return RecordedRequest(
        method=method.upper(),
        uri=uri,
        headers=_headers(doc.get("headers")),
        body=body.encode("utf-8", "surrogateescape"),
        client_ip=client_ip if isinstance(client_ip, str) else DEFAULT_CLIENT_IP,
    )


class OfflineEvaluator:
    """Judges recorded requests one by one (the rate rule remembers earlier ones)."""

    def __init__(
        self,
        settings: Settings,
        *,
        edge: bool = False,
        allow: Iterable[str] = (),
        detectors: Detectors | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = WafEngine(settings.waf, agent=AGENT, detectors=detectors)
        self.limits = SizeLimits.from_settings(settings)
        self.edge = edge
        self.allowlist = PathAllowList(list, [*allow, *settings.waf.extra_paths])
        self.rate = IpRateRule(settings.waf, clock)

    async def evaluate(self, rec: RecordedRequest) -> Verdict:
        engine, verdict = self.engine, Verdict()
        parts = urlsplit(rec.uri)
        path = parts.path or "/"
        if self.edge and await self._edge_rules(verdict, rec, path):
            return verdict
        if engine.enabled("size"):
            raw_headers = [(k.encode("latin-1", "replace"), v.encode("latin-1", "replace"))
                           for k, v in rec.headers]  # fmt: skip
            head = self.limits.head_violations(
                len(rec.uri.encode("utf-8")), len(parts.query.encode("utf-8")), raw_headers
            )
            if engine.size(verdict, head):
                return verdict
        limit = self.limits.body_limit(path)
        body = rec.body
        if len(body) > limit:
            if engine.size(verdict, [(BODY_RULE, limit)]):
                return verdict
            body = b""
        if engine.needs_content():
            engine.content(verdict, engine.detectors.parse(rec.method, rec.uri, rec.headers, body))
        return verdict

    async def _edge_rules(self, verdict: Verdict, rec: RecordedRequest, path: str) -> bool:
        engine = self.engine
        allowed = self.allowlist.allows_path(rec.method, path)
        if engine.enabled("path_allowlist") and engine.path(verdict, allowed):
            return True
        if not engine.enabled("rate"):
            return False
        addr = parse_address(rec.client_ip)
        key = rate_key(addr) if addr is not None else rec.client_ip
        return engine.rate(verdict, await self.rate.hit(key))


def verdict_line(verdict: Verdict) -> dict[str, Any]:
    return {"action": verdict.action.value, "rule_ids": verdict.rule_ids}


def error_line(line_no: int, message: str) -> dict[str, Any]:
    return {"action": "ERROR", "line": line_no, "error": message}

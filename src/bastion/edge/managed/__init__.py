"""The managed rule set: attack detectors run over every inspected location of a request.

`managed_matches` walks the locations of an `InspectedRequest` (the URI path, query argument
names and values, headers, cookie names and values, body field names and values, upload file
names, a raw text body), decodes each value once into its variants (`_decode.variants`) and
runs the family detectors over them: `sqli`, `xss`, `lfi`, `rce`, `ssrf`, `log4shell`, plus
`protocol` checks on header grammar. Each family reports at most once per location; a match
names the location (``query:id``, ``header:referer``, ``body:items[0].name``,
``query-name``) but never the value. Rule ids are ``managed.<family>.<rule>``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

from bastion.edge.managed import lfi, log4shell, protocol, rce, sqli, ssrf, xss
from bastion.edge.managed._decode import variants
from bastion.edge.request import InspectedRequest
from bastion.edge.rules import RuleMatch

__all__ = ["clear_cache", "managed_matches"]

Detector = Callable[[tuple[str, ...]], str | None]
Detectors = tuple[tuple[str, Detector], ...]

# Headers whose syntax is fixed by HTTP and that applications do not interpret as data,
# or that carry credentials (never inspected as text, never logged).
_SKIPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "accept-language",
        "connection",
        "cookie",
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "cache-control",
        "pragma",
        "te",
        "keep-alive",
        "upgrade-insecure-requests",
        "if-modified-since",
        "if-none-match",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-fetch-user",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "priority",
        "dnt",
    }
)
# A WebSocket handshake's key: 16 random bytes in base64. Random base64 sometimes reads like a
# command; a key of any other shape is inspected like any header.
_WEBSOCKET_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")
_VALUE_DETECTORS: Detectors = (
    ("sqli", sqli.detect),
    ("xss", xss.detect),
    ("lfi", lfi.detect),
    ("rce", rce.detect),
    ("ssrf", ssrf.detect),
    ("log4shell", log4shell.detect),
)
_NAME_DETECTORS: Detectors = (
    ("sqli", sqli.detect_name),
    *_VALUE_DETECTORS[1:],
)
_PATH_DETECTORS: Detectors = (
    ("lfi", lfi.detect_path),
    *(item for item in _VALUE_DETECTORS if item[0] != "lfi"),
)
_FILENAME_DETECTORS: Detectors = (
    *_VALUE_DETECTORS,
    ("rce", rce.detect_filename),
)
_CACHE_ENTRIES = 8192
_CACHE_MAX_CHARS = 256
_UNSAFE_TARGET = re.compile(r"[^\w.\-\[\]@/$:]")
_MAX_TARGET_NAME = 64


def _name(name: str) -> str:
    """A location name safe to log: attacker-chosen names are shortened and restricted."""
    return _UNSAFE_TARGET.sub("_", name[:_MAX_TARGET_NAME])


def _locations(
    req: InspectedRequest,
) -> Iterator[tuple[str, str, tuple[tuple[str, Detector], ...]]]:
    yield "uri", req.path, _PATH_DETECTORS
    for name, value in req.query:
        yield "query-name", name, _NAME_DETECTORS
        yield f"query:{_name(name)}", value, _VALUE_DETECTORS
    for name, value in req.headers:
        if name in _SKIPPED_HEADERS or name.startswith("x-bastion-"):
            continue
        if name == "sec-websocket-key" and _WEBSOCKET_KEY.fullmatch(value):
            continue  # a random nonce (RFC 6455), only ever hashed: no text to inspect
        detectors = _FILENAME_DETECTORS if name in ("x-filename", "x-file-name") else None
        yield f"header:{_name(name)}", value, detectors or _VALUE_DETECTORS
    for name, value in req.cookies:
        yield "cookie-name", name, _NAME_DETECTORS
        yield f"cookie:{_name(name)}", value, _VALUE_DETECTORS
    for name, value in req.body_fields:
        yield "body-name", name, _NAME_DETECTORS
        detectors = _FILENAME_DETECTORS if name.endswith(":filename") else _VALUE_DETECTORS
        yield f"body:{_name(name)}", value, detectors
    if req.body_text:
        yield "body", req.body_text, _VALUE_DETECTORS


def _scan(value: str, detectors: Detectors) -> tuple[tuple[str, str], ...]:
    """(family, rule) for each family whose detector fires on `value`."""
    forms = variants(value)
    found = []
    for family, detect in detectors:
        rule = detect(forms)
        if rule is not None:
            found.append((family, rule))
    return tuple(found)


# Header values, cookie and parameter names and short values repeat from request to request
# (the same clients, the same JSON schemas): their verdicts are remembered, bounded in number
# and in length, since detection depends on nothing but the value.
_scan_short = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_scan)


def clear_cache() -> None:
    """Forget remembered verdicts (benchmarks measure cold paths with it)."""
    _scan_short.cache_clear()


def managed_matches(req: InspectedRequest) -> list[RuleMatch]:
    """Return the managed-rule matches for `req` (empty when nothing looks like an attack)."""
    matches: list[RuleMatch] = [
        RuleMatch(f"managed.protocol.{rule}", "managed", target)
        for rule, target in protocol.detect(req)
    ]
    seen: set[tuple[str, str]] = set()
    for target, value, detectors in _locations(req):
        if not value:
            continue
        scan = _scan_short if len(value) <= _CACHE_MAX_CHARS else _scan
        for family, rule in scan(value, detectors):
            if (family, target) not in seen:
                seen.add((family, target))
                matches.append(RuleMatch(f"managed.{family}.{rule}", "managed", target))
    return matches

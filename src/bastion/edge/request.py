"""Turning one raw HTTP request into the decoded fields the WAF detectors inspect.

`parse_request` never raises: a malformed part of a request (bad JSON, broken multipart,
invalid percent-encoding, invalid UTF-8) is kept as raw text for the detectors and noted in
`InspectedRequest.malformed`. What it produces:

* `path`: the URI path, percent-decoded once (dot segments are kept: they are evidence);
* `query`: the query arguments, names and values `+`/percent-decoded;
* `headers`: every header with a lower-case name; `cookies`: every cookie pair;
* `body_fields`: JSON leaves (under their key path such as ``items[0].name``; numbers,
  booleans and null as their text), form
  fields, multipart text fields and the file NAMES of multipart uploads (under
  ``<field>:filename``). The bytes of an upload whose declared type is an allowed binary type
  AND whose content starts with that type's signature (a real PDF, PNG, JPEG, GIF, WebP or ZIP)
  are not included; any other upload is inspected as text;
  XML text and attribute values are fields too, under their element path;
* `body_text`: the decoded body when it is not structured (text, an unknown type) or when its
  structure could not be parsed. A body without a declared type is inspected both as text and,
  when it holds ``=``, as form fields.

At most `MAX_INSPECT_BYTES` of a body (of a multipart body: of its text, all parts together;
the body itself is parsed whole) and `MAX_FIELDS` fields are inspected; `truncated` says that a
request went over, so that a caller can fail closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus, unquote_to_bytes

import orjson
from defusedxml import ElementTree as SafeET  # type: ignore[import-untyped]

__all__ = [
    "MAX_FIELDS",
    "MAX_HEADER_CHARS",
    "MAX_INSPECT_BYTES",
    "InspectedRequest",
    "parse_request",
]

MAX_INSPECT_BYTES = 1024 * 1024
MAX_FIELDS = 2048
MAX_HEADER_CHARS = 64 * 1024

Pairs = tuple[tuple[str, str], ...]
HeaderInput = Sequence[tuple[str | bytes, str | bytes]] | Mapping[str, str]

# Upload types whose bytes are not pattern-matched, with the signatures a real file starts with.
_BINARY_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/zip": (b"PK\x03\x04",),
}
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_JSON_TYPES = ("application/json", "text/json")
_FORM_TYPE = "application/x-www-form-urlencoded"
_XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class InspectedRequest:
    """The decoded, bounded view of one HTTP request that the WAF detectors inspect."""

    method: str
    raw_uri: str
    path: str
    query: Pairs
    headers: Pairs
    cookies: Pairs
    body_fields: Pairs
    body_text: str
    content_type: str
    user_agent: str | None
    raw_query: str = ""
    malformed: tuple[str, ...] = ()
    truncated: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key == lowered:
                return value
        return None


def parse_request(method: str, uri: str, headers: HeaderInput, body: bytes) -> InspectedRequest:
    """Decode `method`, `uri`, `headers` and `body` into an `InspectedRequest`; never raises."""
    malformed: list[str] = []
    header_pairs = _headers(headers)
    raw_path, _, raw_query = uri.partition("?")
    raw_query = raw_query.partition("#")[0]
    if _BAD_PERCENT.search(uri):
        malformed.append("uri:percent-encoding")
    path = _decode_path(raw_path, malformed)
    query, query_truncated = _form_pairs(raw_query, MAX_FIELDS)
    cookies = tuple(_cookies(header_pairs))
    content_type_header = _first(header_pairs, "content-type") or ""
    media_type = content_type_header.split(";", 1)[0].strip().lower()
    if media_type.startswith("multipart/"):
        # Uploads are parsed whole: allowed binary parts cost nothing to skip, and the text
        # parts after a large file must still be seen. Their text is bounded in `_multipart`.
        truncated = query_truncated
        fields, body_text, body_truncated = _body(media_type, content_type_header, body, malformed)
    else:
        truncated = query_truncated or len(body) > MAX_INSPECT_BYTES
        fields, body_text, body_truncated = _body(
            media_type, content_type_header, body[:MAX_INSPECT_BYTES], malformed
        )
    return InspectedRequest(
        method=method.upper(),
        raw_uri=uri,
        path=path,
        query=query,
        headers=header_pairs,
        cookies=cookies,
        body_fields=fields,
        body_text=body_text,
        content_type=media_type,
        user_agent=_first(header_pairs, "user-agent"),
        raw_query=raw_query,
        malformed=tuple(malformed),
        truncated=truncated or body_truncated,
    )


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def _headers(headers: HeaderInput) -> Pairs:
    items: Any = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        pairs.append((_text(name).strip().lower(), _text(value)[:MAX_HEADER_CHARS]))
    return tuple(pairs)


def _first(pairs: Pairs, name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _decode_path(raw_path: str, malformed: list[str]) -> str:
    try:
        return unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        malformed.append("uri:utf-8")
        return unquote(raw_path, errors="replace")


def _form_pairs(raw: str, limit: int) -> tuple[Pairs, bool]:
    """Split `a=1&b=2` into decoded pairs (at most `limit`); the flag says some were dropped."""
    if not raw:
        return (), False
    pairs: list[tuple[str, str]] = []
    parts = raw.split("&")
    for part in parts[:limit]:
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name, errors="replace"), unquote_plus(value, errors="replace")))
    return tuple(pairs), len(parts) > limit


def _cookies(headers: Pairs) -> Iterator[tuple[str, str]]:
    for key, value in headers:
        if key != "cookie":
            continue
        for part in value.split(";"):
            name, sep, cookie_value = part.strip().partition("=")
            if name or sep:
                yield name.strip(), cookie_value.strip()


def _decode(body: bytes, malformed: list[str]) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        malformed.append("body:utf-8")
        return body.decode("utf-8", errors="replace")


def _body(
    media_type: str, content_type: str, body: bytes, malformed: list[str]
) -> tuple[Pairs, str, bool]:
    """Return (fields, raw text, fields-dropped) for a body of `media_type`."""
    if not body:
        return (), "", False
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            malformed.append("body:json")
            return (), _decode(body, malformed), False
        fields, dropped = _json_leaves(document)
        return fields, "", dropped
    if media_type == _FORM_TYPE:
        fields, dropped = _form_pairs(_decode(body, malformed), MAX_FIELDS)
        return fields, "", dropped
    if media_type in _XML_TYPES or media_type.endswith("+xml"):
        xml_fields = _xml_fields(body)
        if xml_fields is None:
            malformed.append("body:xml")
            return (), _decode(body, malformed), False
        return xml_fields, "", len(xml_fields) >= MAX_FIELDS
    if media_type.startswith("multipart/"):
        boundary = _param(content_type, "boundary")
        parsed = _multipart(body, boundary, malformed) if boundary else None
        if parsed is None:
            malformed.append("body:multipart")
            return (), _decode(body, malformed), False
        return parsed
    text = _decode(body, malformed)
    if not media_type and "=" in text:
        # No declared type: a server may still read the body as a form, so inspect both ways.
        fields, dropped = _form_pairs(text, MAX_FIELDS)
        return fields, text, dropped
    return (), text, False


def _xml_fields(body: bytes) -> Pairs | None:
    """Text and attribute values of an XML body under their element paths; None if unparsable.

    DTDs and entity declarations are refused by the parser: such a body is inspected raw.
    """
    try:
        root = SafeET.fromstring(body)
    except Exception:  # defusedxml raises its own errors besides ParseError
        return None
    fields: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", root)]
    while stack and len(fields) < MAX_FIELDS:
        parent, element = stack.pop()
        tag = str(element.tag).rsplit("}", 1)[-1]
        path = f"{parent}/{tag}" if parent else tag
        for name, value in element.attrib.items():
            fields.append((f"{path}@{str(name).rsplit('}', 1)[-1]}", str(value)))
        for text in (element.text, element.tail):
            if text and text.strip():
                fields.append((path, text))
        stack.extend((path, child) for child in reversed(list(element)))
    return tuple(fields)


def _json_leaves(document: Any) -> tuple[Pairs, bool]:
    """Every leaf of `document` under its key path (keys are in the path), iteratively."""
    fields: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        if len(fields) >= MAX_FIELDS:
            return tuple(fields), True
        path, node = stack.pop()
        if isinstance(node, str):
            fields.append((path or "$", node))
        elif isinstance(node, dict) and node:
            for key, child in reversed(list(node.items())):
                child_path = f"{path}.{key}" if path else str(key)
                stack.append((child_path, child))
        elif isinstance(node, list) and node:
            for index in range(len(node) - 1, -1, -1):
                stack.append((f"{path}[{index}]", node[index]))
        else:
            # Numbers, booleans, null and empty containers: the key path is still inspected.
            fields.append((path or "$", "" if isinstance(node, dict | list) else str(node)))
    return tuple(fields), False


def _param(header_value: str, name: str) -> str | None:
    for key, value in _PARAM.findall(header_value):
        if key.lower() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            return value or None
    return None


def _multipart(body: bytes, boundary: str, malformed: list[str]) -> tuple[Pairs, str, bool] | None:
    """Parse a multipart body; None when it has no recognisable part at all."""
    delimiter = b"--" + boundary.encode("latin-1", errors="replace")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        return None
    fields: list[tuple[str, str]] = []
    leftovers: list[str] = []
    budget = _Budget(MAX_INSPECT_BYTES)
    if chunks[0].strip():
        leftovers.append(budget.decode(chunks[0], malformed))
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            if chunk[2:].strip():
                leftovers.append(budget.decode(chunk[2:], malformed))
            break
        if len(fields) >= MAX_FIELDS:
            return tuple(fields), "\n".join(leftovers), True
        _multipart_part(chunk, fields, leftovers, malformed, budget)
    if not closed:
        malformed.append("body:multipart")
    return tuple(fields), "\n".join(leftovers), budget.exceeded


class _Budget:
    """How many more bytes of multipart text may be inspected; decodes within it."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.exceeded = False

    def decode(self, content: bytes, malformed: list[str]) -> str:
        if len(content) > self.remaining:
            self.exceeded = True
            content = content[: self.remaining]
        self.remaining -= len(content)
        return _decode(content, malformed)


def _multipart_part(
    chunk: bytes,
    fields: list[tuple[str, str]],
    leftovers: list[str],
    malformed: list[str],
    budget: _Budget,
) -> None:
    chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
    head, sep, content = chunk.partition(b"\r\n\r\n")
    if not sep:
        head, sep, content = chunk.partition(b"\n\n")
    if not sep:
        malformed.append("body:multipart")
        if chunk.strip():
            leftovers.append(budget.decode(chunk, malformed))
        return
    content = content.removesuffix(b"\r\n").removesuffix(b"\n")
    part_headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.partition(":")
        part_headers[key.strip().lower()] = value.strip()
    disposition = part_headers.get("content-disposition", "")
    name = _param(disposition, "name") or ""
    filename = _param(disposition, "filename")
    filename_ext = _param(disposition, "filename*")
    if filename_ext is not None:
        encoded = filename_ext.split("'", 2)[-1]
        filename = unquote(encoded, errors="replace")
    part_type = part_headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if filename is not None:
        fields.append((f"{name}:filename", filename))
        if _is_allowed_binary(part_type, content):
            return
    fields.append((name, budget.decode(content, malformed)))


def _is_allowed_binary(media_type: str, content: bytes) -> bool:
    signatures = _BINARY_SIGNATURES.get(media_type)
    return signatures is not None and content.startswith(signatures)

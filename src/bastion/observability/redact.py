"""Secrets out of the logs: a structlog processor that redacts secret values and token shapes.

Two kinds of text are replaced by `[REDACTED]` in every string of a log event (the message,
its fields, a formatted traceback, nested lists and mappings):

- known secrets: every value the secret resolver has handed out is registered here
  (`remember`), in a process-wide set searched with plain substring tests (C speed; the
  regexes run only when a cheap marker such as `eyJ`, `bst_` or `=` is present). Values
  shorter than `MIN_SECRET_CHARS` are not registered, so that a short value cannot blank out
  ordinary words.
- token shapes: JWTs, `Bearer`/`Basic` credentials, Bastion API keys (`bst_<id>_<secret>`,
  the public id is kept), AWS access key ids, `token=`/`api_key=`/`password=`-like parameters
  in query strings, URLs and `key=value` text, and passwords in URL user-info.

Fields whose name says they hold a credential (`password`, `token`, `api_key`,
`authorization`, ...) are replaced whole. The processor runs for structlog events and for
stdlib records routed through structlog (uvicorn's access and error logs).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "forget_all",
    "redact_event",
    "redact_text",
    "remember",
]

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 8
_MIN_LINE_CHARS = 16

_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "pepper",
        "private_key",
        "vault_token",
        "aws_secret_access_key",
    }
)
_SCALARS = frozenset({bool, int, float})
_STRUCTURAL = frozenset({"timestamp", "level", "correlation_id", "logger", "event_id"})
_PARAM_NAMES = (
    r"access_token|refresh_token|id_token|client_secret|token|api[_-]?key|apikey|password|passwd"
    r"|secret|pepper|signature|sig|x-amz-signature|x-amz-security-token|aws_secret_access_key"
)

# Each rule: substrings one of which must be present (a cheap test that skips the regex for
# ordinary text), a pattern and its replacement; applied in order.
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # A JWT / JWS: three base64url parts, the header starting with `{"` (eyJ).
    (("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (
        ("earer", "EARER"),
        re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1\2{REDACTED}",
    ),
    # Basic credentials: base64 with a digit, `+`, `/` or `=` (not a word of prose).
    (
        ("Basic", "basic"),
        re.compile(r"\b([Bb]asic)(\s+)(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"),
        rf"\1\2{REDACTED}",
    ),
    (("bst_",), re.compile(r"\b(bst_[a-z0-9]{12}_)[0-9a-f]{16,}"), rf"\1{REDACTED}"),
    (
        ("AKIA", "ASIA", "AIDA", "AROA"),
        re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b"),
        REDACTED,
    ),
    (
        ("=",),
        re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_PARAM_NAMES})=)(?!\[)[^&\s\"',;]+"),
        rf"\1{REDACTED}",
    ),
    (('":',), re.compile(rf'(?i)("(?:{_PARAM_NAMES})"\s*:\s*")[^"]+"'), rf'\1{REDACTED}"'),
    # A URL's password, with a user name or without one (`redis://:PASSWORD@host`).
    (("@",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), rf"\1{REDACTED}@"),
)


class _Known:
    """The registered secret values, longest first (a value inside another is not cut)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set: set[str] = set()
        self.values: tuple[str, ...] = ()

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_CHARS or value in self._set:
            return
        with self._lock:
            self._set.add(value)
            self.values = tuple(sorted(self._set, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._set.clear()
            self.values = ()


_known = _Known()


def remember(value: str) -> None:
    """Register a secret value handed out by the resolver; it is redacted from now on.

    The lines of a multi-line value that look like key material (16 characters or more, no
    spaces: a PEM body line) are registered too, so that a log line quoting one is caught;
    lines of a JSON document are not (their secret members are registered by their owner).
    """
    _known.add(value)
    if "\n" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= _MIN_LINE_CHARS and " " not in line:
                _known.add(line)


def forget_all() -> None:
    """Drop every registered value (tests)."""
    _known.clear()


_TRIGGERS = tuple({t for triggers, _, _ in _SHAPES for t in triggers})


def _suspect(text: str) -> bool:
    """Whether `text` may hold anything to redact (substring tests only, no regex)."""
    for trigger in _TRIGGERS:
        if trigger in text:
            return True
    # Plain loops: a generator in any() costs more than the searches on this hot path.
    for value in _known.values:  # noqa: SIM110
        if value in text:
            return True
    return False


def redact_text(text: str) -> str:
    """`text` with known secrets and token shapes replaced by `[REDACTED]`."""
    if len(text) < MIN_SECRET_CHARS:
        return text
    for value in _known.values:
        if value in text:
            text = text.replace(value, REDACTED)
    for triggers, shape, replacement in _SHAPES:
        if any(t in text for t in triggers):
            text = shape.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered with str() by the renderer: redact that text now.
    return redact_text(str(value))


def _redact_field(key: str, value: Any) -> Any:
    if key.lower() in _SENSITIVE_KEYS and value not in (None, "", True, False):
        return REDACTED
    return _redact_value(value)


def redact_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The structlog processor (see the module docstring)."""
    # Fast path: an event of plain strings and numbers, no credential-named field and no
    # marker anywhere in its text (the common case: one joined string, substring tests).
    texts: list[str] = []
    for key, value in event.items():
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif value is not None and kind not in _SCALARS:
            break
        if key.lower() in _SENSITIVE_KEYS:
            break
    else:
        if not _suspect("\0".join(texts)):
            return event
    for key, value in list(event.items()):
        if key in _STRUCTURAL or key.startswith("_"):
            continue
        event[key] = _redact_field(key, value)
    return event

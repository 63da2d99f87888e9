"""Structured JSON logs (structlog), each line carrying the request's correlation ID.

Records of the standard `logging` module (uvicorn's access and error logs, libraries) are
routed through the same structlog processors, so every line is rendered alike and passes the
secret redactor (`bastion.observability.redact`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from bastion.config import LoggingSettings
from bastion.core.context import correlation_id_var
from bastion.observability.redact import redact_event


def add_correlation_id(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    cid = correlation_id_var.get()
    if cid is not None and "correlation_id" not in event:
        event["correlation_id"] = cid
    return event


def _orjson_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


_state: dict[str, Any] = {"stream": None, "level": logging.INFO}
_HANDLER_NAME = "bastion-structlog"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class AuditLog:
    """The audit writer's log: one structlog JSON line per record, written once per batch.

    Audit records carry their own timestamp and correlation ID and are logged at the rate of
    requests, so each line is rendered by structlog's JSON renderer directly (no bound-logger
    machinery per record) and a batch is written and flushed in one call.
    """

    def __init__(self, stream: Any, level: int) -> None:
        self._stream = stream
        self._enabled = level <= logging.INFO
        self._render = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        self._lines: list[str] = []

    def _add(self, level: str, event: str, kw: dict[str, Any]) -> None:
        kw["event"] = event
        kw["level"] = level
        redact_event(None, level, kw)
        self._lines.append(str(self._render(None, level, kw)))

    def info(self, event: str, **kw: Any) -> None:
        if self._enabled:
            self._add("info", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)
        self.flush()

    def flush(self) -> None:
        if self._lines:
            self._stream.write("\n".join(self._lines) + "\n")
            self._stream.flush()
            self._lines.clear()


def audit_logger() -> AuditLog:
    """The log for audit records, writing where `configure_logging` sends logs."""
    return AuditLog(_state["stream"] or sys.stderr, _state["level"])


def configure_logging(settings: LoggingSettings | None = None, *, stream: Any = None) -> None:
    settings = settings or LoggingSettings()
    level = getattr(logging, settings.level.upper(), logging.INFO)
    _state["stream"] = stream
    _state["level"] = level
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
    ]
    # Stdlib records (uvicorn's startup lines carry the bound address) are not anonymized.
    stdlib_processors = list(processors)
    if settings.anonymize_pii:
        from bastion.guardrails.logs import anonymize_pii_in_event

        processors.append(anonymize_pii_in_event)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(stdlib_processors, renderer, level, stream or sys.stderr)


def _route_stdlib(processors: list[Any], renderer: Any, level: int, stream: Any) -> None:
    """Send stdlib records (uvicorn, libraries) through the structlog processors."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *processors],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own handlers (from its default dictConfig) would bypass the processors.
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True

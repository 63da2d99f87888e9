"""Structured JSON logs (structlog), each line carrying the request's correlation ID."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from bastion.config import LoggingSettings
from bastion.runtime.context import correlation_id_var


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


def audit_logger() -> Any:
    """A lean structlog logger for audit records: one JSON line each, no extra processors.

    Audit records carry their own timestamp and correlation ID, and are logged at the rate of
    requests, so this path skips the general processor chain.
    """
    return structlog.wrap_logger(
        structlog.PrintLogger(_state["stream"] or sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_state["level"]),
    )


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
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_correlation_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=stream or sys.stderr, format="%(message)s")

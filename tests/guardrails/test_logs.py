"""Personal data is anonymized in log lines; structural fields are not touched."""

from __future__ import annotations

import io
import json

import structlog

from bastion.config import LoggingSettings
from bastion.observability import logging as observability
from bastion.observability.logging import configure_logging


def log_line(settings: LoggingSettings, **fields: object) -> dict[str, object]:
    stream = io.StringIO()
    previous, state = structlog.get_config(), dict(observability._state)
    configure_logging(settings, stream=stream)
    try:
        structlog.get_logger("test").warning("upload from jane.doe@example.com failed", **fields)
    finally:
        structlog.configure(**previous)  # loggers cached later must not keep this stream
        observability._state.update(state)
    line: dict[str, object] = json.loads(stream.getvalue().splitlines()[-1])
    return line


def test_pii_in_the_message_and_fields_is_anonymized() -> None:
    line = log_line(LoggingSettings(), card="4111 1111 1111 1111", path="/tmp/x.pdf", n=3)
    assert line["event"] == "upload from {EMAIL} failed"
    assert line["card"] == "{CREDIT_DEBIT_CARD_NUMBER}"
    assert line["path"] == "/tmp/x.pdf" and line["n"] == 3
    assert "timestamp" in line and line["level"] == "warning"


def test_anonymizing_can_be_turned_off() -> None:
    line = log_line(LoggingSettings(anonymize_pii=False), card="4111 1111 1111 1111")
    assert line["event"] == "upload from jane.doe@example.com failed"
    assert line["card"] == "4111 1111 1111 1111"


def test_long_values_are_cut() -> None:
    from bastion.guardrails.logs import MAX_VALUE_CHARS

    line = log_line(LoggingSettings(), body="x" * (MAX_VALUE_CHARS + 100))
    assert line["body"] == "x" * MAX_VALUE_CHARS

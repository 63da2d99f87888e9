"""The argument checks every queue backend makes, with the same limits and messages."""

from __future__ import annotations

import json
from typing import Any

MAX_BATCH = 100  # messages one receive may claim
MAX_REASON = 2000  # characters of a failure reason kept


def check_settings(max_receive_count: int, retention_seconds: float) -> None:
    if max_receive_count < 1:
        raise ValueError("max_receive_count must be at least 1")
    if retention_seconds <= 0:
        raise ValueError("retention_seconds must be positive")


def encode_body(body: dict[str, Any], delay_seconds: float) -> str:
    """The JSON text of a message body to send after `delay_seconds`."""
    if not isinstance(body, dict):
        raise TypeError("a message body is a dict")
    if delay_seconds < 0:
        raise ValueError("delay_seconds must not be negative")
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def check_receive(max_messages: int, visibility_timeout: float, wait_seconds: float) -> None:
    if not 1 <= max_messages <= MAX_BATCH:
        raise ValueError(f"max_messages must be between 1 and {MAX_BATCH}")
    if visibility_timeout < 0 or wait_seconds < 0:
        raise ValueError("timeouts must not be negative")


def check_timeout(timeout: float) -> None:
    if timeout < 0:
        raise ValueError("timeout must not be negative")


def check_lease(lease_seconds: float) -> None:
    if not lease_seconds > 0:
        raise ValueError("lease_seconds must be positive")

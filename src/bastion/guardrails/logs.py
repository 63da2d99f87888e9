"""PII out of the logs: a structlog processor that anonymizes personal data in log events.

Every string value of an event (the message and its fields) is scanned with the PII detector
for the types the default guardrail policy anonymizes or blocks, and each finding is replaced
by `{TYPE}`, so that an e-mail address or a card number that reaches a log line (in an error
message, a file name, a model's reply) is not written. Structural fields (timestamp, level,
correlation ID, logger) are left alone, and so are values longer than `MAX_VALUE_CHARS`, which
are cut to that length first: a log line is not the place for a document.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import cache
from typing import Any

from bastion.guardrails.anonymize import anonymize
from bastion.guardrails.pii import detect_pii
from bastion.guardrails.policy import PolicyAction, default_policy

__all__ = ["MAX_VALUE_CHARS", "anonymize_pii_in_event"]

MAX_VALUE_CHARS = 4096
_STRUCTURAL = frozenset({"timestamp", "level", "correlation_id", "logger", "event_id"})


@cache
def _types() -> frozenset[str]:
    policy = default_policy()
    return frozenset(
        kind
        for kind in policy.pii_types
        if any(policy.pii_action(kind, d) is not PolicyAction.NONE for d in ("input", "output"))
    )


def anonymize_pii_in_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The structlog processor (see the module docstring)."""
    for key, value in event.items():
        if key in _STRUCTURAL or not isinstance(value, str) or not value:
            continue
        text = value[:MAX_VALUE_CHARS]
        findings = detect_pii(text, _types())
        if findings or len(text) < len(value):
            event[key] = anonymize(text, findings) if findings else text
    return event

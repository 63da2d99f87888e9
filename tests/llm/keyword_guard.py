"""A tiny real guard for the client tests: blocks FORBIDDEN, anonymizes email addresses."""

from __future__ import annotations

import re

from bastion.guardrails.types import Action, Direction, Finding, Source, Verdict

BLOCKED_MESSAGE = "Sorry, I cannot help with that."
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class KeywordGuard:
    """Blocks text containing FORBIDDEN, anonymizes email addresses, records every scan."""

    def __init__(self) -> None:
        self.scans: list[tuple[str, Source, Direction]] = []

    def scan(self, text: str, source: Source, direction: Direction) -> Verdict:
        self.scans.append((text, source, direction))
        at = text.find("FORBIDDEN")
        if at >= 0:
            finding = Finding("MISCONDUCT", at, at + 9, 0.95, "keyword", Action.BLOCKED)
            return Verdict(Action.BLOCKED, (finding,), BLOCKED_MESSAGE, "test-1")
        findings = tuple(
            Finding("EMAIL", m.start(), m.end(), 0.99, "pattern", Action.ANONYMIZED)
            for m in _EMAIL.finditer(text)
        )
        if findings:
            return Verdict(Action.ANONYMIZED, findings, _EMAIL.sub("{EMAIL}", text), "test-1")
        return Verdict(Action.NONE, (), text, "test-1")

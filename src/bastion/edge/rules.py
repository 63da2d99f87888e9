"""The `RuleMatch` record every WAF detector returns.

A match names the rule (`rule_id`, a stable dotted name such as "managed.sqli.libinjection" or
"bot.missing_user_agent"), its group ("managed" or "bot") and where it matched (`target`, such
as "query:id", "header:user-agent", "body:comment" or "uri"). It never carries the matched
value: matches end up in logs and metrics, and request content must not.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RuleMatch"]


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that fired on one request location (never the value that made it fire)."""

    rule_id: str
    group: str
    target: str

"""Rule tables for the family detectors: a regex guarded by substrings it cannot match without.

Most inspected values are short and ordinary; a rule's `needs` (any one of a few substrings
that every match contains, checked with C-speed ``in``) skips the regex for them, which keeps
the cost per request low without weakening the rule. An empty `needs` always runs the regex.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Rule", "first_match", "rules"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One named detection pattern and the substrings (any one) it needs to be worth running."""

    name: str
    needs: tuple[str, ...]
    pattern: re.Pattern[str]


def rules(
    grammar: Sequence[tuple[str, re.Pattern[str]]], needs: Mapping[str, tuple[str, ...]]
) -> tuple[Rule, ...]:
    """Pair each (name, pattern) of `grammar` with its guard from `needs` (none: always run)."""
    return tuple(Rule(name, needs.get(name, ()), pattern) for name, pattern in grammar)


def first_match(table: Sequence[Rule], form: str) -> str | None:
    """The name of the first rule of `table` whose guard passes and whose pattern matches."""
    for rule in table:
        if rule.needs and not any(need in form for need in rule.needs):
            continue
        if rule.pattern.search(form):
            return rule.name
    return None

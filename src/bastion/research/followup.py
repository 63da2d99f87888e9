"""Follow-up questions: "and when was he born?" asked after "Who directed Jaws?" becomes
"When was Steven Spielberg born?", deterministically, from the conversation's previous turn.

Rules: only a message that holds a personal pronoun (he, she, him, her, it, they, them) or a
possessive one (his, its, their) is rewritten, and only when the conversation has a previous
question. The referent is the previous turn's answer when it has one that is not yes/no, else
the first capitalised name in the previous question (after its first word). The first pronoun is
replaced (a possessive by the referent and "'s"); a leading "and"/"so"/"also" is dropped and the
first letter capitalised. Anything else is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bastion.research.model import Turn

__all__ = ["referent", "resolve_follow_up"]

_PRONOUN = re.compile(r"\b(he|she|him|her|it|they|them|his|its|their)\b", re.I)
_POSSESSIVE = frozenset(["his", "its", "their"])
_LEADING = re.compile(r"^\s*(and|so|also|then)\b[\s,]*", re.I)
_NAME = re.compile(r"\b[A-Z0-9][\w'.&-]*(?:\s+(?:of|the|de|von|van)?\s*[A-Z0-9][\w'.&-]*)*")


def referent(turn: Turn) -> str | None:
    """What a pronoun in the next question points to: `turn`'s answer, else its subject."""
    answer = (turn.answer or "").strip()
    if answer and answer.lower() not in ("yes", "no") and len(answer) <= 120:
        return answer
    question = turn.question.strip()
    first = question.split(None, 1)
    rest = first[1] if len(first) > 1 else ""
    match = _NAME.search(rest)
    return match.group(0).strip() if match else None


def resolve_follow_up(message: str, history: Sequence[Turn]) -> str:
    """`message` with its first pronoun replaced by what the previous turn was about."""
    if not history or not _PRONOUN.search(message):
        return message
    target = referent(history[-1])
    if target is None:
        return message

    def replace(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        return f"{target}'s" if word in _POSSESSIVE else target

    resolved = _PRONOUN.sub(replace, _LEADING.sub("", message), count=1).strip()
    return resolved[:1].upper() + resolved[1:] if resolved else message

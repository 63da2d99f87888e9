"""The guardrail engine's vocabulary: directions, sources, confidence levels, findings, verdicts.

Names follow Amazon Bedrock Guardrails where it has one: finding types are Bedrock's
(`PROMPT_ATTACK`, `HATE`, `EMAIL`, `CREDIT_DEBIT_CARD_NUMBER`, ..., `TOPIC:<name>`), confidence
is a level (`NONE`, `LOW`, `MEDIUM`, `HIGH`), filter strength is a level of the same scale (a
`HIGH` strength blocks `LOW`-confidence detections and above), and the verdict's action is
`BLOCKED`, `ANONYMIZED` or `NONE`.

Every detector reports `Finding`s with a span in the text it was given and a numeric `score` in
[0, 1]; `confidence_of(score)` turns a score into a level with the same thresholds everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

__all__ = [
    "CONTENT_CATEGORIES",
    "PII_TYPES",
    "Action",
    "Confidence",
    "Direction",
    "Finding",
    "Source",
    "Verdict",
    "confidence_of",
]


class Direction(StrEnum):
    INPUT = "input"  # text on its way into a model or an agent
    OUTPUT = "output"  # text a model produced, on its way out


class Source(StrEnum):
    USER_INPUT = "user_input"
    LLM_OUTPUT = "llm_output"
    TOOL_RESULT = "tool_result"
    DOCUMENT = "document"
    SYSTEM = "system"  # the system prompt: never checked for prompt attacks


class Confidence(IntEnum):
    """How sure a detector is; also a filter's strength (the lowest confidence it acts on is
    the reverse: strength HIGH acts on LOW and above, LOW only on HIGH)."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    def __str__(self) -> str:
        return self.name


# Score thresholds of the confidence levels, shared by every detector.
_LOW, _MEDIUM, _HIGH = 0.5, 0.7, 0.9


def confidence_of(score: float) -> Confidence:
    """The confidence level of a detector score in [0, 1]."""
    if score >= _HIGH:
        return Confidence.HIGH
    if score >= _MEDIUM:
        return Confidence.MEDIUM
    if score >= _LOW:
        return Confidence.LOW
    return Confidence.NONE


class Action(StrEnum):
    BLOCKED = "BLOCKED"
    ANONYMIZED = "ANONYMIZED"
    NONE = "NONE"


CONTENT_CATEGORIES = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK")

# Bedrock's sensitive-information types that the engine detects, plus AGE and DRIVER_ID (in
# Bedrock's list too) for the evaluation set's types.
PII_TYPES = (
    "NAME",
    "EMAIL",
    "PHONE",
    "ADDRESS",
    "URL",
    "IP_ADDRESS",
    "CREDIT_DEBIT_CARD_NUMBER",
    "IBAN",
    "SWIFT_CODE",
    "US_SOCIAL_SECURITY_NUMBER",
    "US_PASSPORT_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "PASSWORD",
    "AGE",
    "DRIVER_ID",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: its Bedrock type, where it is, how sure, and which detector found it."""

    type: str
    start: int
    end: int
    score: float
    detector: str  # "pattern", "linear", "embedding", "lexicon", ...
    action: Action = Action.NONE  # what the policy does with it (set by the engine)

    @property
    def confidence(self) -> Confidence:
        return confidence_of(self.score)

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "confidence": str(self.confidence),
            "detector": self.detector,
            "action": str(self.action),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `scan` decided: the action, every finding, the text to pass on (sanitized: the
    blocked message when blocked, anonymized spans replaced), and how it was reached."""

    action: Action
    findings: tuple[Finding, ...]
    text: str
    policy_version: str
    degraded: bool = False  # a layer the policy asks for was not available
    notes: tuple[str, ...] = field(default_factory=tuple)  # why degraded, what was bounded

    def to_dict(self) -> dict[str, object]:
        return {
            "action": str(self.action),
            "findings": [f.to_dict() for f in self.findings],
            "text": self.text,
            "policy_version": self.policy_version,
            "degraded": self.degraded,
            "notes": list(self.notes),
        }

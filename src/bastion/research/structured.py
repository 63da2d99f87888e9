"""Asking a model for a structured answer: JSON that must validate against a pydantic schema,
asked again once when it does not, with the deterministic path as the last word.

    outcome = await with_fallback(
        client, messages, PlanAnswer, accept=to_plan, fallback=lambda: plan(question)
    )
    outcome.value, outcome.path, outcome.reason  # the plan, "model" | "fallback", why

The schema's JSON Schema goes into the system prompt (`schema_prompt`), so any provider behind
`bastion.llm.build_client` can answer. A reply is valid when it parses as JSON (a Markdown code
fence around it is tolerated), validates against the schema, and passes `accept`, the caller's
own checks (a citation that names no source, too many sub-questions, ...), which turns the
validated answer into the value or raises `InvalidAnswer` saying what is wrong. An invalid reply
is asked for once more, with what was wrong; a second invalid reply, a model error or a
guardrail block ends with `fallback()`'s value, path `fallback`, and the reason. Nothing here
retries on its own beyond that one time, and no reason carries the model's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from bastion.llm import GuardrailBlocked, Message, ModelClient, ModelError

__all__ = ["InvalidAnswer", "Outcome", "PathTaken", "schema_prompt", "with_fallback"]

T = TypeVar("T")
Answer = TypeVar("Answer", bound=BaseModel)
PathTaken = Literal["model", "fallback"]

ATTEMPTS = 2  # the first ask and one retry
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.S | re.I)


class InvalidAnswer(Exception):
    """The model's answer is well-formed but unusable; the message says why, for the retry."""


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What produced `value`: the model (`reason` is None) or the deterministic fallback
    (`reason` says why the model's answer was not used)."""

    value: T
    path: PathTaken
    reason: str | None = None


def schema_prompt(task: str, schema: type[BaseModel]) -> str:
    """A system prompt: `task`, then the rule to answer with one JSON object of `schema`."""
    document = orjson.dumps(schema.model_json_schema(), option=orjson.OPT_SORT_KEYS).decode()
    return (
        f"{task}\n\nAnswer with one JSON object and nothing else. It must validate against "
        f"this JSON Schema:\n{document}"
    )


def _json_text(reply: str) -> str:
    match = _FENCE_RE.match(reply)
    return match["body"] if match else reply


def _validation_summary(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "the answer"
        parts.append(f"{where}: {item['msg']}")
    return "schema violation: " + "; ".join(parts)


def _parse(reply: str, schema: type[Answer], accept: Callable[[Answer], T]) -> T:
    """The accepted value of `reply`; raises `InvalidAnswer` saying what is wrong."""
    try:
        answer = schema.model_validate_json(_json_text(reply))
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise InvalidAnswer("the answer is not valid JSON") from None
        raise InvalidAnswer(_validation_summary(error)) from None
    return accept(answer)


async def with_fallback(
    client: ModelClient,
    messages: Sequence[Message],
    schema: type[Answer],
    *,
    accept: Callable[[Answer], T],
    fallback: Callable[[], T],
) -> Outcome[T]:
    """The model's accepted answer to `messages`, asked at most twice, else `fallback()`."""
    asked = list(messages)
    reason = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            reply = await client.complete(asked)
        except GuardrailBlocked as blocked:
            return Outcome(fallback(), "fallback", str(blocked))
        except ModelError as error:
            return Outcome(fallback(), "fallback", f"model error: {error}")
        try:
            return Outcome(_parse(reply.text, schema, accept), "model")
        except InvalidAnswer as invalid:
            reason = str(invalid)
        if attempt < ATTEMPTS:
            asked = [
                *messages,
                # Our own text, so a system message: a user message telling the model what to
                # do reads as a prompt attack to the guardrails.
                Message.system(
                    f"Your previous answer was invalid ({reason}). Answer again with one JSON "
                    "object that follows the schema and the rules."
                ),
            ]
    return Outcome(fallback(), "fallback", f"invalid model answer twice: {reason}")

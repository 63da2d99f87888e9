"""The model-client interface and the guarded client, the only client the project hands out.

`ModelClient` is what every caller sees: `complete` returns one `Completion`, `stream` yields
the reply's text piece by piece, `aclose` releases the connection pool. Providers (private
modules `bastion.llm._<name>`) implement it against one wire protocol; `GuardedClient` wraps a
provider with a `Guard`, and `bastion.llm.factory.build_client` is the only way to get one.

What the guarded client checks:

* before the call, every input message, with direction `input` and the source its role
  implies: `system` for the system prompt (the engine never checks it for prompt attacks),
  `user_input` for user messages, `tool_result` for tool messages, and `llm_output` for
  assistant turns of the history (they come from the caller, who could have forged them);
* after the call, the reply, with source `llm_output` and direction `output`.

A verdict's action decides: `BLOCKED` raises `GuardrailBlocked` carrying the verdict (its
`text` is the policy's blocked message, for callers that want to show it); when an input is
blocked the model is never called. `ANONYMIZED` replaces the text with the verdict's sanitized
text: that is what the model receives, or what the caller gets back. `NONE` leaves the text as
it was.

Streaming trade-off: the reply is buffered into windows (`OutputWindows`: whole sentences of at
least `min_chars`, at most `max_chars`) and each window is scanned before it is yielded, so
blocked or unanonymized text is never yielded. The price is latency (nothing is yielded until
the first window is complete) and context: each window is scanned on its own, so a finding
that only exists across two windows (a phrase split over sentences, a token longer than
`max_chars`) can be missed; a block in a later window raises after the earlier, clean windows
have been yielded.

`Guard.scan` is called synchronously on the event loop; a guard is expected to be fast (the
engine's pattern and linear layers take milliseconds).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

import structlog

from bastion.aio import AsyncClosing
from bastion.guardrails.types import Action, Direction, Source, Verdict
from bastion.llm.windows import OutputWindows

__all__ = [
    "Completion",
    "Guard",
    "GuardedClient",
    "GuardrailBlocked",
    "Message",
    "ModelClient",
    "ModelError",
    "Role",
]

log = structlog.get_logger("bastion.llm")


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


# The guard source of each message role.
_SOURCE_OF_ROLE = {
    Role.SYSTEM: Source.SYSTEM,
    Role.USER: Source.USER_INPUT,
    Role.TOOL: Source.TOOL_RESULT,
    Role.ASSISTANT: Source.LLM_OUTPUT,
}


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. `tool_call_id` links a tool result to the call it answers."""

    role: Role
    content: str
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(Role.SYSTEM, content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(Role.ASSISTANT, content)

    @classmethod
    def tool(cls, content: str, tool_call_id: str) -> Message:
        return cls(Role.TOOL, content, tool_call_id)


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's reply. `verdicts` are the guard's verdicts on the way (inputs in message
    order, then the output), for audit; a provider's own completion has none."""

    text: str
    model: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    verdicts: tuple[Verdict, ...] = ()


class ModelClient(Protocol):
    """What callers use to talk to a model; providers implement it, the guard wraps it."""

    async def complete(self, messages: Sequence[Message]) -> Completion: ...

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]: ...

    async def aclose(self) -> None: ...


class Guard(Protocol):
    """The guardrail engine as the client sees it."""

    def scan(self, text: str, source: Source, direction: Direction) -> Verdict: ...


class ModelError(Exception):
    """The model could not be called or answered with an error; the message says which and
    never contains the API key. `status` is the HTTP status when the server answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GuardrailBlocked(Exception):
    """The guard blocked a message on its way to the model, or the model's reply.
    `verdict.text` is the policy's blocked message; the blocked text itself is not kept."""

    def __init__(self, verdict: Verdict, source: Source, direction: Direction) -> None:
        types = ", ".join(sorted({f.type for f in verdict.findings})) or "no finding types"
        super().__init__(f"guardrails blocked {direction} from {source} ({types})")
        self.verdict = verdict
        self.source = source
        self.direction = direction


class GuardedClient(AsyncClosing):
    """A provider behind the guard. Built by `bastion.llm.factory.build_client`."""

    def __init__(
        self,
        provider: ModelClient,
        guard: Guard,
        *,
        window_min_chars: int,
        window_max_chars: int,
    ) -> None:
        self._provider = provider
        self._guard = guard
        self._window = (window_min_chars, window_max_chars)

    async def complete(self, messages: Sequence[Message]) -> Completion:
        sent, verdicts = self._guard_inputs(messages)
        reply = await self._provider.complete(sent)
        text, verdict = self._guard_output(reply.text)
        return replace(reply, text=text, verdicts=(*verdicts, verdict))

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the reply in scanned windows; raises `GuardrailBlocked` at the first blocked
        window (nothing of it or after it is yielded). A caller that may stop early should
        wrap the call in `contextlib.aclosing` so that the connection is released at once."""
        sent, _ = self._guard_inputs(messages)
        windows = OutputWindows(*self._window)
        async with contextlib.aclosing(self._provider.stream(sent)) as chunks:
            async for chunk in chunks:
                for window in windows.feed(chunk):
                    yield self._guard_output(window)[0]
        rest = windows.flush()
        if rest:
            yield self._guard_output(rest)[0]

    async def aclose(self) -> None:
        await self._provider.aclose()

    def _guard_inputs(self, messages: Sequence[Message]) -> tuple[list[Message], list[Verdict]]:
        """The messages as the model may see them, and the verdicts; raises if one is
        blocked."""
        sent: list[Message] = []
        verdicts: list[Verdict] = []
        for message in messages:
            source = _SOURCE_OF_ROLE[message.role]
            text, verdict = self._check(message.content, source, Direction.INPUT)
            sent.append(replace(message, content=text))
            verdicts.append(verdict)
        return sent, verdicts

    def _guard_output(self, text: str) -> tuple[str, Verdict]:
        return self._check(text, Source.LLM_OUTPUT, Direction.OUTPUT)

    def _check(self, text: str, source: Source, direction: Direction) -> tuple[str, Verdict]:
        """The text to pass on after the guard's verdict, and the verdict."""
        verdict = self._guard.scan(text, source, direction)
        if verdict.action is Action.BLOCKED:
            log.warning(
                "llm.guard_blocked",
                source=str(source),
                direction=str(direction),
                findings=sorted({f.type for f in verdict.findings}),
                policy_version=verdict.policy_version,
            )
            raise GuardrailBlocked(verdict, source, direction)
        if verdict.action is Action.ANONYMIZED:
            return verdict.text, verdict
        return text, verdict

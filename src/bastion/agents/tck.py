"""The A2A conformance (TCK) behaviours of the echo agent, chosen by the message id prefix.

The A2A TCK drives an agent under test in-band: each test sends a message whose `messageId`
starts with a scenario prefix (`tck-complete-task-...`, `tck-input-required-...`,
`tck-stream-001-...`) and checks the resulting task states, artifacts and streams. This executor
implements every scenario of the TCK's `scenarios/*.feature`; any other message gets the plain
echo behaviour. It is only used by `bastion serve echo --tck`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from bastion.agents.echo import echo_definition, echo_executor
from bastion.protocol.a2a import Part
from bastion.runtime import (
    AgentDefinition,
    AgentOutput,
    ExecutionContext,
    TaskStore,
    completed,
    input_required,
    new_id,
    rejected,
    working,
)

TCK_SKILL: dict[str, object] = {
    "id": "tck",
    "name": "A2A conformance behaviours",
    "description": "Task states and artifacts chosen by the message id prefix (tck-...).",
    "tags": ["tck", "conformance", "test"],
}

STREAMING_TIMEOUT_SECONDS = 2.0
"""The TCK's streaming timeout; the resubscription scenario outlives it twice."""

Behaviour = Callable[[ExecutionContext], AsyncIterator[AgentOutput]]


def _file_part() -> Part:
    return Part.of_bytes(b"tck", media_type="text/plain", filename="output.txt")


async def _complete_task(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield completed("Hello from TCK")


async def _artifact_text(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.artifact("Generated text content")
    yield completed()


async def _artifact_file(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.artifact(_file_part())
    yield completed()


async def _artifact_file_url(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.artifact(
        Part(url="https://example.com/output.txt", media_type="text/plain", filename="output.txt")
    )
    yield completed()


async def _artifact_data(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.artifact(Part.of_data({"key": "value", "count": 42}))
    yield completed()


async def _message_response(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.reply("Direct message response")


async def _input_required(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield input_required()


async def _reject_task(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield rejected("rejected")


def _stream_text(text: str) -> Behaviour:
    async def behaviour(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        yield ctx.artifact(text)
        yield completed()

    return behaviour


async def _stream_completed(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield completed()


async def _stream_file(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield working()
    yield ctx.artifact(_file_part())
    yield completed()


async def _stream_chunked(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    artifact_id = new_id()
    yield working()
    yield ctx.artifact("chunk-1 ", artifact_id=artifact_id)
    yield ctx.artifact("chunk-2", artifact_id=artifact_id, append=True, last_chunk=True)
    yield completed()


async def _long_running(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield working()
    await asyncio.sleep(2 * STREAMING_TIMEOUT_SECONDS)
    yield completed()


# Longest prefixes first where one prefix starts another (file-url before file).
BEHAVIOURS: tuple[tuple[str, Behaviour], ...] = (
    ("tck-complete-task", _complete_task),
    ("tck-artifact-text", _artifact_text),
    ("tck-artifact-file-url", _artifact_file_url),
    ("tck-artifact-file", _artifact_file),
    ("tck-artifact-data", _artifact_data),
    ("tck-message-response", _message_response),
    ("tck-input-required", _input_required),
    ("tck-reject-task", _reject_task),
    ("tck-stream-001", _stream_text("Stream hello from TCK")),
    ("tck-stream-002", _stream_completed),
    ("tck-stream-003", _stream_text("Stream task lifecycle")),
    ("tck-stream-ordering-001", _stream_text("Ordered output")),
    ("tck-stream-artifact-text", _stream_text("Streamed text content")),
    ("tck-stream-artifact-file", _stream_file),
    ("tck-stream-artifact-chunked", _stream_chunked),
    ("test-resubscribe-message-id", _long_running),
)


def behaviour_for(message_id: str) -> Behaviour:
    """The scenario a message id selects; the echo behaviour when none matches."""
    for prefix, behaviour in BEHAVIOURS:
        if message_id.startswith(prefix):
            return behaviour
    return echo_executor


async def tck_executor(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    """The conformance executor: dispatches on `ctx.message.message_id`."""
    async for output in behaviour_for(ctx.message.message_id)(ctx):
        yield output


def tck_definition(*, store: TaskStore | None = None) -> AgentDefinition:
    """The echo agent with the conformance behaviours (`bastion serve echo --tck`)."""
    return echo_definition(store=store, executor=tck_executor, extra_skills=[TCK_SKILL])

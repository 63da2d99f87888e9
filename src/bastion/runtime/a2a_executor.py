"""The A2A executor interface: what an agent's executor receives and what it may yield.

    async def executor(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield ctx.artifact(ctx.message.parts)      # a TaskArtifactUpdateEvent
        yield completed("done")                   # a TaskStatusUpdateEvent (terminal)

See `bastion.runtime.a2a_methods` for how the outputs drive a task.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from bastion.protocol.a2a import (
    Artifact,
    Message,
    Metadata,
    Part,
    SendMessageConfiguration,
    Task,
    TaskState,
    agent_message,
    as_parts,
)


def new_id() -> str:
    return str(uuid.uuid4())


# -- executor interface ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Move the task to `state`; `message` (text or a Message) becomes its status message."""

    state: TaskState
    message: str | Message | None = None
    metadata: Metadata | None = None


@dataclass(frozen=True, slots=True)
class ArtifactUpdate:
    """Add an artifact, or (with `append`) extend the artifact with the same id."""

    artifact: Artifact
    append: bool = False
    last_chunk: bool = False


AgentOutput = StatusUpdate | ArtifactUpdate | Message


def working(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.WORKING, message)


def completed(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.COMPLETED, message)


def input_required(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.INPUT_REQUIRED, message)


def auth_required(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.AUTH_REQUIRED, message)


def failed(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.FAILED, message)


def rejected(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.REJECTED, message)


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What the executor gets for one incoming message.

    `message` already carries the task's `taskId` and `contextId`. `task` is a snapshot of the
    task being continued (None for a new one). `metadata` is the request's metadata.
    """

    message: Message
    task_id: str
    context_id: str
    principal: str
    task: Task | None = None
    configuration: SendMessageConfiguration | None = None
    metadata: Metadata | None = None
    streaming: bool = False

    @property
    def text(self) -> str:
        """The incoming message's text parts, joined with newlines."""
        return self.message.text

    def reply(self, content: str | Part | list[Part]) -> Message:
        """An agent message in this task's context."""
        return agent_message(
            content, message_id=new_id(), context_id=self.context_id, task_id=self.task_id
        )

    def artifact(
        self,
        content: str | Part | Sequence[Part],
        *,
        name: str | None = None,
        artifact_id: str | None = None,
        append: bool = False,
        last_chunk: bool = False,
    ) -> ArtifactUpdate:
        """An artifact update from text, a part or parts (a fresh id unless given)."""
        return ArtifactUpdate(
            Artifact(artifact_id=artifact_id or new_id(), name=name, parts=as_parts(content)),
            append=append,
            last_chunk=last_chunk,
        )


Executor = Callable[[ExecutionContext], AsyncIterator[AgentOutput]]

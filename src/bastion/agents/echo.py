"""The reference echo agent: named methods `echo` and `get_status`, and the standard A2A methods.

Its A2A executor returns the incoming parts as an artifact and completes the task. With the
conformance profile (`bastion.agents.tck.tck_definition`) the executor is the TCK's, which drives
task states from the message id. Used in tests, in the benchmark and for A2A conformance runs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from pydantic import BaseModel, Field

from bastion.core.context import CallContext
from bastion.runtime import (
    A2AService,
    AgentDefinition,
    AgentOutput,
    ExecutionContext,
    Executor,
    MethodRegistry,
    TaskStore,
    completed,
    register_a2a_methods,
)

NAME = "echo"


class EchoParams(BaseModel):
    message: str = Field(max_length=64 * 1024)


class EchoResult(BaseModel):
    message: str


async def echo_executor(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    """A2A behaviour: the incoming parts come back as the task's artifact."""
    yield ctx.artifact(ctx.message.parts, name="echo")
    yield completed()


def build_echo_registry(
    executor: Executor = echo_executor, store: TaskStore | None = None
) -> tuple[MethodRegistry, A2AService]:
    """The echo agent's methods, and the A2A service behind the standard ones (close it at
    shutdown)."""
    registry = MethodRegistry()
    started = time.time()

    @registry.method("echo")
    async def echo(params: EchoParams) -> dict[str, str]:
        """Echo the message back."""
        return {"message": params.message}

    @registry.method("get_status")
    async def get_status(ctx: CallContext) -> dict[str, object]:
        """Liveness and uptime of this agent, as seen by the caller."""
        return {"agent": NAME, "status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    service = register_a2a_methods(registry, executor, store)
    return registry, service


ECHO_SKILL: dict[str, object] = {
    "id": "echo",
    "name": "Echo",
    "description": "Returns the message it receives.",
    "tags": ["echo", "test"],
    "examples": ["hello"],
}


def echo_definition(
    *,
    store: TaskStore | None = None,
    executor: Executor = echo_executor,
    extra_skills: Sequence[dict[str, object]] = (),
) -> AgentDefinition:
    """The echo agent; another `executor` (with its `extra_skills`) changes what its A2A methods
    do, as the conformance profile does (`bastion.agents.tck.tck_definition`)."""
    skills = [ECHO_SKILL, *extra_skills]
    registry, service = build_echo_registry(executor, store)
    return AgentDefinition(
        name=NAME,
        description="Reference agent that echoes messages back.",
        registry=registry,
        skills=[dict(skill) for skill in skills],
        on_startup=[service.start],
        on_shutdown=[service.aclose],
    )

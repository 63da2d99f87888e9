"""The relay agent: forwards a message to the echo agent, as itself.

It exists to show agent-to-agent zero trust: the relay holds its own API key, exchanges it for
short-lived tokens, and is authorized, rate limited and audited by the echo agent like any other
caller. The correlation ID of the incoming call travels with the outgoing one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.runtime import AgentClient, AgentConfigError, AgentDefinition, MethodRegistry
from bastion.security import resolve

NAME = "relay"


class RelayParams(BaseModel):
    message: str = Field(max_length=64 * 1024)


def relay_definition(settings: Settings) -> AgentDefinition:
    own = settings.agents.get(NAME)
    target = settings.agents.get("echo")
    if own is None or own.api_key is None:
        raise AgentConfigError("agents.relay.api_key is not set: add a secret reference to its key")
    if target is None:
        raise AgentConfigError("agents.echo.url is not set: the relay needs the echo agent's URL")
    api_key = resolve(own.api_key, settings.base_dir)
    registry = MethodRegistry()
    clients: list[AgentClient] = []

    async def start() -> None:
        clients.append(
            AgentClient(target.url, api_key=api_key, settings=settings.client, principal=NAME)
        )

    async def stop() -> None:
        for c in clients:
            await c.aclose()

    @registry.method("relay")
    async def relay(params: RelayParams, ctx: CallContext) -> dict[str, str]:
        """Send the message to the echo agent and return its answer."""
        result = await clients[0].call("echo", {"message": params.message})
        return {"message": str(result["message"]), "via": NAME}

    @registry.method("get_status")
    async def get_status() -> dict[str, str]:
        """Liveness of the relay."""
        return {"agent": NAME, "status": "ok"}

    return AgentDefinition(
        name=NAME,
        description="Forwards messages to the echo agent under its own identity.",
        registry=registry,
        skills=[
            {
                "id": "relay",
                "name": "Relay",
                "description": "Forwards a message to the echo agent.",
                "tags": ["relay", "demo"],
            }
        ],
        on_startup=[start],
        on_shutdown=[stop],
    )

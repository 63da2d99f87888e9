"""Interoperability with the official A2A Python SDK (a2a-sdk 1.x), both ways, over real HTTP.

1. The SDK's client (card resolution, JSON-RPC transport, auth interceptor) talks to a Bastion
   echo agent behind the full security stack.
2. Bastion's `AgentClient` talks to an agent built with the SDK's server (AgentExecutor,
   DefaultRequestHandler, Starlette JSON-RPC routes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import (
    A2AClientError,
    AuthInterceptor,
    ClientCallContext,
    ClientConfig,
    ClientFactory,
    CredentialService,
)
from a2a.helpers import get_message_text
from a2a.types import a2a_pb2
from starlette.applications import Starlette

from bastion.runtime.client import AgentClient, RpcCallError, result_text
from bastion.testing.live_server import LiveServer, serve_in_thread
from bastion.testing.sdk_echo import sdk_echo_app

# -- an agent built with the SDK -----------------------------------------------------------


def sdk_agent_app(rpc_path: str = "/message") -> Starlette:
    app: Starlette = sdk_echo_app(prefix="echo: ", rpc_path=rpc_path)
    return app


@pytest.fixture
def sdk_agent() -> Iterator[LiveServer]:
    with serve_in_thread(sdk_agent_app()) as srv:
        yield srv


async def test_agent_client_calls_an_sdk_agent(sdk_agent: LiveServer) -> None:
    async with AgentClient(sdk_agent.url) as client:
        result = await client.send_message("hello sdk", context_id="ctx-1")
    message = result["message"]
    assert message["role"] == "ROLE_AGENT"
    assert message["parts"] == [{"text": "echo: hello sdk"}]
    assert message["contextId"] == "ctx-1"
    assert result_text(result) == "echo: hello sdk"


async def test_agent_client_streams_from_an_sdk_agent(sdk_agent: LiveServer) -> None:
    async with AgentClient(sdk_agent.url) as client:
        events = [event async for event in client.stream_message("streamed")]
    assert len(events) == 1
    assert result_text(events[0]) == "echo: streamed"


async def test_sdk_agent_errors_surface_as_rpc_call_errors(sdk_agent: LiveServer) -> None:
    async with AgentClient(sdk_agent.url) as client:
        with pytest.raises(RpcCallError) as exc:
            await client.get_task("no-such-task")
    assert exc.value.code == -32001  # TaskNotFoundError
    assert exc.value.http_status == 200


async def test_agent_client_with_the_sdk_default_rpc_path() -> None:
    with serve_in_thread(sdk_agent_app(rpc_path="/")) as srv:
        async with AgentClient(srv.url, rpc_path="/") as client:
            result = await client.send_message("root")
    assert result_text(result) == "echo: root"


# -- the SDK's client against a Bastion agent ----------------------------------------------


class StaticCredentials(CredentialService):
    """Hands one credential to the SDK's AuthInterceptor for one security scheme."""

    def __init__(self, scheme: str, credential: str) -> None:
        self.scheme = scheme
        self.credential = credential
        self.asked: list[str] = []

    async def get_credentials(
        self, security_scheme_name: str, context: ClientCallContext | None
    ) -> str | None:
        self.asked.append(security_scheme_name)
        return self.credential if security_scheme_name == self.scheme else None


@pytest.fixture
def bastion_echo(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    from bastion.agents.echo import echo_definition
    from bastion.config import load_settings
    from bastion.project import init_project
    from bastion.runtime.agent import AgentApp

    res = init_project(tmp_path)
    settings = load_settings(res.config)
    app = AgentApp(echo_definition(), settings)
    with serve_in_thread(app) as srv:
        yield srv, res.admin_key


def api_key_scheme_name(card: dict[str, Any]) -> str:
    for name, scheme in (card.get("securitySchemes") or {}).items():
        api_key = scheme.get("apiKeySecurityScheme")
        if api_key and api_key.get("location") == "header" and api_key.get("name") == "X-API-Key":
            return str(name)
    raise AssertionError("the Bastion card declares no X-API-Key header scheme")


@pytest.mark.parametrize("streaming", [False, True], ids=["send", "stream"])
async def test_sdk_client_calls_a_bastion_agent(
    bastion_echo: tuple[LiveServer, str], streaming: bool
) -> None:
    srv, admin_key = bastion_echo
    card_json = httpx.get(srv.url + "/.well-known/agent-card.json").json()
    credentials = StaticCredentials(api_key_scheme_name(card_json), admin_key)

    factory = ClientFactory(ClientConfig(streaming=streaming))
    # The interceptor reads the card's security schemes and adds the X-API-Key header.
    client = await factory.create_from_url(srv.url, interceptors=[AuthInterceptor(credentials)])
    async with client:
        request = a2a_pb2.SendMessageRequest(
            message=a2a_pb2.Message(
                message_id="interop-1",
                role=a2a_pb2.Role.ROLE_USER,
                parts=[a2a_pb2.Part(text="hello bastion")],
            )
        )
        replies = [event async for event in client.send_message(request)]
    assert credentials.asked
    texts = []
    for event in replies:
        if event.HasField("message"):
            texts.append(get_message_text(event.message))
        elif event.HasField("task"):
            texts.extend(
                part.text
                for artifact in event.task.artifacts
                for part in artifact.parts
                if part.text
            )
        elif event.HasField("artifact_update"):
            texts.extend(p.text for p in event.artifact_update.artifact.parts if p.text)
    assert "hello bastion" in texts, replies


async def test_sdk_client_without_credentials_is_refused(
    bastion_echo: tuple[LiveServer, str],
) -> None:
    srv, _ = bastion_echo
    factory = ClientFactory(ClientConfig(streaming=False))
    client = await factory.create_from_url(srv.url)
    async with client:
        request = a2a_pb2.SendMessageRequest(
            message=a2a_pb2.Message(
                message_id="interop-2",
                role=a2a_pb2.Role.ROLE_USER,
                parts=[a2a_pb2.Part(text="no key")],
            )
        )
        with pytest.raises(A2AClientError) as exc:
            _ = [event async for event in client.send_message(request)]
    assert "401" in str(exc.value)


async def test_agent_client_calls_a_bastion_agent_with_tokens(
    bastion_echo: tuple[LiveServer, str],
) -> None:
    srv, admin_key = bastion_echo
    async with AgentClient(srv.url, api_key=admin_key) as client:
        sent = await client.send_message("via token", context_id="ctx-b")
        events = [event async for event in client.stream_message("streamed")]
        task = await client.get_task(sent["task"]["id"])
        assert client.auth_mode == "bearer"
        quota = client.last_rate_limit
    assert sent["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert sent["task"]["contextId"] == "ctx-b"
    assert result_text(sent) == "via token"
    assert [next(iter(event)) for event in events] == ["task", "artifactUpdate", "statusUpdate"]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["id"] == sent["task"]["id"]
    assert result_text(task) == "via token"
    assert quota is not None and quota.limit is not None
    assert quota.remaining < quota.limit

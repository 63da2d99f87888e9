"""An echo agent built with the official a2a-sdk, for interoperability tests and the benchmark.

The a2a-sdk is a development dependency: import this module only from tests and `bench/`.
"""

from __future__ import annotations

from typing import Any


def sdk_echo_app(*, prefix: str = "", rpc_path: str = "/message", streaming: bool = True) -> Any:
    """A Starlette app: the SDK's card and JSON-RPC routes around an executor that answers
    every message with one agent message, `prefix + <the text it received>`."""
    from a2a.helpers import new_text_message
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore
    from a2a.types import a2a_pb2
    from a2a.utils.errors import UnsupportedOperationError
    from starlette.applications import Starlette

    class EchoExecutor(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            reply = new_text_message(
                prefix + context.get_user_input(),
                context_id=context.context_id,
                task_id=context.task_id,
            )
            await event_queue.enqueue_event(reply)

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            raise UnsupportedOperationError

    card = a2a_pb2.AgentCard(
        name="sdk-echo",
        description="Echo agent built with the A2A SDK.",
        version="1.0.0",
        supported_interfaces=[
            a2a_pb2.AgentInterface(
                url="http://127.0.0.1" + rpc_path,
                protocol_binding="JSONRPC",
                protocol_version="1.0",
            )
        ],
        capabilities=a2a_pb2.AgentCapabilities(streaming=streaming),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            a2a_pb2.AgentSkill(id="echo", name="Echo", description="Echoes text.", tags=["echo"])
        ],
    )
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_path)]
    return Starlette(routes=routes)

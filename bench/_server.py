"""One benchmark server process: builds the app for one variant and serves it under uvicorn.

    python bench/_server.py VARIANT --log FILE [--project DIR]

Binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout, then serves (uvloop + httptools,
one worker, no access log) until SIGTERM. Every log line, audit records included, goes to
`--log`, never to the terminal.

Variants:
    baseline  bare Starlette JSON-RPC echo: one route POST /message, orjson in and out
    open      Bastion echo agent, security off
    apikey    Bastion echo agent, full stack (the client sends X-API-Key)
    jwt       Bastion echo agent, full stack (the client sends a Bearer token)
    a2a-sdk   a2a-sdk 1.x SendMessage echo: AgentExecutor + DefaultRequestHandler + JSON-RPC routes
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

import uvicorn

VARIANTS = ("baseline", "open", "apikey", "jwt", "a2a-sdk")

# The full-stack variants keep the limiter on, with a quota the load cannot reach.
BENCH_RATE = "100000000/minute"
# Tokens outlive the whole run.
BENCH_TOKEN_TTL_SECONDS = 3600


def baseline_app() -> Any:
    """The reference point: parse the JSON-RPC request with orjson and echo the message."""
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def message(request: Request) -> Response:
        data = orjson.loads(await request.body())
        body = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": data.get("id"),
                "result": {"message": data["params"]["message"]},
            }
        )
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/message", message, methods=["POST"])])


def a2a_sdk_app() -> Any:
    """An echo agent written with the official SDK, served by the SDK's own JSON-RPC routes."""
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
        """Replies with one agent message holding the text it received."""

        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            reply = new_text_message(
                context.get_user_input(),
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
                url="http://127.0.0.1/message",
                protocol_binding="JSONRPC",
                protocol_version="1.0",
            )
        ],
        capabilities=a2a_pb2.AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            a2a_pb2.AgentSkill(id="echo", name="Echo", description="Echoes text.", tags=["echo"])
        ],
    )
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/message")]
    return Starlette(routes=routes)


def bastion_app(variant: str, project: Path, log: TextIO) -> Any:
    """The Bastion echo agent, with the security stack on (`apikey`, `jwt`) or off (`open`)."""
    from bastion.agents.echo import echo_definition
    from bastion.config import load_settings
    from bastion.observability.logging import configure_logging
    from bastion.runtime.agent import AgentApp

    settings = load_settings(project / "bastion.yaml")
    settings.rate_limit.default = BENCH_RATE
    settings.auth.token_service.ttl_seconds = BENCH_TOKEN_TTL_SECONDS
    # Before the app is built: the audit logger picks its stream up at construction.
    configure_logging(settings.logging, stream=log)
    return AgentApp(echo_definition(), settings, security=variant != "open")


def build_app(variant: str, project: Path | None, log: TextIO) -> Any:
    if variant in ("open", "apikey", "jwt"):
        if project is None:
            raise SystemExit(f"variant {variant} needs --project")
        return bastion_app(variant, project, log)
    from bastion.config import LoggingSettings
    from bastion.observability.logging import configure_logging

    configure_logging(LoggingSettings(), stream=log)
    if variant == "baseline":
        return baseline_app()
    return a2a_sdk_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--log", type=Path, required=True, help="file for every log line")
    parser.add_argument("--project", type=Path, help="project directory (Bastion variants)")
    args = parser.parse_args(argv)

    log = args.log.open("a", encoding="utf-8")
    app = build_app(args.variant, args.project, log)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sys.stdout.write(f"PORT {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

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
    apikey-untraced  as apikey, with tracing off (observability.tracing_enabled: false)
    a2a-sdk   a2a-sdk 1.x SendMessage echo: AgentExecutor + DefaultRequestHandler + JSON-RPC routes
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

import uvicorn

VARIANTS = ("baseline", "open", "apikey", "jwt", "a2a-sdk", "apikey-untraced")

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
    """(e): an echo agent built with the a2a-sdk, replying with the text it received."""
    from bastion.testing.sdk_echo import sdk_echo_app

    return sdk_echo_app(streaming=False)


def bastion_app(variant: str, project: Path, log: TextIO) -> Any:
    """The Bastion echo agent, with the security stack on (`apikey`, `jwt`) or off (`open`)."""
    from bastion.agents.echo import echo_definition
    from bastion.config import load_settings
    from bastion.observability.logging import configure_logging
    from bastion.runtime.agent import AgentApp

    settings = load_settings(project / "bastion.yaml")
    settings.rate_limit.default = BENCH_RATE
    settings.auth.token_service.ttl_seconds = BENCH_TOKEN_TTL_SECONDS
    settings.observability.tracing_enabled = variant != "apikey-untraced"
    # Before the app is built: the audit logger picks its stream up at construction.
    configure_logging(settings.logging, stream=log)
    return AgentApp(echo_definition(), settings, security=variant != "open")


def build_app(variant: str, project: Path | None, log: TextIO) -> Any:
    if variant in ("open", "apikey", "jwt", "apikey-untraced"):
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

"""`bastion serve AGENT`: run one agent (one per container in scale-out deployments)."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.common import ConfigOption, err_console, fail, settings_from
from bastion.runtime.serve import ServeError, run, uvicorn_config
from bastion.security.secrets import SecretError

TCK_PRINCIPAL = "tck"


def serve(
    agent: Annotated[str, typer.Argument(help="Agent to run: echo.")],
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (0 = any free).")] = None,
    tck: Annotated[
        bool,
        typer.Option(
            "--tck",
            help="A2A conformance profile: unauthenticated calls act as principal 'tck'. "
            "Loopback only.",
        ),
    ] = False,
) -> None:
    """Run one agent in the foreground until SIGTERM/Ctrl-C."""
    from bastion.agents.registry import definition_for
    from bastion.observability.logging import configure_logging
    from bastion.runtime.agent import AgentApp, AgentConfigError

    settings = settings_from(config)
    configure_logging(settings.logging)
    try:
        definition = definition_for(agent, settings, tck=tck)
    except KeyError as exc:
        fail(str(exc.args[0]))
    except (AgentConfigError, SecretError, ValueError) as exc:
        fail(str(exc))
    endpoint = settings.agents.get(agent)
    bind_host = host or settings.server.host
    bind_port = (
        port
        if port is not None
        else (endpoint.port if endpoint and endpoint.port else settings.server.port)
    )
    if endpoint and port is None and endpoint.url:
        from urllib.parse import urlsplit

        bind_port = urlsplit(endpoint.url).port or bind_port
    if tck:
        err_console.print(
            "[bold yellow]WARNING:[/] --tck disables authentication: unauthenticated calls act "
            f"as principal '{TCK_PRINCIPAL}'. Loopback only; never use in production."
        )
    try:
        cfg = uvicorn_config(
            AgentApp(definition, settings, anonymous_principal=TCK_PRINCIPAL if tck else None),
            settings.server,
            host=bind_host,
            port=bind_port,
            resolve_path=settings.path,
            loopback_only=tck,
        )
    except (ServeError, SecretError, ValueError) as exc:
        # ValueError: a setting the security stack cannot work with (e.g. no redis_url).
        fail(str(exc))
    run(cfg)

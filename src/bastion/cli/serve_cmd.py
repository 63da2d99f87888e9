"""`bastion serve NAME`: run one agent, the pipeline gateway or the pipeline worker (one per
container in scale-out deployments)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from bastion.cli.common import ConfigOption, err_console, fail, settings_from, usage_error
from bastion.config import Settings
from bastion.runtime import ServeError, run, stop_with_parent, uvicorn_config
from bastion.security import SecretError

TCK_PRINCIPAL = "tck"
# What `serve` runs besides the agents of the registry.
SERVICES = ("gateway", "worker")
HIGHEST_PORT = 65535


def serve(
    agent: Annotated[
        str,
        typer.Argument(
            help="What to run: an agent (echo, relay, archivist, validator, extractor, "
            "orchestrator), the pipeline's gateway (HTTP API), or its worker (queue consumer).",
            show_default=False,
        ),
    ],
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
    """Run one agent, the gateway or the worker in the foreground until SIGTERM/Ctrl-C."""
    from bastion.observability.logging import configure_logging

    _check_arguments(agent, port, tck)
    if agent == "worker" and (host is not None or port is not None):
        usage_error("the worker does not listen on a port: drop --host/--port")
    settings = settings_from(config)
    configure_logging(settings.logging)
    stop_with_parent()  # under `bastion up`: stop cleanly if it dies without stopping us
    if agent == "worker":
        _run_worker(settings)
        return
    if agent == "gateway":
        app = _gateway(settings)
        bind_host, bind_port = _url_host_port(settings.pipeline.gateway_url)
    else:
        app = _agent(agent, settings, tck)
        bind_host, bind_port = settings.server.host, _agent_port(agent, settings)
    if tck:
        err_console.print(
            "[bold yellow]WARNING:[/] --tck disables authentication: unauthenticated calls act "
            f"as principal '{TCK_PRINCIPAL}'. Loopback only; never use in production."
        )
    try:
        cfg = uvicorn_config(
            app,
            settings.server,
            host=host or bind_host,
            port=port if port is not None else bind_port,
            resolve_path=settings.path,
            loopback_only=tck,
        )
    except (ServeError, SecretError, ValueError) as exc:
        # ValueError: a setting the security stack cannot work with (e.g. no redis_url).
        fail(str(exc))
    run(cfg)


def _check_arguments(agent: str, port: int | None, tck: bool) -> None:
    """A bad argument is a usage error (exit 2): an unknown name, `--tck` for what has no
    conformance profile, a port outside 0-65535."""
    from bastion.agents.registry import CONFORMANCE_AGENTS, agent_names

    if agent not in (*agent_names(), *SERVICES):
        usage_error(
            f"unknown agent {agent!r}: choose one of {', '.join((*agent_names(), *SERVICES))}"
        )
    if tck and agent not in CONFORMANCE_AGENTS:
        usage_error(
            f"--tck is a conformance profile that {agent!r} does not have: it is only for "
            f"{', '.join(CONFORMANCE_AGENTS)}"
        )
    if port is not None and not 0 <= port <= HIGHEST_PORT:
        usage_error(f"--port {port}: give a port from 0 to {HIGHEST_PORT} (0 = any free)")


def _url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _agent_port(agent: str, settings: Settings) -> int:
    endpoint = settings.agents.get(agent)
    if endpoint is None:
        return settings.server.port
    first = endpoint.base_url()  # of several replicas' URLs, the first
    if first and urlsplit(first).port:
        return _url_host_port(first)[1]
    return endpoint.port or settings.server.port


def _agent(agent: str, settings: Settings, tck: bool) -> Any:
    from bastion.agents.registry import definition_for
    from bastion.runtime import AgentApp, AgentConfigError

    try:
        definition = definition_for(agent, settings, tck=tck)
        return AgentApp(definition, settings, anonymous_principal=TCK_PRINCIPAL if tck else None)
    except (AgentConfigError, SecretError, ValueError) as exc:
        fail(str(exc))


def _gateway(settings: Settings) -> Any:
    from bastion.runtime import AgentConfigError
    from bastion.web.gateway import build_gateway

    try:
        return build_gateway(settings)
    except (AgentConfigError, SecretError, ValueError) as exc:
        fail(str(exc))


def _run_worker(settings: Settings) -> None:
    from bastion.pipeline import run_worker
    from bastion.runtime import AgentConfigError

    try:
        code = run_worker(settings)
    except (AgentConfigError, SecretError) as exc:
        fail(str(exc))
    raise typer.Exit(code)

"""The document pipeline as `bastion up` runs it: its services, their URLs, and a supervisor.

The four agents (in start order), the gateway, and the worker, which starts once the agents are
ready; all on this machine and on loopback only (`check_local`). The generic process handling
(start, readiness, restarts, stop in order) is `bastion.runtime.supervisor`'s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bastion.config import Settings
from bastion.runtime import ChildSpec, Supervisor, SupervisorError, is_loopback, service_tls

__all__ = [
    "PIPELINE_AGENTS",
    "check_local",
    "pipeline_endpoints",
    "pipeline_specs",
    "pipeline_supervisor",
]

# The document pipeline's agents, in the order `bastion up` starts them.
PIPELINE_AGENTS = ("archivist", "validator", "extractor", "orchestrator")


def _with_port(url: str, port: int | None) -> str:
    parts = urlsplit(url)
    if parts.port is not None or port is None:
        return url.rstrip("/")
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}")).rstrip("/")


def pipeline_endpoints(settings: Settings) -> list[tuple[str, str]]:
    """(name, base URL) of the pipeline's HTTP services: the four agents, then the gateway.

    Raises SupervisorError when an agent is missing from the configuration.
    """
    out: list[tuple[str, str]] = []
    for name in PIPELINE_AGENTS:
        endpoint = settings.agents.get(name)
        if endpoint is None:
            raise SupervisorError(
                f"agents.{name} is missing from the configuration: add its url "
                "(`bastion init` writes the whole pipeline section)"
            )
        out.append((name, _with_port(endpoint.url, endpoint.port)))
    out.append(("gateway", settings.pipeline.gateway_url.rstrip("/")))
    return out


def check_local(settings: Settings) -> None:
    """Refuse a pipeline configuration that would listen beyond this machine."""
    for name, url in pipeline_endpoints(settings):
        host = urlsplit(url).hostname or ""
        if not is_loopback(host):
            setting = "pipeline.gateway_url" if name == "gateway" else f"agents.{name}.url"
            raise SupervisorError(
                f"{setting} is {url}: this runs every service on this machine and only on "
                "loopback; use 127.0.0.1, localhost or ::1 (deploy with `bastion serve NAME` "
                "per service to listen elsewhere)"
            )


def pipeline_specs(
    config_path: str | os.PathLike[str],
    settings: Settings,
    *,
    python: str = sys.executable,
) -> list[ChildSpec]:
    """The standard pipeline: archivist, validator, extractor, orchestrator (health
    `<url>/healthz`), the gateway (`<gateway_url>/healthz`), and the worker, which starts once
    the agents are ready."""
    config = str(Path(config_path).resolve())
    specs: list[ChildSpec] = []
    for name, url in pipeline_endpoints(settings):
        argv = [python, "-m", "bastion", "serve", name, "--config", config]
        specs.append(ChildSpec(name, argv, health_url=f"{url}/healthz"))
    agents = tuple(s.name for s in specs if s.name != "gateway")
    specs.append(
        ChildSpec(
            "worker",
            [python, "-m", "bastion", "serve", "worker", "--config", config],
            needs=agents,
        )
    )
    return specs


def pipeline_supervisor(
    config_path: str | os.PathLike[str],
    settings: Settings,
    **options: Any,
) -> Supervisor:
    """A Supervisor for `pipeline_specs()`, verifying TLS as the configuration says.
    `options` are passed to `Supervisor` (`log_dir`, `on_event`, ...)."""
    options.setdefault("verify", service_tls(settings))
    return Supervisor(pipeline_specs(config_path, settings), **options)

"""Everything `bastion up` runs: the document pipeline's services and the research agents.

The pipeline and the research system are sibling packages that must not know each other, so
their combined service list lives here, above both. Start order: the four pipeline agents
(the archivist first), then the research agents (researcher, critic, research: the research
agent needs the other two, the researcher needs the archivist), then the gateway (which calls
both), then the worker once the pipeline agents are ready. A configuration without any research
agent (a project from before research) runs the pipeline alone; one with only some of them is
refused, naming what is missing. Everything listens on loopback only (`check_local`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bastion.config import Settings
from bastion.pipeline import PIPELINE_AGENTS, pipeline_endpoints
from bastion.research.protocol import RESEARCH_AGENTS
from bastion.runtime import ChildSpec, Supervisor, SupervisorError, is_loopback, service_tls

__all__ = [
    "check_local",
    "research_endpoints",
    "service_endpoints",
    "service_specs",
    "service_supervisor",
]


def research_endpoints(settings: Settings) -> list[tuple[str, str]]:
    """(name, base URL) of the research agents in start order; [] when none is configured.
    SupervisorError when only some are."""
    configured = [name for name in RESEARCH_AGENTS if name in settings.agents]
    if not configured:
        return []
    missing = [name for name in RESEARCH_AGENTS if name not in settings.agents]
    if missing:
        raise SupervisorError(
            f"agents.{missing[0]} is missing from the configuration: the research agents "
            f"({', '.join(RESEARCH_AGENTS)}) run together; add its url and api_key "
            "(`bastion init` writes the whole section)"
        )
    out = []
    for name in RESEARCH_AGENTS:
        endpoint = settings.agents[name]
        out.append((name, endpoint.base_url()))
    return out


def service_endpoints(settings: Settings) -> list[tuple[str, str]]:
    """(name, base URL) of every HTTP service in start order: the pipeline agents, the
    research agents, the gateway."""
    pipeline = pipeline_endpoints(settings)
    agents = [(name, url) for name, url in pipeline if name != "gateway"]
    gateway = [(name, url) for name, url in pipeline if name == "gateway"]
    return [*agents, *research_endpoints(settings), *gateway]


def check_local(settings: Settings) -> None:
    """Refuse a configuration that would listen beyond this machine."""
    for name, url in service_endpoints(settings):
        host = urlsplit(url).hostname or ""
        if not is_loopback(host):
            setting = "pipeline.gateway_url" if name == "gateway" else f"agents.{name}.url"
            raise SupervisorError(
                f"{setting} is {url}: this runs every service on this machine and only on "
                "loopback; use 127.0.0.1, localhost or ::1 (deploy with `bastion serve NAME` "
                "per service to listen elsewhere)"
            )


def service_specs(
    config_path: str | os.PathLike[str],
    settings: Settings,
    *,
    python: str = sys.executable,
) -> list[ChildSpec]:
    """Every service as a child: each HTTP service (health `<url>/healthz`) in start order,
    then the worker, which starts once the pipeline agents are ready."""
    config = str(Path(config_path).resolve())
    specs = [
        ChildSpec(
            name,
            [python, "-m", "bastion", "serve", name, "--config", config],
            health_url=f"{url}/healthz",
        )
        for name, url in service_endpoints(settings)
    ]
    specs.append(
        ChildSpec(
            "worker",
            [python, "-m", "bastion", "serve", "worker", "--config", config],
            needs=PIPELINE_AGENTS,
        )
    )
    return specs


def service_supervisor(
    config_path: str | os.PathLike[str],
    settings: Settings,
    **options: Any,
) -> Supervisor:
    """A Supervisor for `service_specs()`, verifying TLS as the configuration says.
    `options` are passed to `Supervisor` (`log_dir`, `on_event`, ...)."""
    options.setdefault("verify", service_tls(settings))
    return Supervisor(service_specs(config_path, settings), **options)

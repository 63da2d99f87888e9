"""The document pipeline's services: its agents in start order, and their URLs.

`bastion up` runs them with the research agents (`bastion.agents.services`, above both); the
generic process handling (start, readiness, restarts, stop in order) is
`bastion.runtime.supervisor`'s.
"""

from __future__ import annotations

from bastion.config import Settings
from bastion.runtime import SupervisorError

__all__ = ["PIPELINE_AGENTS", "pipeline_endpoints"]

# The document pipeline's agents, in the order `bastion up` starts them.
PIPELINE_AGENTS = ("archivist", "validator", "extractor", "orchestrator")


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
        out.append((name, endpoint.base_url()))
    out.append(("gateway", settings.pipeline.gateway_url.rstrip("/")))
    return out

"""An agent's general-purpose outbound HTTP client, bound to its egress policy.

Calls to peer agents go through `AgentClient`, which may reach exactly the peers the
configuration names. Anything else an agent fetches (a search API, a web page a researcher
reads) goes through `outbound_client(settings, agent)`: the egress perimeter
(`bastion.egress`) with the policy `agents.<agent>.egress` of the configuration, which allows
nothing until hosts are named there. Refusals raise `EgressDenied`, are logged and, given an
audit sink, audited under the agent's name.
"""

from __future__ import annotations

from typing import Any

import httpx

from bastion.config import Settings
from bastion.egress import AuditSink, EgressPolicy, egress_client

__all__ = ["agent_egress_policy", "outbound_client"]


def agent_egress_policy(settings: Settings, agent: str) -> EgressPolicy:
    """`agents.<agent>.egress`, or the policy that allows nothing for an agent not configured."""
    endpoint = settings.agents.get(agent)
    return endpoint.egress if endpoint is not None else EgressPolicy()


def outbound_client(
    settings: Settings, agent: str, *, audit: AuditSink | None = None, **httpx_options: Any
) -> httpx.AsyncClient:
    """The agent's outbound client (`httpx.AsyncClient`): every request, redirects included,
    checked against its egress policy; connection options go to `egress_client`."""
    httpx_options.setdefault("timeout", settings.client.timeout_seconds)
    return egress_client(
        agent_egress_policy(settings, agent), principal=agent, audit=audit, **httpx_options
    )

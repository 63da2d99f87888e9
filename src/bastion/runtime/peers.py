"""An agent's calls to its peers: its own credential and lazily opened clients to each peer.

An agent calls a peer with its own credential (`agents.<self>.api_key`), never a borrowed one,
so every hop is authenticated, authorized and audited by the callee as that agent. Shared by
the document pipeline's agents and the research agents.
"""

from __future__ import annotations

from bastion.config import Settings
from bastion.runtime.agent import AgentConfigError
from bastion.runtime.client import AgentClient
from bastion.security import SecretValue, resolve

__all__ = ["PeerClients", "credential", "own_api_key", "peer_url"]


def credential(settings: Settings, setting: str, ref: str | None, principal: str) -> SecretValue:
    """A service principal's own key, from the secret reference configured at `setting`."""
    if not ref:
        raise AgentConfigError(
            f"{setting} is not set: add a secret reference to the {principal}'s key "
            f"(bastion init writes one to secrets/{principal}.key)"
        )
    return resolve(ref, settings.base_dir)


def own_api_key(settings: Settings, agent: str) -> SecretValue:
    """The agent's own credential for calls to its peers (resolved from its secret reference)."""
    own = settings.agents.get(agent)
    return credential(settings, f"agents.{agent}.api_key", own.api_key if own else None, agent)


def peer_url(settings: Settings, agent: str, peer: str) -> str | list[str]:
    """The peer's URL, or its replicas' URLs."""
    target = settings.agents.get(peer)
    if target is None or not target.url:
        raise AgentConfigError(f"agents.{peer}.url is not set: the {agent} needs the {peer}'s URL")
    return target.url


class PeerClients:
    """Lazily opened clients to peer agents, all using this agent's own credential."""

    def __init__(
        self,
        settings: Settings,
        agent: str,
        peers: tuple[str, ...],
        *,
        timeout_seconds: float | None = None,
    ) -> None:
        self._client_settings = settings.client
        if timeout_seconds is not None:
            self._client_settings = settings.client.model_copy(
                update={"timeout_seconds": timeout_seconds}
            )
        self._agent = agent
        self._urls = {p: peer_url(settings, agent, p) for p in peers}
        self._api_key = own_api_key(settings, agent)
        self._clients: dict[str, AgentClient] = {}

    def __getitem__(self, peer: str) -> AgentClient:
        client = self._clients.get(peer)
        if client is None:
            client = AgentClient(
                self._urls[peer],
                api_key=self._api_key,
                settings=self._client_settings,
                principal=self._agent,
            )
            self._clients[peer] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

"""What the pipeline agents share: document-id params, peer clients, the shared stores, status.

An agent calls a peer with its own credential (`agents.<self>.api_key`), never a borrowed one,
so every hop is authenticated, authorized and audited by the callee as that agent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.pipeline.model import DOCUMENT_ID_PATTERN
from bastion.runtime import AgentClient, AgentConfigError, MethodRegistry
from bastion.security import SecretValue, resolve
from bastion.storage import SHA256_PATTERN


class DocumentRef(BaseModel):
    """Params naming one document by its id."""

    model_config = {"extra": "forbid"}

    document_id: str = Field(pattern=DOCUMENT_ID_PATTERN)


class StoredDocumentRef(DocumentRef):
    """Params naming one document and its bytes in the object store (their SHA-256)."""

    sha256: str = Field(pattern=SHA256_PATTERN)


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


def peer_url(settings: Settings, agent: str, peer: str) -> str:
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


def processing_timeout(settings: Settings, margin: float) -> float:
    """A call timeout that outlasts one extraction (its own limit) by `margin` seconds."""
    extraction = settings.pipeline.extraction_timeout_seconds
    return max(settings.client.timeout_seconds, extraction + margin)


def add_status_method(
    registry: MethodRegistry, agent: str, counters: Callable[[], dict[str, Any]] | None = None
) -> None:
    """Register `get_status`: the agent's name, uptime and its own counters."""
    started = time.monotonic()

    async def get_status() -> dict[str, Any]:
        """The agent's liveness, uptime and work counters."""
        status: dict[str, Any] = {
            "agent": agent,
            "status": "ok",
            "uptime_seconds": round(time.monotonic() - started, 1),
        }
        if counters is not None:
            # Counters may read the database: off the event loop.
            status.update(await asyncio.to_thread(counters))
        return status

    registry.add("get_status", get_status)

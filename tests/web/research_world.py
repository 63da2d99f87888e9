"""A gateway in front of the fake research agent (`bastion.testing.fake_research`), both served
on loopback with their security stacks, for the research route, WebSocket and CLI tests.

Principals: `alice`, `bob` and `carol` (askers granted `gateway.research` and
`gateway.conversations`; tests may take carol's grants away), `submitter` (the same grants: the
key `bastion research` uses by default) and `nobody` (a valid key without them). The gateway
may call every research method.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bastion.config import AgentEndpoint, Settings
from bastion.security.stack import build_api_key_store
from bastion.storage.database import migrate
from bastion.storage.models import AuditRecord
from bastion.testing import serve_in_thread
from bastion.testing.fake_research import FakeResearch
from bastion.web import build_gateway
from tests.web.conftest import Project, make_project

ASKERS = ("alice", "bob", "carol", "submitter")
RESEARCH_METHODS = ("ask", "start", "get", "cancel", "conversations", "conversation")
GRANTS = ("gateway.research", "gateway.conversations")


@dataclass
class World:
    project: Project
    url: str
    fake: FakeResearch

    @property
    def settings(self) -> Settings:
        return self.project.settings

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws/research"

    def request(
        self, method: str, path: str, principal: str | None = "alice", **kw: Any
    ) -> httpx.Response:
        headers = {"X-API-Key": self.project.keys[principal]} if principal else {}
        headers.update(kw.pop("headers", {}))
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def ask(
        self, message: str = "Who wrote the first program?", principal: str = "alice", **fields: Any
    ) -> dict[str, Any]:
        resp = self.request("POST", "/api/research", principal, json={"message": message, **fields})
        assert resp.status_code == 202, resp.text
        return dict(resp.json())

    def connect(self, principal: str = "alice", **kw: Any) -> connect:
        token = self.project.keys[principal]
        offered = [Subprotocol("bastion.v1"), Subprotocol(f"bearer.{token}")]
        return connect(self.ws_url, subprotocols=offered, open_timeout=10, **kw)

    def audit(self, where: Callable[[AuditRecord], bool], at_least: int = 1) -> list[AuditRecord]:
        return self.project.audit_records(where, at_least=at_least)


def _grant(settings: Settings) -> None:
    path = settings.path(settings.policy.file)
    policy = json.loads(path.read_text())
    allow = policy["allow"]
    allow["gateway"] = [*allow["gateway"], *(f"research.{m}" for m in RESEARCH_METHODS)]
    for principal in ASKERS:
        allow[principal] = [*allow.get(principal, []), *GRANTS]
    allow["nobody"] = ["gateway.events"]
    path.write_text(json.dumps(policy))


@contextmanager
def research_world(
    tmp: Path, configure: Callable[[Settings], None] | None = None
) -> Iterator[World]:
    """The fake research agent and the gateway on a fresh SQLite project in `tmp`."""
    db_url = f"sqlite:///{tmp / 'bastion.db'}"
    migrate(db_url)
    project = make_project(tmp, db_url, configure)
    store = build_api_key_store(project.settings)
    for principal in ("alice", "bob", "carol", "nobody"):
        project.keys[principal] = store.create(principal, label="test")
    _grant(project.settings)
    fake = FakeResearch()
    with serve_in_thread(fake.app(project.settings)) as research:
        project.settings.agents["research"] = AgentEndpoint(url=research.url)
        with serve_in_thread(build_gateway(project.settings)) as gateway:
            yield World(project, gateway.url, fake)


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str)
    return dict(json.loads(raw))


async def until_closed(
    ws: ClientConnection, timeout: float = 10.0
) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: (close code, reason, the messages read before)."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            seen.append(await recv(ws, timeout))
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the server did not send a close frame"
        return exc.rcvd.code, exc.rcvd.reason, seen

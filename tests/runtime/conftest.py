"""A fully assembled echo agent on a real loopback port, with its project folder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.agents.echo import echo_definition
from bastion.config import AgentEndpoint, Settings, load_settings
from bastion.project import init_project
from bastion.runtime.agent import AgentApp, AgentDefinition
from bastion.security.stack import build_api_key_store
from bastion.storage.models import AuditRecord
from bastion.testing import serve_in_thread
from tests.audit_rows import audit_rows


@dataclass
class AgentEnv:
    url: str
    dir: Path
    settings: Settings
    admin_key: str
    app: AgentApp

    def key(self, principal: str, **kw: Any) -> str:
        return build_api_key_store(self.settings).create(principal, **kw)

    def set_policy(self, doc: dict[str, Any]) -> None:
        self.settings.path(self.settings.policy.file).write_text(json.dumps(doc))

    def rpc(
        self,
        method: str,
        params: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        rid: Any = 1,
    ) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            body["params"] = params
        return self.post(json.dumps(body).encode(), key=key, headers=headers)

    def post(
        self, body: bytes, *, key: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        h = {"content-type": "application/json"}
        if key is not None:
            h["X-API-Key"] = key
        h.update(headers or {})
        return httpx.post(self.url + "/message", content=body, headers=h, timeout=10)

    def audit_records(
        self, where: Callable[[AuditRecord], bool] = lambda r: True, *, at_least: int = 1
    ) -> list[AuditRecord]:
        """Audit rows matching `where`, waiting for the writer's next flush."""
        return audit_rows(self.settings, where, at_least=at_least)


def make_env(
    tmp_path: Path,
    configure: Callable[[Settings], None] | None = None,
    definition: AgentDefinition | None = None,
) -> Iterator[AgentEnv]:
    """An agent (default: the echo agent) serving a fresh project on a loopback port."""
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.auth.api_key_cache_seconds = 0
    settings.policy.reload_check_seconds = 0
    if configure:
        configure(settings)
    app = AgentApp(definition or echo_definition(), settings)
    with serve_in_thread(app) as srv:
        yield AgentEnv(srv.url, res.directory, settings, res.admin_key, app)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path)


def public(settings: Settings) -> None:
    """The echo agent configured `public`: served behind the edge WAF."""
    settings.agents.setdefault("echo", AgentEndpoint(url="http://127.0.0.1:8090"))
    settings.agents["echo"].public = True

"""Helpers for the `/ws/events` tests: a gateway with its archivist, tokens, a client."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bastion.config import Settings
from bastion.security.apikeys import parse_key_id
from bastion.security.jwt_verify import KEY_ID_CLAIM
from bastion.security.token_service import SigningKeys
from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from tests.web.conftest import Project, make_project, record_new_upload, serve_archivist

SUBPROTOCOL = "bastion.v1"


@dataclass
class Gateway:
    project: Project
    url: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws/events"

    def jwt(self, principal: str, *, exp: float, **claims: Any) -> str:
        """A token of the built-in token service, with any `exp`, exchanged for the
        principal's project key."""
        settings = self.project.settings
        now = int(time.time())
        body = {
            "iss": settings.auth.token_service.issuer,
            "aud": settings.auth.token_service.audience,
            "sub": principal,
            "iat": now,
            "exp": int(exp),
            "jti": os.urandom(8).hex(),
            KEY_ID_CLAIM: parse_key_id(self.project.keys[principal]),
            **claims,
        }
        return SigningKeys(settings.auth.token_service, settings.base_dir).sign(body)

    def connect_query(self, token: str, **kw: Any) -> connect:
        return connect(f"{self.ws_url}?token={token}", open_timeout=10, **kw)

    def connect_subprotocol(self, token: str, **kw: Any) -> connect:
        offered = [Subprotocol(SUBPROTOCOL), Subprotocol(f"bearer.{token}")]
        return connect(self.ws_url, subprotocols=offered, open_timeout=10, **kw)

    def received(self, principal: str, correlation_id: str = "cid-received") -> str:
        """Record the upload of new bytes by `principal` (as the ingest does): its id."""
        return record_new_upload(self.project.repo, principal, correlation_id)


def events_settings(
    values: dict[str, Any], more: Callable[[Settings], None] | None = None
) -> Callable[[Settings], None]:
    def configure(settings: Settings) -> None:
        settings.events.poll_interval_seconds = 0.05
        settings.events.ping_interval_seconds = 30
        for name, value in values.items():
            setattr(settings.events, name, value)
        if more is not None:
            more(settings)

    return configure


@contextmanager
def start(
    tmp_path: Path,
    db_url: str,
    configure: Callable[[Settings], None] | None = None,
    **events: Any,
) -> Iterator[Gateway]:
    """The archivist and the gateway on a fresh project; `events` settings as given (a fast
    poll, pings every 30 s by default)."""
    project = make_project(tmp_path, db_url, events_settings(events, configure))
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as gw:
        yield Gateway(project, gw.url)


async def next_event(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next message that is not a ping."""
    while True:
        msg = json.loads(await _recv(ws, timeout))
        if msg["type"] != "ping":
            return dict(msg)


async def _recv(ws: ClientConnection, timeout: float) -> str:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str)
    return raw


async def closed(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str, list[Any]]:
    """Read until the server closes: (close code, reason, the messages read before)."""
    seen: list[Any] = []
    try:
        while True:
            seen.append(json.loads(await _recv(ws, timeout)))
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the server did not send a close frame"
        return exc.rcvd.code, exc.rcvd.reason, seen

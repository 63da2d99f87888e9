"""Opening one of the gateway's WebSockets from a client command (`bastion submit --wait`,
`bastion research`): the key in the subprotocol header (`bastion.v1, bearer.<key>`, never the
URL), TLS as the configuration says, no proxy."""

from __future__ import annotations

import ssl

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

__all__ = ["SUBPROTOCOL", "open_gateway_socket"]

SUBPROTOCOL = "bastion.v1"


def open_gateway_socket(
    gateway: str, path: str, key: str, tls: ssl.SSLContext | bool, *, open_timeout: float
) -> ClientConnection:
    """The WebSocket at `path` of the gateway at `gateway` (`http(s)://host:port`)."""
    url = "ws" + gateway.rstrip("/").removeprefix("http") + path
    secure = url.startswith("wss:")
    return ws_connect(
        url,
        subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(f"bearer.{key}")],
        ssl=tls if secure and isinstance(tls, ssl.SSLContext) else None,
        proxy=None,
        open_timeout=open_timeout,
    )

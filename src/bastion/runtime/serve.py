"""Run an agent under uvicorn: TLS/mTLS, loopback rules, graceful shutdown on SIGTERM.

Plain HTTP is allowed on loopback only, unless `server.allow_insecure_http` is set. On SIGTERM
uvicorn stops accepting, lets in-flight requests finish (up to
`server.shutdown_timeout_seconds`), then the lifespan shutdown flushes the audit buffer, and
the process exits with status 0.
"""

from __future__ import annotations

import ipaddress
import math
import signal
import ssl
import threading
from types import FrameType
from typing import Any

import uvicorn

from bastion.config import ServerSettings


class ServeError(Exception):
    """The server refuses to start with this configuration; the message says why."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_options(server: ServerSettings, resolve_path: Any) -> dict[str, Any]:
    tls = server.tls
    if not tls.certfile:
        if tls.client_ca_file:
            raise ServeError(
                "server.tls.client_ca_file (mTLS) needs server.tls.certfile and keyfile"
            )
        return {}
    if not tls.keyfile:
        raise ServeError("server.tls.certfile is set but server.tls.keyfile is not")
    opts: dict[str, Any] = {
        "ssl_certfile": str(resolve_path(tls.certfile)),
        "ssl_keyfile": str(resolve_path(tls.keyfile)),
    }
    if tls.client_ca_file:
        opts["ssl_ca_certs"] = str(resolve_path(tls.client_ca_file))
        opts["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return opts


def check_bind(host: str, *, tls: bool, allow_insecure_http: bool, loopback_only: bool) -> None:
    if loopback_only and not is_loopback(host):
        raise ServeError(
            f"refusing to bind {host}: this profile disables authentication and runs on "
            "loopback only (use 127.0.0.1)"
        )
    if not tls and not allow_insecure_http and not is_loopback(host):
        raise ServeError(
            f"refusing plain HTTP on {host}: configure server.tls.certfile/keyfile, bind "
            "127.0.0.1, or set server.allow_insecure_http: true explicitly"
        )


WS_MAX_MESSAGE_BYTES = 64 * 1024


def uvicorn_config(
    app: Any,
    server: ServerSettings,
    *,
    host: str,
    port: int,
    resolve_path: Any,
    loopback_only: bool = False,
) -> uvicorn.Config:
    opts = tls_options(server, resolve_path)
    check_bind(
        host,
        tls=bool(opts),
        allow_insecure_http=server.allow_insecure_http,
        loopback_only=loopback_only,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        access_log=False,
        log_config=None,
        # Rounded up: a sub-second setting must not become 0, which would cancel in-flight
        # requests at once instead of letting them finish.
        timeout_graceful_shutdown=math.ceil(server.shutdown_timeout_seconds),
        server_header=False,
        # The client address is the socket's: X-Forwarded-For counts only where the WAF's
        # `waf.trusted_proxies` says so (uvicorn would otherwise trust it from loopback).
        proxy_headers=False,
        # No endpoint takes a large WebSocket message (`/ws/events` takes 4 KiB): a bigger one
        # is refused (1009) by the server before it is buffered, not after 16 MiB.
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        # No compression of WebSocket messages: events are small JSON, and compressing what
        # mixes a client's data with other content invites CRIME/BREACH-style guessing.
        ws_per_message_deflate=False,
        **opts,
    )


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(config: uvicorn.Config) -> None:
    """Serve until SIGTERM or Ctrl-C.

    uvicorn handles SIGTERM itself (graceful shutdown), then raises the signal again with the
    handler it found installed. That handler is `_stopped`, so a requested stop ends with exit
    status 0 rather than death by signal.
    """
    if threading.current_thread() is not threading.main_thread():
        uvicorn.Server(config).run()
        return
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(config).run()
    finally:
        signal.signal(signal.SIGTERM, previous)

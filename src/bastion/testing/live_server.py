"""Run an ASGI app under uvicorn in a background thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class LiveServer:
    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    ssl_options: dict[str, Any] | None = None,
    startup_timeout: float = 60.0,
    port: int = 0,
) -> Iterator[LiveServer]:
    """Serve `app` until the block exits; yields the base URL.

    `ssl_options` are passed to uvicorn (`ssl_certfile`, `ssl_keyfile`, `ssl_ca_certs`,
    `ssl_cert_reqs`). `port` 0 picks a free port. `startup_timeout` only catches a start-up that
    hangs: with the cores shared by other tests' processes, a start (the app's lifespan: its
    database, its audit writer process) takes seconds.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # as `bastion serve`: the socket's address is the client's
        **(ssl_options or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server thread died during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start in time")
        time.sleep(0.01)
    scheme = "https" if ssl_options and ssl_options.get("ssl_certfile") else "http"
    try:
        yield LiveServer(url=f"{scheme}://{host}:{port}", port=port, server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def client_ssl_context(
    ca_file: str, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx

"""The whole document pipeline in one process, on real loopback ports, for tests and the bench.

    with pipeline_in_threads(init_project(tmp_path).config) as stack:
        doc = stack.upload(pdf_bytes)
        stack.wait_until(doc["id"], {"archived"})

`assign_ports` rewrites a project's `bastion.yaml` so that every agent and the gateway get a
free port; separate processes started from the same file (a worker killed mid-document, the
CLI) then find them. The four agents and the gateway run under uvicorn in threads; the worker
runs in its own thread and event loop unless `worker=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from bastion.config import Settings, load_settings
from bastion.security.secrets import resolve
from bastion.testing.live_server import serve_in_thread

AGENTS = ("archivist", "validator", "extractor", "orchestrator")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def assign_ports(config: Path, **overrides: dict[str, Any]) -> None:
    """Give each agent and the gateway a free loopback port in `config`; merge `overrides`
    (section name -> settings) into the file too."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    for name in AGENTS:
        doc["agents"][name]["url"] = f"http://127.0.0.1:{free_port()}"
    doc["pipeline"]["gateway_url"] = f"http://127.0.0.1:{free_port()}"
    for section, values in overrides.items():
        doc.setdefault(section, {}).update(values)
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@dataclass
class PipelineStack:
    settings: Settings
    gateway_url: str
    submit_key: str

    def upload(
        self, data: bytes, filename: str = "doc.pdf", *, key: str | None = None
    ) -> httpx.Response:
        return httpx.post(
            self.gateway_url + "/api/documents",
            files={"file": (filename, data, "application/pdf")},
            headers={"X-API-Key": key or self.submit_key},
            timeout=30,
        )

    def document(self, document_id: str, *, key: str | None = None) -> dict[str, Any]:
        resp = httpx.get(
            f"{self.gateway_url}/api/documents/{document_id}",
            headers={"X-API-Key": key or self.submit_key},
            timeout=30,
        )
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def wait_until(
        self, document_id: str, statuses: set[str], *, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The document once its status is in `statuses`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.document(document_id)
            if doc.get("status") in statuses:
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{document_id[:12]} still {doc.get('status')!r}")
            time.sleep(0.1)


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


@contextlib.contextmanager
def worker_in_thread(settings: Settings) -> Iterator[None]:
    """Run the queue worker on its own event loop in a thread until the block exits."""
    from bastion.pipeline.worker import serve_worker

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve_worker(settings, stop))

    thread = threading.Thread(target=run, name="bastion-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


@contextlib.contextmanager
def pipeline_in_threads(
    config: Path, *, worker: bool = True, gateway: bool = True
) -> Iterator[PipelineStack]:
    """Serve the pipeline described by `config` (ports assigned by `assign_ports`)."""
    from bastion.agents.registry import definition_for
    from bastion.runtime.agent import AgentApp

    settings = load_settings(config)
    with contextlib.ExitStack() as stack:
        for name in AGENTS:
            app = AgentApp(definition_for(name, settings), settings)
            stack.enter_context(serve_in_thread(app, port=_port(settings.agents[name].url)))
        gateway_url = settings.pipeline.gateway_url
        if gateway:
            from bastion.web.gateway import build_gateway

            stack.enter_context(serve_in_thread(build_gateway(settings), port=_port(gateway_url)))
        if worker:
            stack.enter_context(worker_in_thread(settings))
        ref = settings.pipeline.submit_api_key
        submit_key = resolve(ref, settings.base_dir).get() if ref else ""
        yield PipelineStack(settings=settings, gateway_url=gateway_url, submit_key=submit_key)

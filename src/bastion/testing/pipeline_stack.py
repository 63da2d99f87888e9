"""The whole document pipeline in one process, on real loopback ports, for tests and the bench.

    config = init_project(tmp_path).config
    assign_ports(config)
    with pipeline_in_threads(config) as settings:
        ...  # upload to settings.pipeline.gateway_url, call settings.agents[...].url

`assign_ports` rewrites a project's `bastion.yaml` so that every agent and the gateway get a
free port; separate processes started from the same file (a worker killed mid-document, the
CLI) then find them. The four agents and the gateway run under uvicorn in threads; the worker
runs in its own thread and event loop unless `worker=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bastion.config import Settings, load_settings
from bastion.pipeline import PIPELINE_AGENTS
from bastion.research.protocol import RESEARCH_AGENTS
from bastion.testing.live_server import serve_in_thread
from bastion.testing.ports import free_port


def assign_ports(config: Path, **overrides: dict[str, Any]) -> None:
    """Give each agent (the pipeline's, and the research agents when configured) and the
    gateway a free loopback port in `config`; merge `overrides` (section name -> settings)
    into the file too."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    for name in (*PIPELINE_AGENTS, *RESEARCH_AGENTS):
        if name in doc["agents"]:
            doc["agents"][name]["url"] = f"http://127.0.0.1:{free_port()}"
    doc["pipeline"]["gateway_url"] = f"http://127.0.0.1:{free_port()}"
    for section, values in overrides.items():
        doc.setdefault(section, {}).update(values)
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


@contextlib.contextmanager
def worker_in_thread(settings: Settings) -> Iterator[None]:
    """Run the queue worker on its own event loop in a thread until the block exits."""
    from bastion.pipeline import serve_worker

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
    config: Path,
    *,
    worker: bool = True,
    gateway: bool = True,
    research: bool = False,
    only: Sequence[str] | None = None,
) -> Iterator[Settings]:
    """Serve the pipeline described by `config` (ports assigned by `assign_ports`), and the
    research agents too with `research`; `only`: just these agents. Yields its settings."""
    from bastion.agents.registry import definition_for
    from bastion.runtime import AgentApp

    settings = load_settings(config)
    agents = only or (*PIPELINE_AGENTS, *(RESEARCH_AGENTS if research else ()))
    with contextlib.ExitStack() as stack:
        for name in agents:
            app = AgentApp(definition_for(name, settings), settings)
            stack.enter_context(serve_in_thread(app, port=_port(settings.agents[name].base_url())))
        gateway_url = settings.pipeline.gateway_url
        if gateway:
            from bastion.web.gateway import build_gateway

            stack.enter_context(serve_in_thread(build_gateway(settings), port=_port(gateway_url)))
        if worker:
            stack.enter_context(worker_in_thread(settings))
        yield settings

"""The document pipeline scaled out on one machine: every agent replica, every worker and the
gateway a `bastion serve` process of its own under one `Supervisor`, for the scale test and
`bench/scale.py`.

    config = init_project(directory).config
    layout = scale_out(config, replicas=2, workers=3, pipeline={...})
    with Supervisor(scale_specs(config, layout), log_dir=directory / "logs") as supervisor:
        sigkill(supervisor, "extractor-2")  # gone at once; the supervisor starts it again

`scale_out` gives each replica of each pipeline agent a free loopback port and writes the list
of their URLs as the agent's address (the agent client spreads calls over them). Each replica
runs with its own `server.replica_id` (its child name, kept across restarts as a pod name is),
so each writes its own audit chain. Workers start once every agent replica is ready.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bastion.pipeline import PIPELINE_AGENTS
from bastion.runtime import ChildSpec, Supervisor
from bastion.testing.pipeline_stack import assign_ports
from bastion.testing.ports import free_port

REPLICA_ID_ENV = "BASTION_SERVER__REPLICA_ID"


@dataclass(frozen=True)
class Layout:
    """What runs: each pipeline agent's replicas (child name -> port) and the workers' names."""

    replicas: dict[str, dict[str, int]]
    workers: tuple[str, ...]

    @property
    def agent_replicas(self) -> list[str]:
        return [name for ports in self.replicas.values() for name in ports]


def scale_out(config: Path, *, replicas: int, workers: int, **overrides: dict[str, Any]) -> Layout:
    """Rewrite `config` for `replicas` replicas of each pipeline agent (free loopback ports)
    and a free gateway port; merge `overrides` (section -> settings) as `assign_ports` does."""
    if replicas < 1 or workers < 1:
        raise ValueError("give at least one replica of each agent and one worker")
    assign_ports(config, **overrides)
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    layout: dict[str, dict[str, int]] = {}
    for agent in PIPELINE_AGENTS:
        ports = {f"{agent}-{i}": free_port() for i in range(1, replicas + 1)}
        urls = [f"http://127.0.0.1:{port}" for port in ports.values()]
        doc["agents"][agent]["url"] = urls if replicas > 1 else urls[0]
        layout[agent] = ports
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return Layout(layout, tuple(f"worker-{i}" for i in range(1, workers + 1)))


def scale_specs(config: Path, layout: Layout, *, python: str = sys.executable) -> list[ChildSpec]:
    """The children for `layout`: the agent replicas (archivist first), the gateway, then the
    workers, which need every replica."""
    serve = [python, "-m", "bastion", "serve"]
    path = str(config.resolve())
    gateway_url = _gateway_url(config)
    several = any(len(ports) > 1 for ports in layout.replicas.values())
    specs = [
        ChildSpec(
            name,
            [*serve, agent, "--config", path, "--port", str(port)],
            health_url=f"http://127.0.0.1:{port}/healthz",
            env={REPLICA_ID_ENV: name} if several else None,
        )
        for agent, ports in layout.replicas.items()
        for name, port in ports.items()
    ]
    specs.append(
        ChildSpec(
            "gateway", [*serve, "gateway", "--config", path], health_url=f"{gateway_url}/healthz"
        )
    )
    needs = tuple(layout.agent_replicas)
    specs.extend(
        ChildSpec(name, [*serve, "worker", "--config", path], needs=needs)
        for name in layout.workers
    )
    return specs


def _gateway_url(config: Path) -> str:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    return str(doc["pipeline"]["gateway_url"]).rstrip("/")


def sigkill(supervisor: Supervisor, name: str) -> bool:
    """SIGKILL the child `name` and everything it started (its process group: audit writer,
    sandbox workers), as when its container dies; False when it was not running."""
    pid = supervisor.pid(name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
        return True
    return False

"""A real deployment for the browser tests: `bastion init` in a temporary folder, free loopback
ports, the bundled research corpus, alarm rules evaluated every 2 s with one a test can fire, a
key for `monitoring` (and the `submitter` key init wrote), then `bastion up` as a process of its
own, ready once every service answers its health endpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bastion.agents.services import service_endpoints
from bastion.alarms.rules import shipped_rules_text
from bastion.config import load_settings
from bastion.research.samples import bundled_corpus
from bastion.security.stack import build_api_key_store
from bastion.testing.pipeline_stack import assign_ports
from tests.cli.runner import process_env, run_process

UP_TIMEOUT = 120.0  # a hang guard: a loaded 2-core machine starts ten services slowly
STOP_TIMEOUT = 60.0
POLL_SECONDS = 0.2
ALARM_RULES = "alarms-browser.yaml"
ALARM_INTERVAL_SECONDS = 2.0
# Fires on any refused credential within the last 10 s, resolves 10 s after the last one.
INJECTED_ALARM = "BrowserAuthFailures"
INJECTED_RULE = {
    "name": INJECTED_ALARM,
    "kind": "rate",
    "metric": "bastion_auth_failures_total",
    "window": "10s",
    "op": ">",
    "threshold": 0,
    "for": "0s",
    "severity": "warning",
    "summary": "A credential was refused in the last 10 seconds (the browser tests inject it)",
}


@dataclass
class Deployment:
    """A running `bastion up`: its folder, the gateway's URL and the principals' API keys."""

    project: Path
    url: str
    keys: dict[str, str] = field(default_factory=dict)

    def api(self, principal: str) -> httpx.Client:
        """The gateway's JSON API as `principal` (its API key)."""
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"X-API-Key": self.keys[principal]}
        )


def alarm_rules() -> str:
    """The shipped alarm rules and the one the alarm scenario injects."""
    rules = yaml.safe_load(shipped_rules_text())
    rules["rules"].append(INJECTED_RULE)
    text: str = yaml.safe_dump(rules, sort_keys=False)
    return text


def _health_url(name: str, url: str) -> str:
    return f"{url}/healthz" if name == "gateway" else f"{url}/readyz"


def _wait_ready(up: subprocess.Popen[bytes], urls: list[str], log: Path) -> None:
    """Return once every URL answers 200; fail when `bastion up` exits or the guard runs out."""
    deadline = time.monotonic() + UP_TIMEOUT
    pending = list(urls)
    with httpx.Client(timeout=5) as client:
        while pending:
            if up.poll() is not None:
                raise AssertionError(f"bastion up exited {up.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                waiting = f"not ready after {UP_TIMEOUT} s: {pending}"
                raise AssertionError(f"{waiting}\n{log.read_text()}")
            try:
                if client.get(pending[0]).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.TransportError:
                pass
            time.sleep(POLL_SECONDS)  # between health probes; the deadline above bounds it


def _init(folder: Path) -> tuple[Path, str]:
    """`bastion init` as a real process: (project folder, the admin key it printed)."""
    project = folder / "proj"
    result = run_process("init", "--dir", str(project), cwd=folder, timeout=UP_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, result.stdout.strip().splitlines()[-1]


@contextmanager
def bastion_up(folder: Path) -> Iterator[Deployment]:
    """A fresh project under `folder`, served by `bastion up` until the block exits."""
    project, admin_key = _init(folder)
    config = project / "bastion.yaml"
    # Research answers from the bundled corpus too, as the demo's does (offline, no model);
    # the alarms are evaluated often, with a rule the alarm scenario can fire and resolve.
    (project / ALARM_RULES).write_text(alarm_rules(), encoding="utf-8")
    assign_ports(
        config,
        research={"corpus": str(bundled_corpus())},
        alarms={"rules_file": ALARM_RULES, "interval_seconds": ALARM_INTERVAL_SECONDS},
    )
    settings = load_settings(config)
    keys = {
        "admin": admin_key,
        "submitter": (project / "secrets" / "submitter.key").read_text().strip(),
        "monitoring": build_api_key_store(settings).create("monitoring", label="browser tests"),
    }
    log = folder / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "bastion", "up"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=process_env(COLUMNS="200"),
        )
    try:
        endpoints = service_endpoints(settings)
        _wait_ready(up, [_health_url(name, url) for name, url in endpoints], log)
        yield Deployment(project, settings.pipeline.gateway_url, keys)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()

"""The ports tests write into configs lie outside the kernel's ephemeral range, one slice per
pytest-xdist worker, so an outgoing connection or another worker cannot take them first."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from bastion.testing.ports import free_port

PROBE = "from bastion.testing.ports import free_port; print(*[free_port() for _ in range(50)])"


def _ports_of_worker(worker: str) -> set[int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"PYTEST_XDIST_WORKER": worker, "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(p) for p in out.split()}


def test_ports_lie_below_the_ephemeral_range_and_are_bindable() -> None:
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(20000 <= p < floor for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))


def test_two_workers_never_draw_the_same_port() -> None:
    assert not _ports_of_worker("gw0") & _ports_of_worker("gw1")

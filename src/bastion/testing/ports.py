"""Loopback ports for tests that must name a port before something listens on it.

A port the kernel hands out for `bind(0)` lies in the ephemeral range, where an outgoing
connection (to PostgreSQL, Redis, another test's server) may take it between the moment a test
writes it into a config and the moment a server binds it. The ports handed out here lie below
that range, where the kernel never picks a source port, and each pytest-xdist worker draws from
its own slice, so two workers never pick the same one (other processes: a slice by pid).
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

_FLOOR = 20000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_SLICES = 8


def _ephemeral_floor() -> int:
    try:
        return int(_RANGE_FILE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_index() -> int:
    """The pytest-xdist worker's slice; outside xdist, the process's own (by its pid), so that a
    test run and the processes it starts (a demo, `bastion up`) rarely share one."""
    digits = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    return int(digits) % _SLICES if digits.isdigit() else os.getpid() % _SLICES


def _candidates() -> Iterator[int]:
    ceiling = max(_ephemeral_floor(), _FLOOR + 2 * _SLICES)
    size = (ceiling - _FLOOR) // _SLICES
    low = _FLOOR + _worker_index() * size
    start = secrets.randbelow(size)
    return itertools.cycle([low + (start + i) % size for i in range(size)])


_lock = threading.Lock()
_ports = _candidates()


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on now and that no outgoing connection will take."""
    with _lock:
        for _ in range(1000):
            port = next(_ports)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def closed_port_url(host: str = "127.0.0.1", scheme: str = "http") -> str:
    """The URL of a loopback port nothing listens on: a dead peer for failure tests."""
    return f"{scheme}://{host}:{free_port(host)}"

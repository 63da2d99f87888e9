"""A supervised child stops cleanly when its supervisor dies: real processes, a real SIGKILL.

A small "supervisor" script starts a child that calls `stop_with_parent()` and records, from its
SIGTERM handler, that it stopped cleanly. The supervisor starts it from a thread that then
ends, as the supervisor's monitor thread does for a restart: that must not stop the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bastion
from bastion.runtime.parent_watch import SUPERVISOR_PID_ENV, stop_with_parent
from tests.runtime.test_supervisor import alive, wait_until

# argv: marker file, poll seconds, "1" to ask for the kernel's signal. Answers "pong" to each
# line on stdin; on SIGTERM writes "stopped cleanly" to the marker and exits 0.
CHILD = """
import pathlib, signal, sys, time
from bastion.runtime.parent_watch import stop_with_parent

marker = pathlib.Path(sys.argv[1])

def stop(*_):
    marker.write_text("stopped cleanly")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
watching = stop_with_parent(poll_seconds=float(sys.argv[2]), death_signal=sys.argv[3] == "1")
print("watching" if watching else "not watching", flush=True)
for line in sys.stdin:
    print("pong", flush=True)
time.sleep(600)
"""

# Starts the child (argv) from a thread that ends once the child watches, waits until that
# thread is gone from the kernel too, checks the child still answers, prints its pid.
SUPERVISOR = """
import os, subprocess, sys, threading, time

env = {**os.environ, "BASTION_SUPERVISOR_PID": str(os.getpid())}
started = []

def spawn():
    child = subprocess.Popen(
        sys.argv[1:], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "watching\\n"
    started.append(child)

thread = threading.Thread(target=spawn)
thread.start()
thread.join()
deadline = time.monotonic() + 10
while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
child = started[0]
child.stdin.write("ping\\n")
child.stdin.flush()
assert child.stdout.readline() == "pong\\n"
print(child.pid, flush=True)
time.sleep(600)
"""

STOP_DEADLINE = 15.0


def _env() -> dict[str, str]:
    src = str(Path(bastion.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _supervised_child(
    tmp_path: Path, started: list[subprocess.Popen[str]], poll: float, death_signal: bool
) -> tuple[subprocess.Popen[str], int, Path]:
    marker = tmp_path / "child.marker"
    child = [sys.executable, "-c", CHILD, str(marker), str(poll), "1" if death_signal else "0"]
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, *child],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    started.append(supervisor)
    assert supervisor.stdout is not None
    line = supervisor.stdout.readline()
    assert line.strip().isdigit(), f"the supervisor script failed: {line!r}"
    return supervisor, int(line), marker


@pytest.mark.parametrize(
    ("poll_seconds", "death_signal"),
    [
        # Polling every 10 minutes: only the kernel's signal can stop the child in time.
        pytest.param(
            600,
            True,
            id="kernel_signal_not_its_starting_thread",
            marks=pytest.mark.skipif(
                not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"
            ),
        ),
        pytest.param(0.05, False, id="polling_watchdog_without_kernel_signal"),
    ],
)
def test_the_child_stops_cleanly_when_the_supervisor_dies(
    tmp_path: Path,
    started: list[subprocess.Popen[str]],
    poll_seconds: float,
    death_signal: bool,
) -> None:
    supervisor, child, marker = _supervised_child(
        tmp_path, started, poll_seconds, death_signal=death_signal
    )
    # The thread that started the child has ended and the child answered since: still running.
    assert alive(child) and not marker.exists()

    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    assert wait_until(lambda: not alive(child), STOP_DEADLINE)
    assert marker.read_text() == "stopped cleanly"


def test_a_supervisor_gone_before_the_watch_starts_stops_the_child_at_once(
    tmp_path: Path,
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    marker = tmp_path / "child.marker"
    # Neither the kernel's signal nor polling (10 minutes) would fire: only the first check.
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(marker), "600", "1"],
        env={**_env(), SUPERVISOR_PID_ENV: str(gone.pid)},
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert marker.read_text() == "stopped cleanly"
    assert "supervisor gone, stopping" in child.stdout + child.stderr


@pytest.mark.parametrize("environ", [{}, {SUPERVISOR_PID_ENV: ""}, {SUPERVISOR_PID_ENV: "x"}])
def test_nothing_is_watched_without_a_supervisor_pid(environ: dict[str, str]) -> None:
    assert stop_with_parent(environ=environ) is False

"""Runs `bastion` commands for the tests: in-process (typer's CliRunner), as a real process
with its own streams, or as a real process in a pseudo-terminal of a given width."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

import bastion
import bastion.cli

# The source tree under test, first on the path of every process the tests start (they may run
# in another folder, where a relative PYTHONPATH would point nowhere).
SRC = str(Path(bastion.__file__).resolve().parents[1])
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli_app() -> typer.Typer:
    """The CLI app with every command registered (once)."""
    if not bastion.cli.app.registered_groups:
        bastion.cli._register()
    return bastion.cli.app


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # BASTION_CONFIG from the outer environment must never leak into a test.
    return CliRunner().invoke(cli_app(), list(args), env={"BASTION_CONFIG": None, **(env or {})})


def process_env(**extra: str) -> dict[str, str]:
    """This environment without any BASTION_* variable, the source under test first on the
    path, and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    path = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return {**env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def run_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m bastion ARGS` as a real process, stdout and stderr captured apart (pipes,
    not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=process_env(**(env or {})),
        timeout=timeout,
        check=False,
    )


def process_stdout(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """What `python -m bastion ARGS` prints as a real process, which must exit 0 (else the test
    fails showing its stderr)."""
    result = run_process(*args, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_in_terminal(*args: str, columns: int, timeout: float = 120) -> tuple[int, str]:
    """`python -m bastion ARGS` in a pseudo-terminal `columns` wide: (exit status, what the
    terminal showed, colours and styles removed)."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bastion", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=process_env(COLUMNS=str(columns), TERM="xterm"),
        )
    finally:
        os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, b"".join(chunks).decode(errors="replace")
            ready, _, _ = select.select([controller], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return code, _ANSI.sub("", text)

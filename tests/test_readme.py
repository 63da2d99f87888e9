"""The README keeps its promises: the two set-up commands first, the error table in sync, and
the Quick start runs as written."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bastion.protocol.errors import ERROR_TABLE
from bastion.testing.pipeline_stack import assign_ports
from tests.cli.runner import process_env

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```", 2)[1]
    assert [line for line in first_block.splitlines() if line.strip()] == ["make demo", "make test"]


def test_error_table_matches_the_code() -> None:
    for spec in ERROR_TABLE:
        row = f"| {spec.code} | {spec.name} | {spec.http_status} | {spec.meaning} |"
        assert row in README, f"README error table is missing or out of date for {spec.code}"


# -- the Quick start, run as written --------------------------------------------------------

QUICK_START_TIMEOUT = 120.0
PLACEHOLDER = "CORRELATION_ID"


def quick_start_commands() -> list[str]:
    """The Quick start's bash block: one command per line, comments and blank lines dropped."""
    section = README.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split(" #", 1)[0].strip() for line in block.splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def table_column(output: str, column: str) -> list[str]:
    """The cells of `column` in a table as printed to a pipe (one line per row)."""
    header = next(line for line in output.splitlines() if line.startswith("┃"))
    index = [cell.strip() for cell in header.split("┃")].index(column)
    return [
        [cell.strip() for cell in line.split("│")][index]
        for line in output.splitlines()
        if line.startswith("│")
    ]


# A dozen CLI processes and the whole pipeline, on cores shared with the other worker's tests.
@pytest.mark.timeout(300)
def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    """The Quick start in a folder laid out as a fresh clone after `make`: `.venv/bin/bastion`
    (this interpreter running the CLI under test) and the bundled samples where the clone has
    them. Each line runs in a shell, in the folder the previous `cd` chose; `bastion up` runs
    in the background (the "second terminal") on free ports until Ctrl-C at the end;
    CORRELATION_ID is taken from the table `submit` printed, as a reader would."""
    commands = quick_start_commands()
    assert commands[0] == "make demo"
    assert "\t$(BIN)/bastion demo\n" in (ROOT / "Makefile").read_text()  # see test_demo.py
    clone = tmp_path / "clone"
    launcher = clone / ".venv" / "bin" / "bastion"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m bastion "$@"\n')
    launcher.chmod(0o755)
    (clone / "src").symlink_to(ROOT / "src")
    env = process_env(COLUMNS="200")
    up_log = tmp_path / "up.log"
    cwd, up, correlation_id = clone, None, None
    outputs: dict[str, str] = {}
    try:
        for command in commands[1:]:
            words = shlex.split(command)
            if words[0] == "cd":
                cwd = (cwd / words[1]).resolve()
                continue
            if words[1:] == ["up"]:
                with up_log.open("wb") as log:
                    up = subprocess.Popen(
                        ["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=log, stderr=log
                    )
                wait_for_running(up, up_log)
                continue
            if PLACEHOLDER in command:
                assert correlation_id, "no correlation id shown before it is needed"
                command = command.replace(PLACEHOLDER, correlation_id)
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=QUICK_START_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            outputs[" ".join(words[1:3] if words[1] in ("audit", "config") else words[1:2])] = (
                done.stdout
            )
            if words[1] == "init":
                assign_ports(cwd / words[words.index("--dir") + 1] / "bastion.yaml")
            if words[1] == "submit":
                assert table_column(done.stdout, "status") == ["archived", "archived"]
                correlation_id = table_column(done.stdout, "correlation id")[0]
        assert up is not None, "the Quick start starts `bastion up`"
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(QUICK_START_TIMEOUT) == 0, up_log.read_text()
    finally:
        if up is not None and up.poll() is None:
            up.kill()
            up.wait()
    assert set(table_column(outputs["audit tail"], "correlation_id")) == {correlation_id}
    assert "gateway" in table_column(outputs["audit tail"], "agent")
    assert "audit trail intact" in outputs["audit verify"]
    assert json.loads(outputs["extract"])["document_type"] == "invoice"


def wait_for_running(up: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `bastion up`'s output (bounded) until it says every service is running."""
    deadline = time.monotonic() + QUICK_START_TIMEOUT
    while "Running." not in log.read_text():
        assert up.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)

"""`bastion serve NAME`: a bad argument (an unknown name, `--tck` for what has no conformance
profile, a port out of range, `--port` for the worker) is one line on stderr and exit status 2,
before anything is loaded or bound."""

from __future__ import annotations

import pytest

from bastion.agents.registry import CONFORMANCE_AGENTS, agent_names
from bastion.cli.serve_cmd import SERVICES
from bastion.pipeline.services import PIPELINE_AGENTS
from bastion.project import init_project
from tests.cli.runner import run_process
from tests.cli.test_cli import assert_one_line_usage_error, one_line_error, run


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(init_project(tmp_path_factory.mktemp("serve") / "proj").config)


def test_an_unknown_name_is_one_line_and_exit_2(config: str) -> None:
    # A real process: `serve` configures logging for the whole process.
    message = assert_one_line_usage_error(run_process("serve", "nope", "--config", config))
    names = ", ".join((*agent_names(), *SERVICES))
    assert message == f"error: unknown agent 'nope': choose one of {names}"


@pytest.mark.parametrize("name", [*SERVICES, "relay", *PIPELINE_AGENTS])
def test_tck_without_a_conformance_profile_is_one_line_and_exit_2(config: str, name: str) -> None:
    assert name not in CONFORMANCE_AGENTS
    result = run("serve", name, "--tck", "--config", config)
    assert result.exit_code == 2
    assert one_line_error(result) == (
        f"error: --tck is a conformance profile that {name!r} does not have: it is only for echo"
    )


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_out_of_range_is_one_line_and_exit_2(config: str, port: str) -> None:
    proc = run_process("serve", "echo", "--port", port, "--config", config, timeout=60)
    message = assert_one_line_usage_error(proc)
    assert message == f"error: --port {port}: give a port from 0 to 65535 (0 = any free)"


def test_the_worker_takes_no_port(config: str) -> None:
    proc = run_process("serve", "worker", "--port", "9000", "--config", config)
    assert "does not listen on a port" in assert_one_line_usage_error(proc)

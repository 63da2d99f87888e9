"""`bastion research` against a real gateway in front of the fake research agent: `--json`
prints only the result object, the live view shows the plan, sources, critique and report, and
the errors for a gateway that is down, a bad key, a key without the grant, a failed request."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import Result

from bastion.cli import common
from bastion.config import AgentEndpoint
from bastion.research.model import ResearchResult, new_conversation_id
from bastion.testing import serve_in_thread
from bastion.testing.ports import closed_port_url
from bastion.web import build_gateway
from tests.cli.test_cli import one_line_error, run
from tests.web.research_world import World, research_world

BAD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64
QUESTION = "Who wrote the first program?"


@pytest.fixture(autouse=True)
def _quiet_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The services run in this process: their logs go to the real stderr, never into the
    command's captured streams; a wide console for the report."""
    monkeypatch.setattr(common.console, "width", 200)
    previous = structlog.get_config()
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.__stderr__),
        cache_logger_on_first_use=False,
    )
    yield
    structlog.configure(**previous)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with research_world(tmp_path_factory.mktemp("research-cli")) as w:
        yield w


def ask(world: World, *args: str, gateway: str | None = None) -> Result:
    config = str(world.project.dir / "bastion.yaml")
    env = {"BASTION_PIPELINE__GATEWAY_URL": gateway or world.url, "BASTION_API_KEY": None}
    return run("research", *args, "--config", config, env=env)


def test_json_prints_only_the_result_object(world: World) -> None:
    result = ask(world, QUESTION, "--json", "--mode", "research")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)  # the whole of stdout is the one JSON object
    parsed = ResearchResult.model_validate(body)
    assert parsed.question == QUESTION
    assert [s.n for s in parsed.sources] == [1, 2]
    # Asked with the submitter key (pipeline.submit_api_key), for the submitter.
    assert ("submitter", {"message": QUESTION, "mode": "research"}) in world.fake.started


def test_the_live_view_shows_plan_sources_critique_then_the_report(world: World) -> None:
    result = ask(world, QUESTION)
    assert result.exit_code == 0, result.output
    progress = " ".join(result.stderr.split())
    assert "plan, round 1:" in progress
    assert "1. Who wrote the first program?" in progress
    assert "source [credibility 0.90] Ada Lovelace - Encyclopaedia" in progress
    assert "source [credibility 0.60] Notes on the Analytical Engine" in progress
    assert "critique, round 1: PASS" in progress
    assert "in conversation conv_" in progress
    report = result.stdout
    assert "Ada Lovelace wrote the first published program [1]" in report
    assert "Source credibility" in report
    assert "[2] Notes on the Analytical Engine https://example.org/notes" in report
    assert "credibility 0.90" in report
    assert "plan, round" not in report  # progress never on stdout


def test_a_follow_up_in_a_conversation(world: World) -> None:
    first = json.loads(ask(world, QUESTION, "--json").stdout)
    result = ask(world, "And when?", "--conversation", first["conversation_id"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["conversation_id"] == first["conversation_id"]


def test_an_unknown_conversation_fails_with_the_reason(world: World) -> None:
    result = ask(world, QUESTION, "--conversation", new_conversation_id())
    assert result.exit_code == 1
    assert "no conversation with this id" in one_line_error(result)
    assert result.stdout == ""


def test_a_failed_run(world: World) -> None:
    world.fake.failure = "every provider failed"
    try:
        result = ask(world, QUESTION, "--json")
    finally:
        world.fake.failure = None
    assert result.exit_code == 1
    assert "the research run failed: every provider failed" in one_line_error(result)
    assert result.stdout == ""


def test_research_down_behind_a_live_gateway(world: World) -> None:
    settings = world.settings.model_copy(deep=True)
    settings.agents["research"] = AgentEndpoint(url=closed_port_url())
    settings.client.max_retries = 0
    with serve_in_thread(build_gateway(settings)) as gw:
        result = ask(world, QUESTION, gateway=gw.url)
    assert result.exit_code == 3
    assert "research service is unavailable" in one_line_error(result)


def test_a_gateway_that_is_down(world: World) -> None:
    result = ask(world, QUESTION, "--json", gateway=closed_port_url())
    assert result.exit_code == 3
    assert "cannot reach the gateway" in one_line_error(result)
    assert "bastion up" in one_line_error(result)
    assert result.stdout == ""


def test_a_bad_key(world: World) -> None:
    result = ask(world, QUESTION, "--api-key", BAD_KEY)
    assert result.exit_code == 4
    line = one_line_error(result)
    assert "rejected the API key" in line
    assert BAD_KEY not in line


def test_a_key_without_the_grant(world: World) -> None:
    result = ask(world, QUESTION, "--api-key", world.project.keys["nobody"])
    assert result.exit_code == 4
    assert "may not ask for research" in one_line_error(result)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("",), "empty"),
        ((QUESTION, "--conversation", "nope"), "not a conversation id"),
        ((QUESTION, "--mode", "deep"), "deep"),
    ],
)
def test_bad_arguments_exit_2(world: World, args: tuple[str, ...], problem: str) -> None:
    result = ask(world, *args)
    assert result.exit_code == 2
    assert problem in result.stderr


def test_the_command_is_listed(tmp_path: Path) -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "research" in result.stdout

"""`bastion serve AGENT` resolves agents by name, with actionable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.agents.registry import definition_for
from bastion.config import AgentEndpoint, load_settings
from bastion.project import init_project
from bastion.runtime.agent import AgentConfigError


def test_agents_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(init_project(tmp_path).config)
    assert definition_for("echo", settings).name == "echo"
    with pytest.raises(
        KeyError,
        match="choose one of archivist, critic, echo, extractor, orchestrator, relay, research, "
        "researcher, validator",
    ):
        definition_for("nope", settings)
    with pytest.raises(AgentConfigError, match=r"agents\.relay\.api_key"):
        definition_for("relay", settings)
    settings.agents["relay"] = AgentEndpoint(url="http://127.0.0.1:8091", api_key="secret://env/X")
    monkeypatch.setenv("X", "bst_aaaaaaaaaaaa_" + "0" * 64)
    assert definition_for("relay", settings).registry.get("relay") is not None
    with pytest.raises(ValueError, match="only for the echo agent"):
        definition_for("relay", settings, tck=True)


@pytest.mark.parametrize("name", ["research", "researcher"])
def test_research_agents_that_call_peers_need_their_own_credential(
    tmp_path: Path, name: str
) -> None:
    settings = load_settings(init_project(tmp_path).config)
    assert definition_for(name, settings).name == name
    settings.agents[name] = AgentEndpoint(url=settings.agents[name].url)
    with pytest.raises(AgentConfigError, match=rf"agents\.{name}\.api_key"):
        definition_for(name, settings)


@pytest.mark.parametrize("name", ["orchestrator", "extractor", "validator", "archivist"])
def test_pipeline_agents_need_their_own_credential(tmp_path: Path, name: str) -> None:
    settings = load_settings(init_project(tmp_path).config)
    definition = definition_for(name, settings)
    assert definition.name == name and definition.registry.get("get_status") is not None
    if name in ("orchestrator", "validator"):  # the others call no one
        settings.agents[name] = AgentEndpoint(url=settings.agents[name].url)
        with pytest.raises(AgentConfigError, match=rf"agents\.{name}\.api_key"):
            definition_for(name, settings)
    with pytest.raises(ValueError, match="only for the echo agent"):
        definition_for(name, settings, tck=True)

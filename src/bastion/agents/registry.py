"""Which agents `bastion serve AGENT` can run."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bastion.config import Settings
from bastion.pipeline import PIPELINE_AGENTS
from bastion.research.protocol import RESEARCH_AGENTS
from bastion.runtime import AgentDefinition, task_store_for


def _echo(settings: Settings, tck: bool) -> AgentDefinition:
    store = task_store_for(settings, "echo")
    if tck:
        from bastion.agents.tck import tck_definition

        return tck_definition(store=store)
    from bastion.agents.echo import echo_definition

    return echo_definition(store=store)


# The agents with an A2A conformance profile (`bastion serve AGENT --tck`).
CONFORMANCE_AGENTS = ("echo",)
_NO_PROFILE = "the conformance profile (--tck) is only for the echo agent"


def _relay(settings: Settings, tck: bool) -> AgentDefinition:
    from bastion.agents.relay import relay_definition

    return relay_definition(settings)


def _pipeline_agent(name: str) -> Callable[[Settings, bool], AgentDefinition]:
    def factory(settings: Settings, tck: bool) -> AgentDefinition:
        module = importlib.import_module(f"bastion.pipeline.agents.{name}")
        definition: AgentDefinition = module.definition(settings)
        return definition

    return factory


def _research_agent(name: str) -> Callable[[Settings, bool], AgentDefinition]:
    def factory(settings: Settings, tck: bool) -> AgentDefinition:
        module = importlib.import_module(f"bastion.research.agents.{name}")
        definition: AgentDefinition = module.definition(settings)
        return definition

    return factory


_AGENTS: dict[str, Callable[[Settings, bool], AgentDefinition]] = {
    "echo": _echo,
    "relay": _relay,
    **{name: _pipeline_agent(name) for name in PIPELINE_AGENTS},
    **{name: _research_agent(name) for name in RESEARCH_AGENTS},
}


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def definition_for(name: str, settings: Settings, *, tck: bool = False) -> AgentDefinition:
    """The agent called `name`; `tck=True` selects its A2A conformance behaviours."""
    factory = _AGENTS.get(name)
    if factory is None:
        raise KeyError(f"unknown agent {name!r}: choose one of {', '.join(sorted(_AGENTS))}")
    if tck and name not in CONFORMANCE_AGENTS:
        raise ValueError(_NO_PROFILE)
    return factory(settings, tck)

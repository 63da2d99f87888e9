"""Which agents `bastion serve AGENT` can run."""

from __future__ import annotations

from collections.abc import Callable

from bastion.config import Settings
from bastion.runtime.agent import AgentDefinition


def _echo(settings: Settings, tck: bool) -> AgentDefinition:
    from bastion.agents.echo import echo_definition

    return echo_definition(tck=tck)


def _relay(settings: Settings, tck: bool) -> AgentDefinition:
    from bastion.agents.relay import relay_definition

    if tck:
        raise ValueError("the conformance profile (--tck) is only for the echo agent")
    return relay_definition(settings)


_AGENTS: dict[str, Callable[[Settings, bool], AgentDefinition]] = {
    "echo": _echo,
    "relay": _relay,
}


def definition_for(name: str, settings: Settings, *, tck: bool = False) -> AgentDefinition:
    """The agent called `name`; `tck=True` selects its A2A conformance behaviours."""
    factory = _AGENTS.get(name)
    if factory is None:
        raise KeyError(f"unknown agent {name!r}: choose one of {', '.join(sorted(_AGENTS))}")
    return factory(settings, tck)

"""Only monitored agents are watched: the template's reference `echo` agent, which `bastion up`
does not start, is neither scraped for alarms nor asked for traces."""

from __future__ import annotations

from pathlib import Path

from bastion.alarms import targets_from
from bastion.config import load_settings
from bastion.project import init_project


def test_the_templates_echo_agent_is_not_watched(tmp_path: Path) -> None:
    settings = load_settings(init_project(tmp_path / "proj").config)
    assert settings.agents["echo"].monitored is False
    names = {target.name for target in targets_from(settings)}
    assert "echo" not in names
    assert {"gateway", "archivist", "orchestrator", "research"} <= names
    settings.agents["echo"].monitored = True
    assert "echo" in {target.name for target in targets_from(settings)}

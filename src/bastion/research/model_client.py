"""The research agents' model client: built only through `bastion.llm.build_client`, with the
project's default guardrail policy in front of every input and output, or None offline."""

from __future__ import annotations

from bastion.config import Settings
from bastion.core.audit_entry import AuditSink
from bastion.guardrails.service import GuardService
from bastion.llm import ModelClient, ModelConfig, build_client
from bastion.research.researcher import guard_engine

__all__ = ["OFFLINE", "research_model"]

OFFLINE = "offline"


def research_model(
    settings: Settings, agent: str, *, audit: AuditSink | None = None
) -> tuple[ModelClient | None, str]:
    """The client for `research.model` and its name (`<provider>:<model>`), or (None,
    "offline") when no model is configured. ValueError for an unusable model section."""
    if not settings.research.model:
        return None, OFFLINE
    config = ModelConfig.model_validate(settings.research.model)
    guard = GuardService(guard_engine(), principal=agent, agent=agent, audit=audit)
    return build_client(config, guard), f"{config.provider}:{config.model}"

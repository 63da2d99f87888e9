"""The research agents' model client: built only through `bastion.llm.build_client`, with the
shipped `research` guardrail policy in front of every input and output (the default policy,
except that names, addresses and ages, the subject of research questions, are not anonymized,
and prompt attacks block at high confidence: the sources were scanned and quarantined by the
researchers first), or None offline."""

from __future__ import annotations

from functools import cache

from bastion.config import Settings
from bastion.core.audit_entry import AuditSink
from bastion.guardrails.engine import Engine
from bastion.guardrails.policy import shipped_policy
from bastion.guardrails.service import GuardService
from bastion.llm import ModelClient, ModelConfig, build_client

__all__ = ["OFFLINE", "POLICY", "research_model"]

OFFLINE = "offline"
POLICY = "research"


@cache
def _engine() -> Engine:
    return Engine(shipped_policy(POLICY), embeddings=False)


def research_model(
    settings: Settings, agent: str, *, audit: AuditSink | None = None
) -> tuple[ModelClient | None, str]:
    """The client for `research.model` and its name (`<provider>:<model>`), or (None,
    "offline") when no model is configured. ValueError for an unusable model section."""
    if not settings.research.model:
        return None, OFFLINE
    config = ModelConfig.model_validate(settings.research.model)
    guard = GuardService(_engine(), principal=agent, agent=agent, audit=audit)
    return build_client(config, guard), f"{config.provider}:{config.model}"

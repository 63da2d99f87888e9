"""Calling language models, only ever through the guardrails.

    config = ModelConfig(base_url="http://127.0.0.1:8000", model="qwen2.5-7b-instruct")
    async with build_client(config, guard) as llm:
        reply = await llm.complete([Message.system("..."), Message.user("...")])
        async for text in llm.stream([Message.user("...")]):
            ...

`build_client` (`factory`) is the only way to get a client; the providers behind it
(`ModelConfig.provider`: `openai`, `anthropic`, `bedrock`) are private. `GuardedClient`
(`client`) scans every message before the call and the reply before it is returned, and
raises `GuardrailBlocked` when the guard blocks either.
"""

from __future__ import annotations

from bastion.llm.client import (
    Completion,
    Guard,
    GuardedClient,
    GuardrailBlocked,
    Message,
    ModelClient,
    ModelError,
    Role,
)
from bastion.llm.config import ModelConfig
from bastion.llm.factory import build_client, providers

__all__ = [
    "Completion",
    "Guard",
    "GuardedClient",
    "GuardrailBlocked",
    "Message",
    "ModelClient",
    "ModelConfig",
    "ModelError",
    "Role",
    "build_client",
    "providers",
]

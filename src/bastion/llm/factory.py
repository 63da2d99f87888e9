"""The LLM client factory: the one public way to get a client for a model, always guarded.

Providers are private classes (`bastion.llm._<name>`), registered here by name; nothing else in
the project may import them or call a model endpoint itself (a test scans the source tree for
both). A new provider is a private module implementing `ModelClient` plus one entry in
`_PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.llm._anthropic import AnthropicProvider
from bastion.llm._bedrock import BedrockProvider
from bastion.llm._openai import OpenAIProvider
from bastion.llm.client import Guard, GuardedClient, ModelClient
from bastion.llm.config import ModelConfig

__all__ = ["build_client", "providers"]

_PROVIDERS: dict[str, Callable[[ModelConfig], ModelClient]] = {
    "anthropic": AnthropicProvider,
    "bedrock": BedrockProvider,
    "openai": OpenAIProvider,
}


def providers() -> tuple[str, ...]:
    """The provider names `ModelConfig.provider` accepts."""
    return tuple(sorted(_PROVIDERS))


def build_client(config: ModelConfig, guard: Guard) -> GuardedClient:
    """A client for `config`'s model whose every input and output passes `guard`."""
    try:
        make_provider = _PROVIDERS[config.provider]
    except KeyError:
        known = ", ".join(providers())
        raise ValueError(f"unknown model provider {config.provider!r} (known: {known})") from None
    return GuardedClient(
        make_provider(config),
        guard,
        window_min_chars=config.stream_window_min_chars,
        window_max_chars=config.stream_window_max_chars,
    )

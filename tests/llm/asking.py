"""What the provider tests share: a config for a fake server, the two ways of asking a client
(complete, stream), the error a failing request raises, and the guard checks every provider
must pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pytest

from bastion.guardrails.types import Direction, Source
from bastion.llm import (
    GuardedClient,
    GuardrailBlocked,
    Message,
    ModelConfig,
    ModelError,
    build_client,
)
from bastion.testing.fake_llm import FakeLLM
from tests.llm.keyword_guard import KeywordGuard

Mode = Literal["complete", "stream"]
MODES: tuple[Mode, ...] = ("complete", "stream")


def fake_config(fake: FakeLLM, **values: object) -> ModelConfig:
    """A config for `fake`'s model "fake-model", with `values` on top."""
    return ModelConfig.model_validate({"base_url": fake.url, "model": "fake-model", **values})


async def ask(client: GuardedClient, mode: Mode, messages: Sequence[Message]) -> str:
    if mode == "complete":
        return (await client.complete(messages)).text
    return "".join(await streamed(client, messages))


async def streamed(client: GuardedClient, messages: Sequence[Message]) -> list[str]:
    return [text async for text in client.stream(messages)]


async def model_error(cfg: ModelConfig, guard: KeywordGuard, mode: Mode, key: str) -> ModelError:
    """The `ModelError` asking "hi" raises; it must not hold `key`."""
    async with build_client(cfg, guard) as llm:
        with pytest.raises(ModelError) as caught:
            await ask(llm, mode, [Message.user("hi")])
    error = caught.value
    assert key not in str(error)
    assert key not in repr(error)
    return error


async def assert_blocked_input_is_never_sent(
    fake: FakeLLM, cfg: ModelConfig, guard: KeywordGuard, mode: Mode
) -> GuardrailBlocked:
    """A user message with a blocked word raises before any request reaches `fake`: the error."""
    async with build_client(cfg, guard) as llm:
        with pytest.raises(GuardrailBlocked) as blocked:
            await ask(llm, mode, [Message.user("please do the FORBIDDEN thing")])
    assert fake.requests == []
    assert blocked.value.source is Source.USER_INPUT
    assert blocked.value.direction is Direction.INPUT
    return blocked.value


async def assert_stream_stops_before_the_blocked_window(
    fake: FakeLLM, cfg: ModelConfig, guard: KeywordGuard
) -> None:
    """Streaming a reply with a blocked word yields the clean window before it, then raises;
    `cfg` (for `fake`) sets a stream window of 8 characters at least."""
    fake.reset(reply="This part is fine. Then FORBIDDEN things. More after.", chunk_chars=2)
    yielded: list[str] = []
    async with build_client(cfg, guard) as llm:
        with pytest.raises(GuardrailBlocked) as blocked:
            async for text in llm.stream([Message.user("go")]):
                yielded.append(text)
    assert yielded == ["This part is fine. "]
    assert blocked.value.direction is Direction.OUTPUT

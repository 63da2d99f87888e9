"""The Anthropic provider against a local Messages server: round trips, guarding, the key and
errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bastion.guardrails.types import Source
from bastion.llm import (
    GuardrailBlocked,
    Message,
    ModelConfig,
    ModelError,
    build_client,
)
from bastion.testing.fake_anthropic import FakeAnthropic
from bastion.testing.fake_llm import Fault
from tests.llm.asking import (
    MODES,
    Mode,
    ask,
    assert_blocked_input_is_never_sent,
    assert_stream_stops_before_the_blocked_window,
    fake_config,
    model_error,
)
from tests.llm.keyword_guard import KeywordGuard

KEY = "sk-ant-test-3b8d0c41"


def config(fake: FakeAnthropic, **overrides: object) -> ModelConfig:
    return fake_config(fake, **{"provider": "anthropic", "api_key": KEY, **overrides})


async def test_messages_round_trip(anthropic: FakeAnthropic, guard: KeywordGuard) -> None:
    anthropic.reset(api_key=KEY)
    messages = [
        Message.system("Be brief."),
        Message.user("Hello model"),
        Message.assistant("Earlier answer"),
        Message.tool("tool output", "toolu_1"),
    ]
    async with build_client(config(anthropic, max_tokens=77, temperature=0.5), guard) as llm:
        reply = await llm.complete(messages)
    assert reply.text == "tool output"  # the fake echoes the last user turn
    assert (reply.model, reply.finish_reason) == ("fake-model", "end_turn")
    assert reply.completion_tokens == len("tool output") // 4
    (request,) = anthropic.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body["system"] == "Be brief."
    assert (request.body["model"], request.body["max_tokens"]) == ("fake-model", 77)
    assert (request.body["temperature"], request.body["stream"]) == (0.5, False)
    assert request.messages == [
        {"role": "user", "content": "Hello model"},
        {"role": "assistant", "content": "Earlier answer"},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "tool output"}
            ],
        },
    ]


async def test_messages_stream_yields_scanned_windows(
    anthropic: FakeAnthropic, guard: KeywordGuard
) -> None:
    text = "The first sentence is here. A second one follows! Last words"
    anthropic.reset(reply=text, chunk_chars=3)
    cfg = config(anthropic, stream_window_min_chars=10, anthropic_version="2024-01-01")
    async with build_client(cfg, guard) as llm:
        windows = [w async for w in llm.stream([Message.user("go")])]
    assert windows == ["The first sentence is here. ", "A second one follows! ", "Last words"]
    (request,) = anthropic.requests
    assert request.body["stream"] is True
    assert "system" not in request.body
    assert request.headers["anthropic-version"] == "2024-01-01"
    assert [t for t, source, _ in guard.scans if source is Source.LLM_OUTPUT] == windows


@pytest.mark.parametrize("mode", MODES)
async def test_blocked_input_never_reaches_the_server(
    anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode
) -> None:
    await assert_blocked_input_is_never_sent(anthropic, config(anthropic), guard, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_anonymized_input_and_output(
    anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode
) -> None:
    async with build_client(config(anthropic), guard) as llm:
        reply = await ask(llm, mode, [Message.user("write to ada@example.org today")])
    assert anthropic.requests[0].messages[-1]["content"] == "write to {EMAIL} today"
    assert reply == "write to {EMAIL} today"


async def test_stream_never_yields_a_blocked_window(
    anthropic: FakeAnthropic, guard: KeywordGuard
) -> None:
    cfg = config(anthropic, stream_window_min_chars=8)
    await assert_stream_stops_before_the_blocked_window(anthropic, cfg, guard)


# --- the key --------------------------------------------------------------------------------


async def test_referenced_key_is_sent_and_never_logged(
    anthropic: FakeAnthropic, guard: KeywordGuard, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "anthropic.key").write_text(KEY + "\n")
    cfg = config(
        anthropic,
        api_key=None,
        api_key_ref="secret://file/anthropic.key",
        secrets_base_dir=tmp_path,
    )
    assert KEY not in repr(cfg)
    anthropic.reset(api_key=KEY)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        async with build_client(cfg, guard) as llm:
            assert (await llm.complete([Message.user("hi")])).text == "hi"
            with pytest.raises(GuardrailBlocked):
                await llm.complete([Message.user("FORBIDDEN")])
            anthropic.reset(api_key="sk-ant-another")
            with pytest.raises(ModelError) as caught:
                await llm.complete([Message.user("hi")])
    assert anthropic.requests[0].headers["x-api-key"] == KEY
    assert "invalid x-api-key: [redacted]" in str(caught.value)
    assert logs  # the blocked input was logged: the scan below looks at something real
    assert KEY not in str(logs)
    assert KEY not in caplog.text
    assert KEY not in str(caught.value)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_key_is_401_without_the_key(
    anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode
) -> None:
    anthropic.reset(api_key="sk-ant-the-right-one")
    error = await model_error(config(anthropic), guard, mode, KEY)
    assert error.status == 401
    assert "HTTP 401: invalid x-api-key: [redacted]" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_server_error_names_status_and_message(
    anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode
) -> None:
    anthropic.reset(fault=Fault.SERVER_ERROR)
    error = await model_error(config(anthropic), guard, mode, KEY)
    assert error.status == 500
    assert "HTTP 500: Internal server error" in str(error)


async def test_error_event_mid_stream(anthropic: FakeAnthropic, guard: KeywordGuard) -> None:
    anthropic.reset(fault=Fault.STREAM_ERROR, reply="Some words that never finish.")
    error = await model_error(config(anthropic), guard, "stream", KEY)
    assert "reported an error: Overloaded" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_json(anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode) -> None:
    anthropic.reset(fault=Fault.MALFORMED)
    error = await model_error(config(anthropic), guard, mode, KEY)
    assert "malformed JSON" in str(error)
    assert error.status is None


@pytest.mark.parametrize("mode", MODES)
async def test_timeout(anthropic: FakeAnthropic, guard: KeywordGuard, mode: Mode) -> None:
    anthropic.reset(delay=2.0)
    error = await model_error(config(anthropic, timeout=0.2), guard, mode, KEY)
    assert "did not answer within 0.2 s" in str(error)


async def test_a_host_outside_the_egress_policy_is_refused(
    anthropic: FakeAnthropic, guard: KeywordGuard
) -> None:
    # loopback addresses allowed: what refuses the fake is that it is not a model host
    policy = {"model_hosts": ["api.anthropic.com"], "allow_private": ["127.0.0.1"]}
    cfg = config(anthropic, egress=policy)
    error = await model_error(cfg, guard, "complete", KEY)
    assert "outside the egress policy" in str(error)
    assert "add it to model_hosts" in str(error)
    assert anthropic.requests == []

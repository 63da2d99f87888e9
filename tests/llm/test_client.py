"""The guarded client against a real HTTP server: round trips, guarding, auth and errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bastion.config import SecretsSettings
from bastion.guardrails.types import Action, Direction, Source
from bastion.llm import (
    GuardedClient,
    GuardrailBlocked,
    Message,
    ModelConfig,
    build_client,
    providers,
)
from bastion.security.secrets import configure
from bastion.testing.fake_llm import FakeLLM, Fault
from bastion.testing.ports import free_port
from tests.llm.asking import (
    MODES,
    Mode,
    ask,
    assert_blocked_input_is_never_sent,
    assert_stream_stops_before_the_blocked_window,
    fake_config,
    model_error,
    streamed,
)
from tests.llm.keyword_guard import BLOCKED_MESSAGE, KeywordGuard

KEY = "sk-test-5f1c9a7e0b"


# --- round trips ----------------------------------------------------------------------------


async def test_complete_round_trip(fake: FakeLLM, guard: KeywordGuard) -> None:
    async with build_client(fake_config(fake, max_tokens=77, temperature=0.5), guard) as llm:
        reply = await llm.complete([Message.system("Be brief."), Message.user("Hello model")])
    assert reply.text == "Hello model"
    assert (reply.model, reply.finish_reason) == ("fake-model", "stop")
    assert reply.completion_tokens == len("Hello model") // 4
    assert [v.action for v in reply.verdicts] == [Action.NONE] * 3
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "fake-model"
    assert (request.body["max_tokens"], request.body["temperature"]) == (77, 0.5)
    assert request.body["stream"] is False
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello model"},
    ]


async def test_stream_round_trip_yields_sentence_windows(
    fake: FakeLLM, guard: KeywordGuard
) -> None:
    text = "The first sentence is here. A second one follows! And a third?\nLast words"
    fake.reset(reply=text, chunk_chars=3)
    cfg = fake_config(fake, stream_window_min_chars=10, stream_window_max_chars=200)
    async with build_client(cfg, guard) as llm:
        windows = await streamed(llm, [Message.user("go")])
    assert windows == [
        "The first sentence is here. ",
        "A second one follows! ",
        "And a third?\n",
        "Last words",
    ]
    (request,) = fake.requests
    assert request.body["stream"] is True
    assert request.headers["accept"] == "text/event-stream"
    output_scans = [text for text, source, _ in guard.scans if source is Source.LLM_OUTPUT]
    assert output_scans == windows


async def test_base_url_may_end_in_v1(fake: FakeLLM, guard: KeywordGuard) -> None:
    async with build_client(fake_config(fake, base_url=fake.url + "/v1/"), guard) as llm:
        assert (await llm.complete([Message.user("hi")])).text == "hi"
    assert fake.requests[0].path == "/v1/chat/completions"


# --- guarding inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_blocked_input_never_reaches_the_model(
    fake: FakeLLM, guard: KeywordGuard, mode: Mode
) -> None:
    blocked = await assert_blocked_input_is_never_sent(fake, fake_config(fake), guard, mode)
    assert blocked.verdict.text == BLOCKED_MESSAGE
    assert "MISCONDUCT" in str(blocked)
    assert "FORBIDDEN thing" not in str(blocked)


async def test_blocked_tool_result_never_reaches_the_model(
    fake: FakeLLM, guard: KeywordGuard
) -> None:
    messages = [Message.user("look it up"), Message.tool("FORBIDDEN payload", "call-1")]
    async with build_client(fake_config(fake), guard) as llm:
        with pytest.raises(GuardrailBlocked) as blocked:
            await llm.complete(messages)
    assert fake.requests == []
    assert blocked.value.source is Source.TOOL_RESULT


@pytest.mark.parametrize("mode", MODES)
async def test_anonymized_input_is_what_the_model_receives(
    fake: FakeLLM, guard: KeywordGuard, mode: Mode
) -> None:
    async with build_client(fake_config(fake), guard) as llm:
        reply = await ask(llm, mode, [Message.user("write to ada@example.org today")])
    (request,) = fake.requests
    assert request.messages[-1]["content"] == "write to {EMAIL} today"
    assert "ada@example.org" not in str(request.body)
    assert reply == "write to {EMAIL} today"


async def test_every_message_is_scanned_with_its_source(fake: FakeLLM, guard: KeywordGuard) -> None:
    messages = [
        Message.system("You are terse."),
        Message.user("question"),
        Message.assistant("earlier answer"),
        Message.tool("tool output", "call-7"),
    ]
    async with build_client(fake_config(fake), guard) as llm:
        await llm.complete(messages)
    assert guard.scans == [
        ("You are terse.", Source.SYSTEM, Direction.INPUT),
        ("question", Source.USER_INPUT, Direction.INPUT),
        ("earlier answer", Source.LLM_OUTPUT, Direction.INPUT),
        ("tool output", Source.TOOL_RESULT, Direction.INPUT),
        ("question", Source.LLM_OUTPUT, Direction.OUTPUT),
    ]
    assert fake.requests[0].messages[3] == {
        "role": "tool",
        "content": "tool output",
        "tool_call_id": "call-7",
    }


# --- guarding outputs -----------------------------------------------------------------------


async def test_blocked_output_raises(fake: FakeLLM, guard: KeywordGuard) -> None:
    fake.reset(reply="Sure: the FORBIDDEN recipe.")
    async with build_client(fake_config(fake), guard) as llm:
        with pytest.raises(GuardrailBlocked) as blocked:
            await llm.complete([Message.user("hi")])
    assert len(fake.requests) == 1
    assert (blocked.value.source, blocked.value.direction) == (Source.LLM_OUTPUT, Direction.OUTPUT)
    assert blocked.value.verdict.text == BLOCKED_MESSAGE


async def test_anonymized_output_is_returned(fake: FakeLLM, guard: KeywordGuard) -> None:
    fake.reset(reply="Mail bob@example.com for details.")
    async with build_client(fake_config(fake), guard) as llm:
        reply = await llm.complete([Message.user("who?")])
    assert reply.text == "Mail {EMAIL} for details."
    assert reply.verdicts[-1].action is Action.ANONYMIZED


async def test_stream_never_yields_blocked_content(fake: FakeLLM, guard: KeywordGuard) -> None:
    cfg = fake_config(fake, stream_window_min_chars=8, stream_window_max_chars=100)
    await assert_stream_stops_before_the_blocked_window(fake, cfg, guard)


async def test_stream_anonymizes_an_email_split_over_chunks(
    fake: FakeLLM, guard: KeywordGuard
) -> None:
    fake.reset(reply="Contact carol.smith@example.net now. Bye.", chunk_chars=3)
    cfg = fake_config(fake, stream_window_min_chars=5, stream_window_max_chars=100)
    async with build_client(cfg, guard) as llm:
        yielded = await streamed(llm, [Message.user("go")])
    assert "".join(yielded) == "Contact {EMAIL} now. Bye."
    assert not any("@" in text for text in yielded)


# --- auth -----------------------------------------------------------------------------------


async def test_api_key_is_sent_as_bearer(fake: FakeLLM, guard: KeywordGuard) -> None:
    fake.reset(api_key=KEY)
    async with build_client(fake_config(fake, api_key=KEY), guard) as llm:
        assert (await llm.complete([Message.user("hi")])).text == "hi"
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_referenced_key_is_resolved_and_its_rotation_picked_up(
    fake: FakeLLM, guard: KeywordGuard, tmp_path: Path
) -> None:
    """Configuration names the key (`secret://file/...`); the provider reads it through its
    TTL handle, so the rotated key is sent without building a new client."""
    (tmp_path / "model.key").write_text(KEY + "\n")
    cfg = fake_config(fake, api_key_ref="secret://file/model.key", secrets_base_dir=tmp_path)
    assert KEY not in repr(cfg)
    fake.reset(api_key=KEY)
    configure(SecretsSettings(ttl_seconds=0.05))
    try:
        async with build_client(cfg, guard) as llm:
            assert (await llm.complete([Message.user("hi")])).text == "hi"
            (tmp_path / "model.key").write_text("sk-rotated-7d2e\n")
            fake.reset(api_key="sk-rotated-7d2e")
            await asyncio.sleep(0.1)
            assert (await llm.complete([Message.user("again")])).text == "again"
    finally:
        configure(SecretsSettings())
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer sk-rotated-7d2e"]


def test_a_key_in_place_of_a_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="never the key itself"):
        ModelConfig(base_url="http://127.0.0.1:1", model="m", api_key_ref=KEY)
    with pytest.raises(ValueError, match="not both"):
        ModelConfig(
            base_url="http://127.0.0.1:1",
            model="m",
            api_key=KEY,
            api_key_ref="secret://env/MODEL_KEY",
        )


async def test_no_key_no_authorization_header(fake: FakeLLM, guard: KeywordGuard) -> None:
    async with build_client(fake_config(fake), guard) as llm:
        await llm.complete([Message.user("hi")])
    assert "authorization" not in fake.requests[0].headers


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_key_is_401_without_the_key(
    fake: FakeLLM, guard: KeywordGuard, mode: Mode
) -> None:
    fake.reset(api_key="sk-the-right-one")
    error = await model_error(fake_config(fake, api_key=KEY), guard, mode, KEY)
    assert error.status == 401
    assert "HTTP 401" in str(error)
    assert "Incorrect API key provided: [redacted]" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_server_error_names_status_and_message(
    fake: FakeLLM, guard: KeywordGuard, mode: Mode
) -> None:
    fake.reset(fault=Fault.SERVER_ERROR)
    error = await model_error(fake_config(fake, api_key=KEY), guard, mode, KEY)
    assert error.status == 500
    assert "HTTP 500: The model server had an error" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_json(fake: FakeLLM, guard: KeywordGuard, mode: Mode) -> None:
    fake.reset(fault=Fault.MALFORMED)
    error = await model_error(fake_config(fake, api_key=KEY), guard, mode, KEY)
    assert "malformed JSON" in str(error)
    assert error.status is None


@pytest.mark.parametrize("mode", MODES)
async def test_timeout(fake: FakeLLM, guard: KeywordGuard, mode: Mode) -> None:
    fake.reset(delay=2.0)
    error = await model_error(fake_config(fake, api_key=KEY, timeout=0.2), guard, mode, KEY)
    assert "did not answer within 0.2 s" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(guard: KeywordGuard, mode: Mode) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cfg = ModelConfig(base_url=url, model="m", api_key=KEY)
    error = await model_error(cfg, guard, mode, KEY)
    assert f"cannot connect to the model server at {url}" in str(error)


# --- config and factory ---------------------------------------------------------------------


def test_config_never_shows_the_key() -> None:
    cfg = ModelConfig(base_url="http://127.0.0.1:1", model="m", api_key=KEY)
    assert KEY not in repr(cfg)
    assert KEY not in str(cfg.model_dump())
    assert KEY not in cfg.model_dump_json()


@pytest.mark.parametrize(
    "bad",
    [
        {"base_url": "ftp://host", "model": "m"},
        {"base_url": "http://", "model": "m"},
        {"base_url": "http://h", "model": ""},
        {"base_url": "http://h", "model": "m", "timeout": 0},
        {
            "base_url": "http://h",
            "model": "m",
            "stream_window_min_chars": 50,
            "stream_window_max_chars": 10,
        },
        {"base_url": "http://h", "model": "m", "api_base": "x"},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ModelConfig.model_validate(bad)


def test_unknown_provider_is_refused(guard: KeywordGuard) -> None:
    cfg = ModelConfig(provider="nope", base_url="http://h", model="m")
    with pytest.raises(
        ValueError, match=r"unknown model provider 'nope' \(known: anthropic, bedrock, openai\)"
    ):
        build_client(cfg, guard)


async def test_every_provider_comes_guarded(guard: KeywordGuard) -> None:
    assert providers() == ("anthropic", "bedrock", "openai")
    for name in providers():
        client = build_client(ModelConfig(provider=name, base_url="http://h", model="m"), guard)
        assert isinstance(client, GuardedClient)
        await client.aclose()

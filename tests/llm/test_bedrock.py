"""The Bedrock provider against a local Converse server: Converse and ConverseStream through
boto3 and the egress perimeter, the Bedrock guardrail configuration, guarding, keys and
errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bastion.guardrails.types import Source
from bastion.llm import (
    Message,
    ModelConfig,
    ModelError,
    build_client,
)
from bastion.testing.fake_bedrock import FakeBedrock
from bastion.testing.fake_llm import Fault
from bastion.testing.ports import free_port
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

KEY = "bedrock-api-key-6e0f2a9c"
GUARDRAIL = {"guardrailIdentifier": "gr-abc123", "guardrailVersion": "3"}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Static test credentials from the environment, and nothing from the machine's AWS setup."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    yield


def config(fake: FakeBedrock, **overrides: object) -> ModelConfig:
    return fake_config(fake, **{"provider": "bedrock", "aws_region": "us-east-1", **overrides})


# --- round trips ----------------------------------------------------------------------------


async def test_converse_round_trip(bedrock: FakeBedrock, guard: KeywordGuard) -> None:
    messages = [
        Message.system("Be brief."),
        Message.user("Look it up"),
        Message.tool("tool output", "tooluse_1"),
        Message.assistant("Earlier answer"),
        Message.user("Hello model"),
    ]
    async with build_client(config(bedrock, max_tokens=77, temperature=0.5), guard) as llm:
        reply = await llm.complete(messages)
    assert reply.text == "Hello model"
    assert (reply.model, reply.finish_reason) == ("fake-model", "end_turn")
    assert reply.completion_tokens == len("Hello model") // 4
    (request,) = bedrock.requests
    assert request.path == "/model/fake-model/converse"
    assert request.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
    )  # signed with the usual AWS credentials, for the configured region
    assert "/us-east-1/bedrock/aws4_request" in request.headers["authorization"]
    assert request.body["system"] == [{"text": "Be brief."}]
    assert request.body["inferenceConfig"] == {"maxTokens": 77, "temperature": 0.5}
    assert "guardrailConfig" not in request.body
    assert request.messages == [  # a tool result is a user turn's block, merged with it
        {
            "role": "user",
            "content": [
                {"text": "Look it up"},
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "tool output"}]}},
            ],
        },
        {"role": "assistant", "content": [{"text": "Earlier answer"}]},
        {"role": "user", "content": [{"text": "Hello model"}]},
    ]


async def test_converse_stream_yields_scanned_windows(
    bedrock: FakeBedrock, guard: KeywordGuard
) -> None:
    text = "The first sentence is here. A second one follows! Last words"
    bedrock.reset(reply=text, chunk_chars=3)
    async with build_client(config(bedrock, stream_window_min_chars=10), guard) as llm:
        windows = [w async for w in llm.stream([Message.user("go")])]
    assert windows == ["The first sentence is here. ", "A second one follows! ", "Last words"]
    (request,) = bedrock.requests
    assert request.path == "/model/fake-model/converse-stream"
    assert [t for t, source, _ in guard.scans if source is Source.LLM_OUTPUT] == windows


@pytest.mark.parametrize("mode", MODES)
async def test_guardrail_config_arrives_when_configured(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    cfg = config(bedrock, guardrail_identifier="gr-abc123", guardrail_version="3")
    async with build_client(cfg, guard) as llm:
        assert await ask(llm, mode, [Message.user("hi")]) == "hi"
    assert bedrock.requests[0].body["guardrailConfig"] == GUARDRAIL


@pytest.mark.parametrize("mode", MODES)
async def test_no_guardrail_config_when_not_configured(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    async with build_client(config(bedrock), guard) as llm:
        assert await ask(llm, mode, [Message.user("hi")]) == "hi"
    assert "guardrailConfig" not in bedrock.requests[0].body


def test_guardrail_settings_come_as_a_pair_for_bedrock_only() -> None:
    base = {"base_url": "http://127.0.0.1:1", "model": "m"}
    with pytest.raises(ValueError, match="together"):
        ModelConfig.model_validate({**base, "provider": "bedrock", "guardrail_identifier": "g"})
    with pytest.raises(ValueError, match="bedrock only"):
        ModelConfig.model_validate({**base, "guardrail_identifier": "g", "guardrail_version": "1"})


# --- guarding -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_blocked_input_never_reaches_the_server(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    await assert_blocked_input_is_never_sent(bedrock, config(bedrock), guard, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_anonymized_input_and_output(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    async with build_client(config(bedrock), guard) as llm:
        reply = await ask(llm, mode, [Message.user("write to ada@example.org today")])
    assert bedrock.requests[0].messages[-1]["content"] == [{"text": "write to {EMAIL} today"}]
    assert reply == "write to {EMAIL} today"


async def test_stream_never_yields_a_blocked_window(
    bedrock: FakeBedrock, guard: KeywordGuard
) -> None:
    cfg = config(bedrock, stream_window_min_chars=8)
    await assert_stream_stops_before_the_blocked_window(bedrock, cfg, guard)


# --- keys and the perimeter -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_referenced_api_key_is_sent_as_bearer(
    bedrock: FakeBedrock, guard: KeywordGuard, tmp_path: Path, mode: Mode
) -> None:
    (tmp_path / "bedrock.key").write_text(KEY + "\n")
    cfg = config(bedrock, api_key_ref="secret://file/bedrock.key", secrets_base_dir=tmp_path)
    bedrock.reset(api_key=KEY)
    async with build_client(cfg, guard) as llm:
        assert await ask(llm, mode, [Message.user("hi")]) == "hi"
    assert bedrock.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("mode", MODES)
async def test_a_host_outside_the_egress_policy_is_refused(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    # loopback addresses allowed: what refuses the fake is that it is not a model host
    policy = {
        "model_hosts": ["bedrock-runtime.us-east-1.amazonaws.com"],
        "allow_private": ["127.0.0.1"],
    }
    cfg = config(bedrock, egress=policy)
    error = await model_error(cfg, guard, mode, KEY)
    assert f"model server at {bedrock.url} is outside the egress policy" in str(error)
    assert "add it to model_hosts" in str(error)
    assert bedrock.requests == []


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_key_is_403(bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode) -> None:
    bedrock.reset(api_key="the-right-key")
    error = await model_error(config(bedrock, api_key=KEY), guard, mode, KEY)
    assert error.status == 403
    assert "HTTP 403: AccessDeniedException: Authentication failed" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_model_is_a_validation_error(
    bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode
) -> None:
    error = await model_error(config(bedrock, model="no-such-model"), guard, mode, KEY)
    assert error.status == 400
    assert "ValidationException: The provided model identifier is invalid." in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_server_error(bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode) -> None:
    bedrock.reset(fault=Fault.SERVER_ERROR)
    error = await model_error(config(bedrock), guard, mode, KEY)
    assert error.status == 500
    assert "HTTP 500: InternalServerException: The server had an error." in str(error)
    assert len(bedrock.requests) == 1  # not retried


async def test_exception_event_mid_stream(bedrock: FakeBedrock, guard: KeywordGuard) -> None:
    bedrock.reset(fault=Fault.STREAM_ERROR, reply="Some words that never finish.")
    error = await model_error(config(bedrock), guard, "stream", KEY)
    assert "reported an error: modelStreamErrorException" in str(error)
    assert "The model stopped unexpectedly." in str(error)


async def test_malformed_reply(bedrock: FakeBedrock, guard: KeywordGuard) -> None:
    bedrock.reset(fault=Fault.MALFORMED)
    error = await model_error(config(bedrock), guard, "complete", KEY)
    assert "sent a response without an output message" in str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_timeout(bedrock: FakeBedrock, guard: KeywordGuard, mode: Mode) -> None:
    bedrock.reset(delay=2.0)
    error = await model_error(config(bedrock, timeout=0.2), guard, mode, KEY)
    assert "did not answer within 0.2 s" in str(error)


async def test_connection_refused(guard: KeywordGuard) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cfg = ModelConfig(provider="bedrock", base_url=url, model="m", aws_region="us-east-1")
    error = await model_error(cfg, guard, "complete", KEY)
    assert f"cannot connect to the model server at {url}" in str(error)


async def test_no_credentials(
    bedrock: FakeBedrock, guard: KeywordGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    error = await model_error(config(bedrock), guard, "complete", KEY)
    assert "no credentials for the Bedrock endpoint" in str(error)
    assert "api_key_ref" in str(error)
    assert bedrock.requests == []


async def test_no_region(bedrock: FakeBedrock, guard: KeywordGuard) -> None:
    error = await model_error(config(bedrock, aws_region=None), guard, "complete", KEY)
    assert "set aws_region" in str(error)


async def test_the_api_key_is_never_logged(
    bedrock: FakeBedrock, guard: KeywordGuard, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bedrock.key").write_text(KEY + "\n")
    cfg = config(bedrock, api_key_ref="secret://file/bedrock.key", secrets_base_dir=tmp_path)
    bedrock.reset(api_key=KEY)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        async with build_client(cfg, guard) as llm:
            assert await ask(llm, "stream", [Message.user("hi")]) == "hi"
            bedrock.reset(api_key="another-key")
            with pytest.raises(ModelError) as caught:
                await llm.complete([Message.user("hi")])
    assert "Sending http request" in caplog.text  # botocore's debug log, headers included
    assert KEY not in caplog.text
    assert KEY not in str(logs)
    assert KEY not in str(caught.value)


async def test_the_region_is_read_from_a_standard_endpoint(guard: KeywordGuard) -> None:
    """No `aws_region`: the request is signed for the endpoint's region (no NoRegionError),
    then refused by the egress policy before anything leaves the process."""
    cfg = ModelConfig(
        provider="bedrock",
        base_url="https://bedrock-runtime.eu-west-1.amazonaws.com",
        model="m",
        egress={"model_hosts": ["bedrock-runtime.us-east-1.amazonaws.com"]},
    )
    error = await model_error(cfg, guard, "complete", KEY)
    assert "is outside the egress policy" in str(error)
    assert "not a model endpoint" in str(error)

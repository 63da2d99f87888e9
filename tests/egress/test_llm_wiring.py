"""The LLM provider's HTTP goes through the egress perimeter as the model client."""

from __future__ import annotations

import pytest

from bastion.egress import EgressPolicy
from bastion.llm import Message, ModelConfig, ModelError, build_client
from bastion.testing.fake_llm import fake_llm_server
from tests.llm.keyword_guard import KeywordGuard


@pytest.mark.parametrize(
    ("base_url", "model_hosts", "allow_private"),
    [
        ("http://127.0.0.1:8000", ("127.0.0.1:8000",), ("127.0.0.1",)),
        ("http://localhost:11434/v1", ("localhost:11434",), ("localhost",)),
        ("http://[::1]:8080", ("[::1]:8080",), ("[::1]",)),
        ("https://api.openai.com/v1", ("api.openai.com:443",), ()),
        ("http://10.0.0.5:8000", ("10.0.0.5:8000",), ()),
    ],
)
def test_default_policy_allows_exactly_the_base_url(
    base_url: str, model_hosts: tuple[str, ...], allow_private: tuple[str, ...]
) -> None:
    policy = ModelConfig(base_url=base_url, model="m").egress_policy()
    assert policy.model_hosts == model_hosts
    assert policy.allow_private == allow_private
    assert policy.allowed_hosts == ()


def test_an_explicit_policy_is_used_as_given() -> None:
    config = ModelConfig.model_validate(
        {
            "base_url": "http://10.0.0.5:8000",
            "model": "m",
            "egress": {"model_hosts": ["10.0.0.5:8000"], "allow_private": ["10.0.0.5"]},
        }
    )
    assert config.egress_policy() == EgressPolicy(
        model_hosts=("10.0.0.5:8000",), allow_private=("10.0.0.5",)
    )


async def test_the_model_client_reaches_its_model_host() -> None:
    with fake_llm_server() as fake:
        async with build_client(ModelConfig(base_url=fake.url, model="m"), KeywordGuard()) as llm:
            reply = await llm.complete([Message.user("hello")])
    assert reply.text == "hello"


async def test_a_model_server_outside_the_policy_is_refused() -> None:
    with fake_llm_server() as fake:
        # The policy names the server's host but not its address as allowed-private.
        port = fake.url.rsplit(":", 1)[1]
        policy = EgressPolicy(model_hosts=(f"127.0.0.1:{port}",))
        config = ModelConfig(base_url=fake.url, model="m", api_key="sk-k3y", egress=policy)
        async with build_client(config, KeywordGuard()) as llm:
            with pytest.raises(ModelError) as caught:
                await llm.complete([Message.user("hello")])
        assert fake.requests == []
    message = str(caught.value)
    assert "outside the egress policy" in message
    assert "127.0.0.1 is a loopback address; add it to allow_private" in message
    assert "sk-k3y" not in message

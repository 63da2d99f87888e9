"""Fixtures: the keyword guard, and one fake model server per protocol shared by the module's
tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.testing.fake_anthropic import FakeAnthropic, fake_anthropic_server
from bastion.testing.fake_bedrock import FakeBedrock, fake_bedrock_server
from bastion.testing.fake_llm import FakeLLM, fake_llm_server
from tests.llm.keyword_guard import KeywordGuard


@pytest.fixture
def guard() -> KeywordGuard:
    return KeywordGuard()


@pytest.fixture(scope="module")
def _shared_fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as fake:
        yield fake


@pytest.fixture
def fake(_shared_fake: FakeLLM) -> FakeLLM:
    """The module's fake model server, back to its default script (echo, no key)."""
    _shared_fake.reset()
    return _shared_fake


@pytest.fixture(scope="module")
def _shared_anthropic() -> Iterator[FakeAnthropic]:
    with fake_anthropic_server() as fake:
        yield fake


@pytest.fixture
def anthropic(_shared_anthropic: FakeAnthropic) -> FakeAnthropic:
    """The module's fake Messages server, back to its default script (echo, no key)."""
    _shared_anthropic.reset()
    return _shared_anthropic


@pytest.fixture(scope="module")
def _shared_bedrock() -> Iterator[FakeBedrock]:
    with fake_bedrock_server() as fake:
        yield fake


@pytest.fixture
def bedrock(_shared_bedrock: FakeBedrock) -> FakeBedrock:
    """The module's fake Bedrock runtime, back to its default script (echo, any signature)."""
    _shared_bedrock.reset()
    return _shared_bedrock

"""Fixtures: the keyword guard, and one fake model server shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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

"""The research engine with a model (the fake OpenAI-compatible server), built only through
`research_model` (`bastion.llm.build_client` with the default guardrail policy): the model's
valid answers are used and the result names the model; answers invalid twice fall back to the
offline steps, the events and the critique say so, and the report is the offline one."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bastion.config import ResearchSettings, Settings
from bastion.research.credibility import load_credibility_rules
from bastion.research.engine import ResearchEngine
from bastion.research.model_client import research_model
from bastion.research.ports import LocalCritic, LocalResearcher
from bastion.research.researcher import Researcher
from bastion.research.retrieval import CorpusProvider
from bastion.testing.fake_llm import FakeLLM
from tests.research.service_fixtures import offline_engine, run_once, write_corpus

QUESTION = "When was the Eiffel Tower completed?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def model_engine(corpus: Path, fake: FakeLLM) -> ResearchEngine:
    research = ResearchSettings(
        corpus=str(corpus), max_rounds=1, model={"base_url": fake.url, "model": "fake-model"}
    )
    settings = Settings(research=research, base_dir=corpus.parent)
    client, name = research_model(settings, "research")
    assert client is not None and name == "openai:fake-model"
    provider = CorpusProvider(corpus, clock=lambda: 0.0)
    researcher = Researcher(lambda _owner: [provider], load_credibility_rules(), clock=lambda: 0.0)
    return ResearchEngine(
        LocalResearcher(researcher),
        LocalCritic(model=client),
        research,
        model=client,
        model_name=name,
    )


def _data(messages: Sequence[dict[str, Any]]) -> Any:
    text = str(messages[-1]["content"])
    body = text.split("\n", 1)[1].rsplit("\n", 1)[0]
    return json.loads(body)


def valid_reply(messages: Sequence[dict[str, Any]]) -> str:
    task = str(messages[0]["content"])
    if task.startswith("Decide whether"):
        return json.dumps({"mode": "research"})
    if task.startswith("Split the question"):
        return json.dumps({"kind": "single", "sub_questions": [{"text": QUESTION}]})
    if task.startswith("Answer the question"):
        sources = _data(messages)["sources"]
        n = next(s["n"] for s in sources if s["title"] == "Eiffel Tower")
        finding = {"sub_question": QUESTION, "sentence": "It was completed in 1889.", "source": n}
        return json.dumps({"answer": "in 1889", "answer_source": n, "findings": [finding]})
    if task.startswith("Review the research report"):
        return json.dumps({"verdict": "PASS", "reasons": ["every claim is cited"], "gaps": []})
    raise AssertionError(task[:80])


async def test_the_models_valid_answers_are_used_and_named(corpus: Path, fake: FakeLLM) -> None:
    fake.reset(reply=valid_reply)
    result, events = await run_once(model_engine(corpus, fake), QUESTION)
    assert result.model == "openai:fake-model"
    assert result.answer == "in 1889"
    assert "- It was completed in 1889. [1]" in result.report
    assert [s.id for s in result.sources] == ["eiffel"]
    assert result.critique[0].reasons == ["every claim is cited"]
    assert not any(e.get("stage") == "model_fallback" for e in events)
    # the planted injection never reached the model
    sent = json.dumps([r.body for r in fake.requests])
    assert "Ignore all previous instructions" not in sent
    assert len(fake.requests) == 4  # classify, plan, synthesize, critique


async def test_invalid_answers_twice_fall_back_to_the_offline_steps(
    corpus: Path, fake: FakeLLM
) -> None:
    fake.reset(reply="this is not JSON")
    result, events = await run_once(model_engine(corpus, fake), QUESTION)
    offline, _ = await run_once(offline_engine(corpus), QUESTION)
    assert result.model == "offline"  # no step used the model's answer
    assert result.report == offline.report and result.answer == "1889"
    fallbacks = [e["message"] for e in events if e.get("stage") == "model_fallback"]
    assert [m.split(":")[0] for m in fallbacks] == ["classifier", "planner", "synthesizer"]
    assert all("invalid model answer twice" in m for m in fallbacks)
    assert result.notes == fallbacks  # the result itself says so
    assert any(e.get("stage") == "critic_fallback" for e in events)
    assert re.search(r"model critic not used", result.critique[0].reasons[-1])
    assert len(fake.requests) == 8  # each of the four steps asked twice

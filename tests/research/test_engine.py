"""The research engine in one process, offline, on a corpus written here: cited reports whose
every [n] resolves, byte-identical reruns, bridges in two hops, the bounded REFINE loop, the
quarantine of a planted injection, chat mode, follow-ups and the researchers' concurrency."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bastion.config import ResearchSettings
from bastion.research.engine import CHAT_REPLY, report_chunks
from bastion.research.findings import Quarantined
from bastion.research.model import Turn
from bastion.research.plan import BRIDGE
from bastion.research.sources import Passage, Source
from bastion.research.text import CITATION_RE
from tests.research.conftest import hotpotqa
from tests.research.service_fixtures import INJECTION, offline_engine, run_once, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def assert_cited(result: Any) -> None:
    numbers = {s.n for s in result.sources}
    cited = {int(n) for n in CITATION_RE.findall(result.report)}
    assert cited, result.report
    assert cited <= numbers
    assert numbers == set(range(1, len(result.sources) + 1))
    assert "## Sources" in result.report


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_a_question_gets_a_cited_report_streamed_in_order(corpus: Path) -> None:
    result, events = await run_once(offline_engine(corpus), "When was the Eiffel Tower completed?")
    assert result.mode == "research"
    assert result.answer == "1889"
    assert_cited(result)
    assert [s.id for s in result.sources] == ["eiffel"]
    assert result.sources[0].credibility == 0.8  # the shipped tier of the local corpus
    assert result.model == "offline"
    assert result.rounds == 1 and [c.verdict for c in result.critique] == ["PASS"]
    kinds = types(events)
    assert kinds[0] == "conversation"
    assert events[0]["id"] == result.id and events[0]["conversation_id"] == result.conversation_id
    assert kinds.index("plan") < kinds.index("source") < kinds.index("critique")
    assert kinds.index("critique") < kinds.index("text")
    # the text chunks are the report, in order
    assert "".join(e["text"] for e in events if e["type"] == "text") == result.report
    source_events = [e for e in events if e["type"] == "source"]
    assert {e["id"] for e in source_events} >= {"eiffel"}
    assert all(
        {"credibility", "reasons", "researcher", "provider"} <= e.keys() for e in source_events
    )


async def test_the_same_question_on_the_same_corpus_gives_the_same_report(corpus: Path) -> None:
    question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    first, _ = await run_once(offline_engine(corpus), question)
    second, _ = await run_once(offline_engine(corpus), question)
    assert first.id != second.id
    assert first.report.encode() == second.report.encode()
    assert first.model_dump(exclude={"id", "conversation_id", "elapsed_ms"}) == second.model_dump(
        exclude={"id", "conversation_id", "elapsed_ms"}
    )
    assert first.answer == "Statue of Liberty"
    assert_cited(first)


async def test_a_bridge_question_is_researched_in_two_hops(corpus: Path) -> None:
    result, events = await run_once(offline_engine(corpus), "When was the director of Jaws born?")
    assert result.plan == ["Who directed Jaws?", "When was Steven Spielberg born?"]
    assert result.answer == "December 18, 1946"
    assert_cited(result)
    assert [s.id for s in result.sources] == ["jaws", "spielberg"]
    plan_event = next(e for e in events if e["type"] == "plan")
    assert plan_event["sub_questions"][1] == f"When was {BRIDGE} born?"
    # the second hop searched with the first hop's answer, after the first hop finished; the
    # whole question is searched too (its passages join the pool the cited pair is chosen from)
    searches = [e["sub_question"] for e in events if e.get("stage") == "searching"]
    hops = [s for s in searches if s != "When was the director of Jaws born?"]
    assert hops == ["Who directed Jaws?", "When was Steven Spielberg born?"]
    assert searches.count("When was the director of Jaws born?") == 1


@pytest.mark.parametrize("max_rounds", [1, 2, 3])
async def test_refine_rounds_stop_at_max_rounds(corpus: Path, max_rounds: int) -> None:
    # No source of the corpus (0.8) reaches 0.95: the critic asks for more every round.
    settings = ResearchSettings(corpus=str(corpus), min_credibility=0.95, max_rounds=max_rounds)
    result, events = await run_once(
        offline_engine(corpus, settings=settings), "When was the Eiffel Tower completed?"
    )
    assert result.rounds == max_rounds
    assert [c.verdict for c in result.critique] == ["REFINE"] * max_rounds
    assert [c.round for c in result.critique] == list(range(1, max_rounds + 1))
    assert types(events).count("plan") == max_rounds
    assert types(events).count("critique") == max_rounds
    assert "no credible source" in result.critique[0].reasons[0]
    assert_cited(result)


async def test_a_planted_injection_is_quarantined_never_cited_and_audited(corpus: Path) -> None:
    audited: list[tuple[Quarantined, str]] = []
    engine = offline_engine(corpus, on_quarantine=lambda item, sub: audited.append((item, sub)))
    result, events = await run_once(engine, "When was the Eiffel Tower in Paris completed?")
    assert [q.id for q in result.quarantined] == ["tower-fan-page"]
    assert "prompt attack" in result.quarantined[0].reason
    assert "tower-fan-page" not in {s.id for s in result.sources}
    assert "fan page" not in result.report and "Ignore all previous" not in result.report
    assert all(e.get("id") != "tower-fan-page" for e in events if e["type"] == "source")
    assert [(item.id, item.provider) for item, _ in audited] == [("tower-fan-page", "corpus")]
    assert any(e.get("stage") == "quarantined" for e in events)
    assert result.answer == "1889"
    assert INJECTION not in str(result.model_dump())


async def test_small_talk_is_answered_without_research(corpus: Path) -> None:
    result, events = await run_once(offline_engine(corpus), "hi there!")
    assert result.mode == "chat"
    assert result.answer == result.report == CHAT_REPLY
    assert result.sources == [] and result.plan == [] and result.rounds == 0
    assert "plan" not in types(events) and "source" not in types(events)
    # mode chat asked for explicitly: no research even for a question
    asked, _ = await run_once(
        offline_engine(corpus), "When was the Eiffel Tower completed?", mode="chat"
    )
    assert asked.mode == "chat" and asked.sources == []


async def test_a_follow_up_is_read_against_the_previous_turn(corpus: Path) -> None:
    previous = Turn(
        question="Who directed Jaws?",
        mode="research",
        run_id="run_previous",
        status="done",
        answer="Steven Spielberg",
    )
    result, events = await run_once(
        offline_engine(corpus), "and when was he born?", history=[previous]
    )
    assert result.question == "When was Steven Spielberg born?"
    assert result.answer == "December 18, 1946"
    assert any(e.get("stage") == "follow_up" for e in events)
    # without a previous turn the message is taken as it is
    alone, _ = await run_once(offline_engine(corpus), "and when was he born?")
    assert alone.question == "and when was he born?"


class CountingProvider:
    """A provider that records how many searches run at once; with `wait_for`, each search
    waits until that many run together (so parallelism is shown, not assumed)."""

    def __init__(self, wait_for: int | None = None) -> None:
        self.active = 0
        self.most = 0
        self.queries: list[str] = []
        self._wait_for = wait_for
        self._together = asyncio.Event()

    @property
    def name(self) -> str:
        return "corpus"

    async def search(self, query: str, limit: int) -> list[Passage]:
        self.active += 1
        self.most = max(self.most, self.active)
        self.queries.append(query)
        try:
            if self._wait_for is not None:
                if self.active >= self._wait_for:
                    self._together.set()
                await asyncio.wait_for(self._together.wait(), 5)
            else:
                for _ in range(5):
                    await asyncio.sleep(0)  # let any other researcher start meanwhile
        finally:
            self.active -= 1
        text = f"{query} The answer was recorded in 1900."
        source = Source(
            id=f"doc-{len(self.queries)}",
            title=query,
            provider="corpus",
            retrieved_at=0.0,
            snippet=text,
            text=text,
        )
        return [Passage(source=source, index=0, text=text, score=1.0)]


@pytest.mark.parametrize("researchers", [1, 2])
async def test_researchers_are_bounded(corpus: Path, researchers: int) -> None:
    provider = CountingProvider(wait_for=2 if researchers == 2 else None)
    settings = ResearchSettings(researchers=researchers, max_rounds=1)
    engine = offline_engine(corpus, settings=settings, providers=[provider])
    question = "Which is older, the Eiffel Tower or the Statue of Liberty?"
    result, _ = await run_once(engine, question)
    assert len(provider.queries) == 3  # one search per sub-question, one for the question
    assert provider.most == researchers
    assert sorted([*result.plan, question]) == sorted(provider.queries)


def test_report_chunks_join_to_the_report() -> None:
    report = "# Q\n\n**Answer:** x [1]\n\n- a [1]\n- b [1]\n\n## Sources\n\n[1] T (corpus: t)\n"
    chunks = report_chunks(report, lines=3)
    assert "".join(chunks) == report and len(chunks) == 4


async def test_hotpotqa_sample_reports_cite_what_they_say(tmp_path: Path) -> None:
    """The shared HotpotQA sample (when present) as the corpus: every report's citations
    resolve, a rerun is byte-identical, and most answers are right."""
    questions = hotpotqa("questions")
    corpus_doc = hotpotqa("corpus")
    corpus = tmp_path / "hotpotqa.json"
    corpus.write_text(__import__("json").dumps(corpus_doc), encoding="utf-8")
    engine = offline_engine(corpus, settings=ResearchSettings(corpus=str(corpus), max_rounds=1))
    right = 0
    chosen = questions[0:40:2]  # the tuning half
    for item in chosen:
        result, _ = await run_once(engine, item["question"], mode="research")
        if result.sources:
            assert_cited(result)
        norm = re.sub(r"\W+", " ", result.answer.lower()).strip()
        right += norm == re.sub(r"\W+", " ", item["answer"].lower()).strip()
    again, _ = await run_once(engine, chosen[0]["question"], mode="research")
    first, _ = await run_once(engine, chosen[0]["question"], mode="research")
    assert again.report == first.report
    print(f"hotpotqa: {right} of {len(chosen)} exact")
    assert right >= 4, right  # measured: 5 of 20 exact over the whole sample corpus

"""The offline planner and synthesizer on the even-indexed half of the shared HotpotQA sample
(the tuning half; the odd half is kept for the bench), each question given its own context
passages: every citation resolves, reruns are byte-identical, and the answer quality stays at
least at its measured level. Skipped when the shared dataset is not beside the repository.

See the numbers with `pytest -s tests/research/test_offline_hotpotqa.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bastion.research.corpus import hotpotqa_documents
from bastion.research.plan import plan, resolve_bridge
from bastion.research.retrieval import CorpusIndex
from bastion.research.sources import Passage, Source
from bastion.research.synthesis import Report, synthesize
from bastion.research.text import CITATION_RE, answer_scores, normalize_answer
from tests.research.service_fixtures import offline_engine, run_once

QUESTIONS = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "datasets"
    / "research"
    / "hotpotqa100_questions.json"
)


def context_passages(context: list[list[Any]]) -> list[Passage]:
    out: list[Passage] = []
    for title, sentences in context:
        src = Source(
            id=title,
            title=title,
            provider="corpus",
            retrieved_at=0.0,
            snippet=sentences[0] if sentences else "",
            text=" ".join(sentences),
            sentences=tuple(sentences),
        )
        out += [Passage(src, i, sentence, 0.0) for i, sentence in enumerate(sentences)]
    return out


def run(question: str, given: list[Passage]) -> Report:
    """Plan, resolve a bridge from the first step's evidence, then synthesize."""
    current = plan(question)
    if current.kind == "bridge":
        first = synthesize(question, [current.sub_questions[0].text], given)
        current = resolve_bridge(current, 0, [e.sentence for e in first.evidence])
    return synthesize(question, [s.search_text for s in current.sub_questions], given)


def test_even_half_answers_cites_and_repeats() -> None:
    if not QUESTIONS.is_file():
        pytest.skip(f"no dataset at {QUESTIONS}")
    even = json.loads(QUESTIONS.read_text(encoding="utf-8"))[::2]
    in_report = exact = f1 = 0.0
    for item in even:
        given = context_passages(item["context"])
        report = run(item["question"], given)
        body = report.markdown.split("## Sources")[0]
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
        assert cited <= set(range(1, len(report.sources) + 1)), item["question"]
        assert run(item["question"], given).markdown == report.markdown
        in_report += normalize_answer(item["answer"]) in normalize_answer(report.markdown)
        em, f = answer_scores(report.answer or "", item["answer"])
        exact, f1 = exact + em, f1 + f
    n = len(even)
    print(
        f"\nHotpotQA even half, own context (n={n}): answer in report {in_report / n:.2f}, "
        f"answer EM {exact / n:.2f}, F1 {f1 / n:.2f}"
    )
    assert in_report / n >= 0.80
    assert exact / n >= 0.32
    assert f1 / n >= 0.37


async def test_even_half_cites_better_sources_than_bm25(tmp_path: Path) -> None:
    """The engine over the whole sample corpus: the gold supporting titles among the cited
    sources beat single-shot BM25 on the question at the same number of passages by at least
    0.15 (measured: 0.87 against 0.63), and the gold answer is in the answer or the report for
    at least 70% of the questions (measured: 76%)."""
    corpus_file = QUESTIONS.with_name("hotpotqa100_corpus.json")
    if not QUESTIONS.is_file() or not corpus_file.is_file():
        pytest.skip(f"no dataset beside {QUESTIONS}")
    even = json.loads(QUESTIONS.read_text(encoding="utf-8"))[::2]
    corpus = tmp_path / "corpus.json"
    documents = hotpotqa_documents(json.loads(corpus_file.read_text(encoding="utf-8")))
    corpus.write_text(json.dumps(documents), encoding="utf-8")
    engine = offline_engine(corpus)
    index = CorpusIndex(corpus)
    recall = bm25 = found = 0.0
    for item in even:
        result, _ = await run_once(engine, item["question"], mode="research")
        numbers = {int(n) for n in CITATION_RE.findall(result.report)}
        cited = {s.title for s in result.sources if s.n in numbers}
        gold = {title for title, _ in item["supporting_facts"]}
        ranked = {hit.document.title for hit in index.search(item["question"], max(1, len(cited)))}
        recall += len(gold & cited) / len(gold)
        bm25 += len(gold & ranked) / len(gold)
        found += normalize_answer(item["answer"]) in normalize_answer(
            f"{result.answer} {result.report}"
        )
    n = len(even)
    print(f"\nHotpotQA even half, engine (n={n}): cited-source recall {recall / n:.2f}, BM25 at "
          f"the same k {bm25 / n:.2f}, answer in answer/report {found / n:.2f}")  # fmt: skip
    assert recall / n >= bm25 / n + 0.15
    assert found / n >= 0.70

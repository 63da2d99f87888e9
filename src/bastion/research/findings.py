"""What one researcher brings back for one sub-question, and how it travels between agents.

`Findings` holds the passages that passed the guardrails, each with its source's credibility,
and the sources the guardrails quarantined (with why). `to_json` / `findings_from_json` (and the
`source_*` / `report_*` helpers) turn them, a `Report` and a `Critique` into plain JSON for the
researcher's and the critic's A2A methods and back, losslessly: the same report is rebuilt on
the other side, so a run over A2A writes the same bytes as a run in one process. The critic is
sent a report without its sources' texts (`report_to_json(..., source_texts=False)`): it needs
none of them, and that keeps the payload small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.research.critic import Critique, Verdict
from bastion.research.sources import Passage, Source
from bastion.research.synthesis import Evidence, Report

__all__ = [
    "Findings",
    "Quarantined",
    "ScoredPassage",
    "critique_from_json",
    "critique_to_json",
    "findings_from_json",
    "report_from_json",
    "report_to_json",
    "source_from_json",
    "source_to_json",
]


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """A passage the guardrails let through, with its source's credibility and the reasons."""

    passage: Passage
    credibility: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A source kept out of the run by the guardrails: never cited, never passed on."""

    id: str
    title: str
    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class Findings:
    """One sub-question's research: kept passages (best first), quarantined sources, and the
    providers that failed (a message each)."""

    sub_question: str
    passages: tuple[ScoredPassage, ...]
    quarantined: tuple[Quarantined, ...] = ()
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "sub_question": self.sub_question,
            "passages": [
                {
                    "source": source_to_json(p.passage.source),
                    "index": p.passage.index,
                    "text": p.passage.text,
                    "score": p.passage.score,
                    "credibility": p.credibility,
                    "reasons": list(p.reasons),
                }
                for p in self.passages
            ],
            "quarantined": [
                {"id": q.id, "title": q.title, "provider": q.provider, "reason": q.reason}
                for q in self.quarantined
            ],
            "failures": list(self.failures),
        }


def source_to_json(source: Source) -> dict[str, Any]:
    return {
        "id": source.id,
        "title": source.title,
        "provider": source.provider,
        "retrieved_at": source.retrieved_at,
        "snippet": source.snippet,
        "text": source.text,
        "url": source.url,
        "published_at": source.published_at,
        "sentences": list(source.sentences),
    }


def source_from_json(doc: dict[str, Any]) -> Source:
    return Source(
        id=str(doc["id"]),
        title=str(doc["title"]),
        provider=str(doc["provider"]),
        retrieved_at=float(doc["retrieved_at"]),
        snippet=str(doc["snippet"]),
        text=str(doc["text"]),
        url=doc.get("url"),
        published_at=doc.get("published_at"),
        sentences=tuple(str(s) for s in doc.get("sentences") or ()),
    )


def findings_from_json(doc: dict[str, Any]) -> Findings:
    """The `Findings` of `doc` (from `Findings.to_json`); KeyError/TypeError/ValueError when it
    is not one."""
    passages = tuple(
        ScoredPassage(
            Passage(
                source=source_from_json(p["source"]),
                index=int(p["index"]),
                text=str(p["text"]),
                score=float(p["score"]),
            ),
            float(p["credibility"]),
            tuple(str(r) for r in p.get("reasons") or ()),
        )
        for p in doc["passages"]
    )
    quarantined = tuple(
        Quarantined(str(q["id"]), str(q["title"]), str(q["provider"]), str(q["reason"]))
        for q in doc.get("quarantined") or ()
    )
    failures = tuple(str(f) for f in doc.get("failures") or ())
    return Findings(str(doc["sub_question"]), passages, quarantined, failures)


def report_to_json(report: Report, *, source_texts: bool = True) -> dict[str, Any]:
    """`report` as JSON; without `source_texts`, its sources travel without their text, snippet
    and sentences (what the critic is sent: it checks the report, the citations, the sources'
    ids and titles and the evidence sentences, never a source's own text)."""
    sources = [source_to_json(s) for s in report.sources]
    if not source_texts:
        for source in sources:
            source.update(text="", snippet="", sentences=[])
    return {
        "question": report.question,
        "answer": report.answer,
        "markdown": report.markdown,
        "sources": sources,
        "evidence": [
            {
                "sentence": e.sentence,
                "n": e.n,
                "sub_question": e.sub_question,
                "relevance": e.relevance,
            }
            for e in report.evidence
        ],
    }


def report_from_json(doc: dict[str, Any]) -> Report:
    """The `Report` of `doc` (from `report_to_json`): each evidence names its source by `n`."""
    sources = tuple(source_from_json(s) for s in doc["sources"])
    evidence = []
    for item in doc["evidence"]:
        n = int(item["n"])
        if not 1 <= n <= len(sources):
            raise ValueError(f"evidence cites [{n}], which names no source of the report")
        evidence.append(
            Evidence(
                str(item["sentence"]),
                sources[n - 1],
                n,
                str(item["sub_question"]),
                float(item["relevance"]),
            )
        )
    answer = doc.get("answer")
    return Report(
        str(doc["question"]),
        None if answer is None else str(answer),
        str(doc["markdown"]),
        tuple(evidence),
        sources,
    )


def critique_to_json(found: Critique) -> dict[str, Any]:
    return {
        "verdict": found.verdict.value,
        "reasons": list(found.reasons),
        "gaps": list(found.gaps),
    }


def critique_from_json(doc: dict[str, Any]) -> Critique:
    return Critique(
        Verdict(doc["verdict"]),
        tuple(str(r) for r in doc["reasons"]),
        tuple(str(g) for g in doc.get("gaps") or ()),
    )

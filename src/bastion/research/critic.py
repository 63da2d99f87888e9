"""The offline critic: reviews a synthesized report by rules and returns `PASS`, `REFINE` or
`FAIL`, with its reasons and, for `REFINE`, the gaps as new sub-questions for the planner.

Rules, all checked, every finding given as a reason:
- **FAIL, no evidence**: the report cites nothing at all.
- **FAIL, uncited sentence**: a sentence of the report body (anything but headings, blank lines,
  the "**Answer:**" line when nothing was found, and the sources list) does not carry an `[n]`
  citation, or a citation `[n]` names no source of the report. A broken report is not a research
  gap: more searching cannot fix it.
- **REFINE, no credible source**: a sub-question none of whose evidence comes from a source with
  credibility >= `min_credibility`. Credibility comes from the caller as source id -> score; an
  unknown source scores 0 (deny by default). Gap: the sub-question itself.
- **REFINE, low coverage**: fewer than `min_coverage` of the question's key terms appear in the
  evidence (its sentences and their sources' titles). Gap: "What is known about <the missing
  terms>?".
- **REFINE, contradiction**: for a sub-question asking for a date or a number, two sources whose
  evidence gives different values (the first year, or the first number, each source's evidence
  states). Gap: the sub-question with the disagreeing values, to be looked up again.
- **PASS** otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bastion.research.answer import answer_type, extract_span, first_year
from bastion.research.synthesis import Report
from bastion.research.text import CITATION_RE, key_terms, split_sentences

__all__ = ["Critique", "Verdict", "critique"]


class Verdict(StrEnum):
    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    REFINE = "REFINE"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Critique:
    """The verdict, why, and (for `REFINE`) the gaps as new sub-questions."""

    verdict: Verdict
    reasons: tuple[str, ...]
    gaps: tuple[str, ...] = ()


def _body_sentences(markdown: str) -> list[str]:
    sentences: list[str] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if stripped == "## Sources":
                break
            continue
        if stripped == "**Answer:** not found in the sources.":
            continue
        sentences += split_sentences(stripped.removeprefix("- "))
    return sentences


def _citation_findings(report: Report) -> list[str]:
    findings: list[str] = []
    for sentence in _body_sentences(report.markdown):
        cited = CITATION_RE.findall(sentence)
        if not cited:
            findings.append(f"sentence without a citation: {sentence[:80]!r}")
        for n in cited:
            if not 1 <= int(n) <= len(report.sources):
                findings.append(f"citation [{n}] names no source (the report has "
                                f"{len(report.sources)})")  # fmt: skip
    return findings


def _value(kind: str, sentence: str, question: str) -> str | None:
    if kind == "date":
        return first_year(sentence)
    return extract_span("number", question, [sentence])


def _contradictions(report: Report, sub_questions: Sequence[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for sub in sub_questions:
        kind = answer_type(sub)
        if kind not in ("date", "number"):
            continue
        values: dict[str, str] = {}
        for item in report.evidence:
            if item.sub_question == sub and item.source.id not in values:
                value = _value(kind, item.sentence, sub)
                if value is not None:
                    values[item.source.id] = value
        distinct = list(dict.fromkeys(values.values()))
        if len(distinct) > 1:
            found.append((sub, ", ".join(distinct)))
    return found


def critique(
    question: str,
    sub_questions: Sequence[str],
    report: Report,
    credibility: Mapping[str, float],
    *,
    min_credibility: float = 0.5,
    min_coverage: float = 0.6,
) -> Critique:
    """The verdict on `report` for `question` and its `sub_questions` (see the module rules).
    `sub_questions` are the texts `synthesize` was given (bridges filled), since evidence is
    matched to its sub-question by text."""
    if not report.evidence:
        return Critique(Verdict.FAIL, ("no evidence: the report cites no source",))
    failures = _citation_findings(report)
    if failures:
        return Critique(Verdict.FAIL, tuple(failures))
    reasons: list[str] = []
    gaps: list[str] = []
    for sub in sub_questions or [question]:
        scores = [
            credibility.get(e.source.id, 0.0) for e in report.evidence if e.sub_question == sub
        ]
        if not any(score >= min_credibility for score in scores):
            best = max(scores, default=None)
            detail = "no source" if best is None else f"best credibility {best:.2f}"
            reasons.append(f"no credible source (>= {min_credibility:.2f}) for {sub!r}: {detail}")
            gaps.append(sub)
    terms = key_terms(question)
    found = set(key_terms(" ".join(e.sentence + " " + e.source.title for e in report.evidence)))
    missing = [term for term in terms if term not in found]
    if terms and (len(terms) - len(missing)) / len(terms) < min_coverage:
        reasons.append(f"low coverage: {len(terms) - len(missing)} of {len(terms)} key terms of "
                       f"the question found; missing: {', '.join(missing)}")  # fmt: skip
        gaps.append(f"What is known about {' '.join(missing)}?")
    for sub, values in _contradictions(report, sub_questions or [question]):
        reasons.append(f"sources contradict each other on {sub!r}: {values}")
        gaps.append(f"{sub} (sources disagree: {values})")
    if reasons:
        return Critique(Verdict.REFINE, tuple(reasons), tuple(dict.fromkeys(gaps)))
    return Critique(Verdict.PASS, ("every sub-question has a credible, cited, consistent source",))

"""The guardrails the extractor runs on every document's text, as findings on the result.

The text is scanned by the guardrail engine (`bastion.guardrails.engine`) with the documents
policy (`guardrails/policies/documents.yaml`: prompt attacks, detect only, cheap cascade), and
each kind of finding becomes one finding on the document:

- `guardrail.prompt_attack` (warning): text that addresses a language model rather than a
  reader ("ignore all previous instructions", "reveal your system prompt", `<|im_start|>`, or a
  paraphrase the linear model recognises). Where the phrasing detector names it, one finding per
  family of `bastion.guardrails.prompt_attack`, with the page and at most `SNIPPET_CHARS`
  characters of the first phrase (folded: no invisible characters); otherwise one finding with
  the page and the model's confidence.
- `guardrail.<type>` for any other type a deployment's documents policy reports (PII types,
  custom regexes, words): the count and the pages, never the matched text.
- `guardrail.oversized_line` (warning): a line longer than `OVERSIZED_LINE_CHARS` characters,
  far beyond any line a person reads on a page: text meant for a machine, or to swamp one.

The default rules (`review.guardrail`) turn these into validation warnings, so such a document
is processed but goes to review. The text is not changed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from functools import cache
from importlib import resources
from itertools import accumulate

from bastion.guardrails import FAMILIES, WARNING_CONFIDENCE, Detection, Family, detect, fold
from bastion.guardrails.engine import Engine
from bastion.guardrails.policy import parse_policy
from bastion.guardrails.types import Direction, Source, Verdict
from bastion.pipeline.extract.text import Page
from bastion.pipeline.model import Finding

__all__ = ["OVERSIZED_LINE_CHARS", "SNIPPET_CHARS", "guard_findings"]

OVERSIZED_LINE_CHARS = 10_000
SNIPPET_CHARS = 40
_MAX_DETECTIONS = 100


def guard_findings(pages: Sequence[Page]) -> list[Finding]:
    """Guardrail findings on the text of `pages`, joined the way the extractor joins it."""
    text = "\n".join(page.text for page in pages)
    starts = [0, *accumulate(len(page.text) + 1 for page in pages)]  # each page's offset
    verdict = _engine().scan(text, Source.DOCUMENT, Direction.INPUT)
    return (
        _prompt_attacks(text, pages, starts, verdict)
        + _other_findings(pages, starts, verdict)
        + _oversized_lines(pages)
    )


@cache
def _engine() -> Engine:
    path = resources.files("bastion.guardrails").joinpath("policies/documents.yaml")
    policy = parse_policy(path.read_text(encoding="utf-8"), "documents.yaml")
    return Engine(policy, embeddings=False)


def _page_of(pages: Sequence[Page], starts: list[int], offset: int) -> int:
    return pages[bisect_right(starts, offset) - 1].number


def _prompt_attacks(
    text: str, pages: Sequence[Page], starts: list[int], verdict: Verdict
) -> list[Finding]:
    attacks = [f for f in verdict.findings if f.type == "PROMPT_ATTACK"]
    if not attacks:
        return []
    by_family: dict[Family, list[Detection]] = {}
    for detection in detect(text, limit=_MAX_DETECTIONS):
        if detection.confidence >= WARNING_CONFIDENCE:
            by_family.setdefault(detection.family, []).append(detection)
    findings = []
    for family, found in by_family.items():
        first = found[0]
        page = _page_of(pages, starts, first.start)
        quote = _snippet(text[first.start : first.end])
        more = f" and {len(found) - 1}{'+' if len(found) >= _MAX_DETECTIONS else ''} more"
        message = f'possible prompt injection ({FAMILIES[family]}) on page {page}: "{quote}"'
        findings.append(
            Finding(
                rule_id="guardrail.prompt_attack",
                severity="warning",
                message=message + (more if len(found) > 1 else ""),
            )
        )
    if not findings:  # the linear model alone: no phrase to quote
        best = max(attacks, key=lambda f: f.score)
        page = _page_of(pages, starts, best.start)
        findings.append(
            Finding(
                rule_id="guardrail.prompt_attack",
                severity="warning",
                message=f"possible prompt injection on page {page}: text addressed to a language "
                f"model ({best.confidence.name} confidence, policy {verdict.policy_version})",
            )
        )
    return findings


def _other_findings(pages: Sequence[Page], starts: list[int], verdict: Verdict) -> list[Finding]:
    by_type: dict[str, list[int]] = {}
    for f in verdict.findings:
        if f.type != "PROMPT_ATTACK":
            by_type.setdefault(f.type, []).append(_page_of(pages, starts, f.start))
    return [
        Finding(
            rule_id=f"guardrail.{kind.lower()}",
            severity="info",
            message=f"{len(found)} {kind} finding{'s' if len(found) > 1 else ''} on page"
            f"{'s' if len(set(found)) > 1 else ''} {', '.join(map(str, sorted(set(found))))}",
        )
        for kind, found in sorted(by_type.items())
    ]


def _oversized_lines(pages: Sequence[Page]) -> list[Finding]:
    longest, where, count = 0, 0, 0
    for page in pages:
        if len(page.text) <= OVERSIZED_LINE_CHARS:
            continue
        for line in page.text.splitlines():
            if len(line) > OVERSIZED_LINE_CHARS:
                count += 1
                if len(line) > longest:
                    longest, where = len(line), page.number
    if not count:
        return []
    also = f"; {count} such lines" if count > 1 else ""
    return [
        Finding(
            rule_id="guardrail.oversized_line",
            severity="warning",
            message=f"page {where} has a line of {longest:,} characters (the limit is "
            f"{OVERSIZED_LINE_CHARS:,}){also}",
        )
    ]


def _snippet(phrase: str) -> str:
    """At most SNIPPET_CHARS printable characters of a phrase, on one line."""
    words = " ".join(fold(phrase).text.split())
    plain = "".join(c if c.isprintable() else " " for c in words)
    return plain if len(plain) <= SNIPPET_CHARS else plain[: SNIPPET_CHARS - 1] + "…"

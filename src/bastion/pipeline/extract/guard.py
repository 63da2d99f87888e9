"""The guardrails the extractor runs on every document's text, as findings on the result.

- `guardrail.prompt_attack` (warning): phrasing that addresses a language model rather than a
  reader ("ignore all previous instructions", "reveal your system prompt", `<|im_start|>`), one
  finding per family of `bastion.guardrails.prompt_attack` found with at least
  `WARNING_CONFIDENCE`. The message names the family and the page, and quotes at most
  `SNIPPET_CHARS` characters of the first phrase (folded: no invisible characters).
- `guardrail.oversized_line` (warning): a line longer than `OVERSIZED_LINE_CHARS` characters,
  far beyond any line a person reads on a page: text meant for a machine, or to swamp one.

The default rules (`review.guardrail`) turn these into validation warnings, so such a document
is processed but goes to review. The text is not changed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from bastion.guardrails import FAMILIES, WARNING_CONFIDENCE, Detection, Family, detect, fold
from bastion.pipeline.extract.text import Page
from bastion.pipeline.model import Finding

__all__ = ["OVERSIZED_LINE_CHARS", "SNIPPET_CHARS", "guard_findings"]

OVERSIZED_LINE_CHARS = 10_000
SNIPPET_CHARS = 40
_MAX_DETECTIONS = 100


def guard_findings(pages: Sequence[Page]) -> list[Finding]:
    """Guardrail findings on the text of `pages`, joined the way the extractor joins it."""
    return _prompt_attacks(pages) + _oversized_lines(pages)


def _prompt_attacks(pages: Sequence[Page]) -> list[Finding]:
    text = "\n".join(page.text for page in pages)
    starts = [0, *accumulate(len(page.text) + 1 for page in pages)]  # each page's offset
    by_family: dict[Family, list[Detection]] = {}
    for detection in detect(text, limit=_MAX_DETECTIONS):
        if detection.confidence >= WARNING_CONFIDENCE:
            by_family.setdefault(detection.family, []).append(detection)
    findings = []
    for family, found in by_family.items():
        first = found[0]
        page = pages[bisect_right(starts, first.start) - 1].number
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
    return findings


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

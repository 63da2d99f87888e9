"""The researcher's core: one sub-question -> every enabled provider -> deduplicated,
guard-scanned, credibility-scored passages (`Findings`).

Order of work, and why:
1. **search** every provider at once (a failing provider is reported in `failures`, the others
   still count);
2. **deduplicate** the sources (`dedup.deduplicate`), keeping one passage per source;
3. **scan** every passage with the guardrails before anything else sees it: its source's title,
   snippet and text and the passage text, as a `tool_result` on its way `input`, with the
   project's default policy (the one the model client applies to tool results). A source
   carrying a prompt attack, or too long to scan, is quarantined: never cited, never passed on,
   listed with its reason, and reported to `on_quarantine` (the agent audits it);
4. **score** credibility (`credibility.score_sources`, agreement counted among the kept
   sources) and keep the best `passages_per_question`, taking the providers in turn (each
   provider's own ranking kept), so one provider cannot crowd the others out.

`research` is an async generator: `progress` and `source` events (dicts of the protocol's event
shapes), then the `Findings` as its last item.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from functools import cache
from typing import Any

import structlog

from bastion.core.context import current_correlation_id
from bastion.guardrails.engine import Engine
from bastion.guardrails.policy import default_policy
from bastion.guardrails.types import Action, Confidence, Direction, Finding, Source, Verdict
from bastion.research.credibility import CredibilityRules, score_sources
from bastion.research.dedup import deduplicate
from bastion.research.findings import Findings, Quarantined, ScoredPassage
from bastion.research.sources import Passage, SearchProvider

__all__ = ["QuarantineSink", "Researcher", "guard_engine", "log_quarantine", "scan_passage"]

log = structlog.get_logger("bastion.research")

# A quarantined source, and the sub-question it turned up for (an awaitable result is awaited).
QuarantineSink = Callable[[Quarantined, str], object]

PROMPT_ATTACK = "PROMPT_ATTACK"
# How many passages a provider is asked for, per passage kept (dedup and the guard drop some).
_OVERFETCH = 2


@cache
def guard_engine() -> Engine:
    """The guardrail engine passages are scanned with: the project's default policy (pattern
    and linear layers, no embedding model, so scans are fast and deterministic)."""
    return Engine(default_policy(), embeddings=False)


def _quarantines(finding: Finding) -> bool:
    """A prompt attack the policy acts on, found by the phrase rules, or by the linear model
    with high confidence: encyclopedic text about languages, scripts and games reads like an
    attack to the model at lower confidence (about 2.5% of a Wikipedia sample), and a source
    lost to a false alarm is an answer lost."""
    if finding.type != PROMPT_ATTACK or finding.action == Action.NONE:
        return False
    return finding.detector != "linear" or finding.confidence is Confidence.HIGH


def _attack(verdict: Verdict) -> str | None:
    """Why `verdict` quarantines its text, or None."""
    attacks = [f for f in verdict.findings if _quarantines(f)]
    if attacks:
        best = max(attacks, key=lambda f: f.score)
        return (
            f"prompt attack in the source ({best.confidence.name} confidence, detector "
            f"{best.detector}, policy {verdict.policy_version})"
        )
    if verdict.action is Action.BLOCKED and not verdict.findings:
        why = "; ".join(verdict.notes) or "blocked by the guardrails"
        return f"not scannable: {why}"
    return None


def scan_passage(passage: Passage, engine: Engine | None = None) -> str | None:
    """Why `passage` must be quarantined (a prompt attack in any of its text), or None."""
    source = passage.source
    text = "\n".join(
        part for part in (source.title, source.snippet, source.text, passage.text) if part
    )
    verdict = (engine or guard_engine()).scan(text, Source.TOOL_RESULT, Direction.INPUT)
    return _attack(verdict)


def _round_robin(groups: Sequence[Sequence[ScoredPassage]], limit: int) -> list[ScoredPassage]:
    picked: list[ScoredPassage] = []
    depth = 0
    while len(picked) < limit and any(depth < len(g) for g in groups):
        for group in groups:
            if depth < len(group) and len(picked) < limit:
                picked.append(group[depth])
        depth += 1
    return picked


class Researcher:
    """Researches sub-questions with the providers `providers_for(owner)` gives.

    `clock` gives the time credibility's recency is measured at; `on_quarantine` hears of each
    quarantined source (default: a warning log line with the correlation ID).
    """

    def __init__(
        self,
        providers_for: Callable[[str], Sequence[SearchProvider]],
        rules: CredibilityRules,
        *,
        passages_per_question: int = 10,
        clock: Callable[[], float] = time.time,
        on_quarantine: QuarantineSink | None = None,
        engine: Engine | None = None,
    ) -> None:
        self._providers_for = providers_for
        self._rules = rules
        self._limit = passages_per_question
        self._clock = clock
        self._on_quarantine = on_quarantine or log_quarantine
        self._engine = engine

    async def research(
        self, sub_question: str, *, owner: str, researcher: str = "researcher"
    ) -> AsyncGenerator[dict[str, Any] | Findings, None]:
        """`progress` and `source` events, then the `Findings` for `sub_question`."""
        providers = list(self._providers_for(owner))
        names = [p.name for p in providers]
        yield _progress(
            "searching", f"searching {', '.join(names) or 'no provider'}", researcher, sub_question
        )
        want = self._limit * _OVERFETCH
        answers = await asyncio.gather(
            *(p.search(sub_question, want) for p in providers), return_exceptions=True
        )
        failures: list[str] = []
        found: list[Passage] = []
        for provider, answer in zip(providers, answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, asyncio.CancelledError):
                    raise answer
                failures.append(f"{provider.name}: {_short(answer)}")
                yield _progress(
                    "provider_failed",
                    f"{provider.name} failed: {_short(answer)}",
                    researcher,
                    sub_question,
                )
                continue
            found.extend(answer)
        kept_sources = deduplicate([p.source for p in found]).kept
        kept_ids = {(s.provider, s.id) for s in kept_sources}
        unique: list[Passage] = []
        seen: set[tuple[str, str]] = set()
        for passage in found:
            key = (passage.source.provider, passage.source.id)
            if key in kept_ids and key not in seen:
                seen.add(key)
                unique.append(passage)
        clean: list[Passage] = []
        quarantined: list[Quarantined] = []
        for passage in unique:
            reason = scan_passage(passage, self._engine)
            if reason is None:
                clean.append(passage)
                continue
            source = passage.source
            kept_out = Quarantined(source.id, source.title, source.provider, reason)
            quarantined.append(kept_out)
            told = self._on_quarantine(kept_out, sub_question)
            if inspect.isawaitable(told):
                await told
            yield _progress(
                "quarantined",
                f"quarantined {source.provider}:{source.id}: {reason}",
                researcher,
                sub_question,
            )
        scores = score_sources([p.source for p in clean], self._rules, self._clock())
        by_provider: dict[str, list[ScoredPassage]] = {}
        for passage, score in zip(clean, scores, strict=True):
            scored = ScoredPassage(passage, score.value, score.reasons)
            by_provider.setdefault(passage.source.provider, []).append(scored)
        ordered = [by_provider[name] for name in dict.fromkeys(names) if name in by_provider]
        kept = _round_robin(ordered, self._limit)
        for item in kept:
            source = item.passage.source
            yield {
                "type": "source",
                "id": source.id,
                "title": source.title,
                "url": source.url,
                "provider": source.provider,
                "credibility": item.credibility,
                "reasons": list(item.reasons),
                "researcher": researcher,
            }
        yield Findings(sub_question, tuple(kept), tuple(quarantined), tuple(failures))


def _progress(stage: str, message: str, researcher: str, sub_question: str) -> dict[str, Any]:
    return {
        "type": "progress",
        "stage": stage,
        "message": message,
        "researcher": researcher,
        "sub_question": sub_question,
    }


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def log_quarantine(item: Quarantined, sub_question: str) -> None:
    log.warning(
        "research source quarantined",
        provider=item.provider,
        source_id=item.id,
        reason=item.reason,
        correlation_id=current_correlation_id(),
    )

"""The research engine: one run from the question to the result object, as a stream of events.

    classify (auto/chat/research) -> plan -> fan out the sub-questions to researchers (at most
    `research.researchers` at once; a bridge's dependent sub-question after the one it needs;
    in the first round the whole question too, when the plan split it) -> synthesize -> critic
    -> on REFINE research the named gaps (up to `research.max_rounds` rounds) -> the result
    (`ResearchResult`)

It is written against two ports (`ports.ResearcherPort`, `ports.CriticPort`), so the same engine
runs in one process and over A2A. Every event goes to `emit` as it happens (see
`protocol.EVENT_TYPES`); `run` returns the result, which the caller sends as `done`.

A follow-up question ("and when was he born?") is first resolved against the conversation's
previous turn (`followup.resolve_follow_up`). Chat mode answers without research: a fixed reply
offline, the model's when one is configured. Offline, the same question on the same corpus
gives a byte-identical report: nothing in it depends on time, ids or the order researchers
finish in (findings are put back in plan order before synthesis).

With a model (`model` given), the classifier, planner and synthesizer ask it (`modeled`); an
answer that is invalid twice falls back to the offline step, and a `progress` event says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from bastion.config import ResearchSettings
from bastion.llm import Message, ModelClient, ModelError
from bastion.research.critic import Critique, Verdict
from bastion.research.findings import Findings, ScoredPassage
from bastion.research.followup import resolve_follow_up
from bastion.research.model import (
    CritiqueRound,
    Mode,
    QuarantinedSource,
    RequestedMode,
    ResearchResult,
    ResultSource,
    Turn,
)
from bastion.research.modeled import classify_with_model, plan_with_model, synthesize_with_model
from bastion.research.plan import Plan, SubQuestion, classify, plan, resolve_bridge
from bastion.research.ports import CriticPort, ResearcherPort
from bastion.research.sources import Passage
from bastion.research.structured import Outcome
from bastion.research.synthesis import Report, synthesize
from bastion.research.text import split_sentences

__all__ = ["CHAT_REPLY", "Emit", "ResearchEngine", "RunRequest", "report_chunks"]

Emit = Callable[[dict[str, Any]], Awaitable[None]]
T = TypeVar("T")

CHAT_REPLY = (
    "Hello! I am Bastion's research assistant. Ask me a question and I will research it in "
    "the configured sources and answer with a cited report."
)
NOT_FOUND = "No answer was found in the sources."
_CHUNK_LINES = 4


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One run: its ids, whose it is, the message, the mode asked for, and the conversation's
    earlier turns (oldest first)."""

    run_id: str
    conversation_id: str
    owner: str
    message: str
    mode: RequestedMode = "auto"
    history: Sequence[Turn] = ()
    correlation_id: str | None = None


@dataclass
class _State:
    """What a run has gathered so far."""

    queries: list[str] = field(default_factory=list)  # every sub-question researched, in order
    passages: list[Passage] = field(default_factory=list)
    credibility: dict[str, float] = field(default_factory=dict)
    quarantined: dict[str, QuarantinedSource] = field(default_factory=dict)
    critique: list[CritiqueRound] = field(default_factory=list)
    used_model: bool = False
    notes: list[str] = field(default_factory=list)  # model steps that fell back, and why


def report_chunks(report: str, lines: int = _CHUNK_LINES) -> list[str]:
    """`report` cut into chunks of whole lines, in order; joined they are the report."""
    all_lines = report.splitlines(keepends=True)
    return ["".join(all_lines[i : i + lines]) for i in range(0, len(all_lines), lines)]


class ResearchEngine:
    """Runs research over `researcher` and `critic` with `settings` (see the module doc)."""

    def __init__(
        self,
        researcher: ResearcherPort,
        critic: CriticPort,
        settings: ResearchSettings,
        *,
        model: ModelClient | None = None,
        model_name: str = "offline",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._researcher = researcher
        self._critic = critic
        self._settings = settings
        self._model = model
        self._model_name = model_name if model is not None else "offline"
        self._clock = clock

    async def run(self, request: RunRequest, emit: Emit) -> ResearchResult:
        started = self._clock()
        await emit(
            {
                "type": "conversation",
                "conversation_id": request.conversation_id,
                "id": request.run_id,
            }
        )
        question = resolve_follow_up(request.message, request.history)
        if question != request.message:
            await emit(_progress("follow_up", f"read as: {question}"))
        state = _State()
        mode = await self._mode(question, request.mode, state, emit)
        if mode == "chat":
            answer = await self._chat(question, state, emit)
            report = answer
            await self._send_text(report, emit)
            return self._result(
                request, question, "chat", answer, report, [], state, 0, None, started
            )
        return await self._research(request, question, state, emit, started)

    # -- steps --------------------------------------------------------------------------------

    async def _mode(
        self, question: str, requested: RequestedMode, state: _State, emit: Emit
    ) -> Mode:
        if requested != "auto":
            return requested
        if self._model is None:
            return classify(question)
        outcome = await classify_with_model(self._model, question)
        await self._note("classifier", outcome, state, emit)
        return outcome.value

    async def _chat(self, message: str, state: _State, emit: Emit) -> str:
        await emit(_progress("chat", "answering without research"))
        if self._model is None:
            return CHAT_REPLY
        try:
            reply = await self._model.complete(
                [
                    Message.system(
                        "You are Bastion's research assistant. Reply briefly and kindly to small "
                        "talk; offer to research questions with cited sources."
                    ),
                    Message.user(message),
                ]
            )
        except ModelError as error:  # GuardrailBlocked is a ModelError too
            note = f"chat reply offline: {error}"
            state.notes.append(note)
            await emit(_progress("model_fallback", note))
            return CHAT_REPLY
        state.used_model = True
        return reply.text.strip() or CHAT_REPLY

    async def _plan(self, question: str, state: _State, emit: Emit) -> Plan:
        if self._model is None:
            return plan(question)
        outcome = await plan_with_model(
            self._model, question, max_sub_questions=max(1, self._settings.researchers)
        )
        await self._note("planner", outcome, state, emit)
        return outcome.value

    async def _synthesize(self, question: str, state: _State, emit: Emit) -> Report:
        if self._model is None:
            return synthesize(question, state.queries, state.passages)
        outcome = await synthesize_with_model(self._model, question, state.queries, state.passages)
        await self._note("synthesizer", outcome, state, emit)
        return outcome.value

    async def _note(self, step: str, outcome: Outcome[Any], state: _State, emit: Emit) -> None:
        if outcome.path == "model":
            state.used_model = True
        else:
            note = f"{step}: offline path used ({outcome.reason})"
            state.notes.append(note)
            await emit(_progress("model_fallback", note))

    async def _research(
        self, request: RunRequest, question: str, state: _State, emit: Emit, started: float
    ) -> ResearchResult:
        current = await self._plan(question, state, emit)
        limit = asyncio.Semaphore(max(1, self._settings.researchers))
        report: Report | None = None
        rounds = 0
        for round_no in range(1, self._settings.max_rounds + 1):
            rounds = round_no
            await emit({"type": "plan", "round": round_no, "sub_questions": current.texts})
            searches: list[Awaitable[tuple[Plan, list[Findings]]]] = [
                self._research_plan(request, current, limit, emit)
            ]
            if round_no == 1 and question not in current.texts:
                # the whole question too, its passages first in the pool the report's sources
                # are chosen from: the sources that answer together are found by the question
                asked = Plan(question, "single", (SubQuestion(question),))
                first = len(current.sub_questions)
                searches.insert(0, self._research_plan(request, asked, limit, emit, first=first))
            done = await asyncio.gather(*searches)
            current = done[-1][0]
            for _, all_findings in done:
                for findings in all_findings:
                    self._gather(findings, state)
            for text in current.texts:
                if text not in state.queries:
                    state.queries.append(text)
            await emit(_progress("synthesis", f"writing the report (round {round_no})"))
            report = await self._synthesize(question, state, emit)
            verdict = await self._review(question, report, state, round_no, emit)
            if verdict.verdict is not Verdict.REFINE or round_no == self._settings.max_rounds:
                break
            gaps = [g for g in verdict.gaps if g not in state.queries] or list(verdict.gaps)
            current = Plan(question, "single", tuple(SubQuestion(g) for g in gaps))
        assert report is not None  # max_rounds >= 1
        answer = report.answer or NOT_FOUND
        await self._send_text(report.markdown, emit)
        return self._result(
            request,
            question,
            "research",
            answer,
            report.markdown,
            state.queries,
            state,
            rounds,
            report,
            started,
        )

    async def _research_plan(
        self,
        request: RunRequest,
        current: Plan,
        limit: asyncio.Semaphore,
        emit: Emit,
        *,
        first: int = 0,
    ) -> tuple[Plan, list[Findings]]:
        """Research every sub-question of `current`, a bridge's dependants after what they
        need; the plan with its bridges filled, and the findings in plan order. `first` is the
        number the researchers are labelled from."""
        found: dict[int, Findings] = {}
        pending = list(range(len(current.sub_questions)))
        while pending:
            ready = [
                i
                for i in pending
                if current.sub_questions[i].depends_on is None
                or current.sub_questions[i].depends_on in found
            ]
            if not ready:  # a dependency that is not in the plan: research them as they are
                ready = list(pending)
            subs = [current.sub_questions[i] for i in ready]
            results = await asyncio.gather(
                *(
                    self._one(request, sub, first + i, limit, emit)
                    for i, sub in zip(ready, subs, strict=True)
                )
            )
            for i, findings in zip(ready, results, strict=True):
                found[i] = findings
                pending.remove(i)
            for i in ready:
                if any(s.depends_on == i and s.needs_bridge for s in current.sub_questions):
                    evidence = [
                        sentence
                        for p in found[i].passages
                        for sentence in split_sentences(p.passage.text)
                    ]
                    resolved = resolve_bridge(current, i, evidence)
                    if resolved is current:
                        await emit(
                            _progress(
                                "bridge",
                                "the first step found no answer; searching the next one without it",
                            )
                        )
                    else:
                        filled = [s.text for s in resolved.sub_questions if s.depends_on == i]
                        await emit(_progress("bridge", f"next: {'; '.join(filled)}"))
                    current = resolved
        return current, [found[i] for i in range(len(current.sub_questions))]

    async def _one(
        self,
        request: RunRequest,
        sub: SubQuestion,
        index: int,
        limit: asyncio.Semaphore,
        emit: Emit,
    ) -> Findings:
        query = sub.search_text if sub.needs_bridge else sub.text
        label = f"researcher-{index + 1}"
        async with limit:
            stream = self._researcher.research(query, owner=request.owner, researcher=label)
            findings = await _drain(stream, Findings, emit)
        if findings is None:
            raise RuntimeError(f"{label} ended without findings for {query!r}")
        # Synthesis matches evidence to the sub-question by its text: the plan's text.
        return replace(findings, sub_question=sub.text)

    @staticmethod
    def _gather(findings: Findings, state: _State) -> None:
        for scored in findings.passages:
            state.passages.append(scored.passage)
            state.credibility.setdefault(scored.passage.source.id, scored.credibility)
        for q in findings.quarantined:
            state.quarantined.setdefault(
                q.id, QuarantinedSource(id=q.id, title=q.title, reason=q.reason)
            )

    async def _review(
        self, question: str, report: Report, state: _State, round_no: int, emit: Emit
    ) -> Critique:
        stream = self._critic.critique(
            question, state.queries, report, dict(state.credibility), round=round_no
        )
        verdict = await _drain(stream, Critique, emit)
        if verdict is None:
            raise RuntimeError("the critic ended without a verdict")
        reasons = list(verdict.reasons)
        state.critique.append(
            CritiqueRound(round=round_no, verdict=verdict.verdict, reasons=reasons)
        )
        await emit(
            {
                "type": "critique",
                "round": round_no,
                "verdict": verdict.verdict.value,
                "reasons": reasons,
            }
        )
        return verdict

    @staticmethod
    async def _send_text(report: str, emit: Emit) -> None:
        for chunk in report_chunks(report):
            await emit({"type": "text", "text": chunk})

    def _result(
        self,
        request: RunRequest,
        question: str,
        mode: Mode,
        answer: str,
        report_text: str,
        plan_texts: Sequence[str],
        state: _State,
        rounds: int,
        report: Report | None,
        started: float,
    ) -> ResearchResult:
        sources = [
            ResultSource(
                n=n,
                id=source.id,
                title=source.title,
                url=source.url,
                provider=source.provider,
                credibility=state.credibility.get(source.id, 0.0),
                snippet=source.snippet,
            )
            for n, source in enumerate(report.sources if report else (), start=1)
        ]
        return ResearchResult(
            id=request.run_id,
            conversation_id=request.conversation_id,
            question=question,
            mode=mode,
            answer=answer,
            report=report_text,
            plan=list(plan_texts),
            sources=sources,
            quarantined=list(state.quarantined.values()),
            critique=state.critique,
            rounds=rounds,
            model=self._model_name if state.used_model else "offline",
            correlation_id=request.correlation_id,
            elapsed_ms=max(0, round((self._clock() - started) * 1000)),
            notes=state.notes,
        )


async def _drain(
    stream: AsyncGenerator[dict[str, Any] | T, None], final: type[T], emit: Emit
) -> T | None:
    """Pass a port's events on to `emit` as they come; its last item of type `final`."""
    last: T | None = None
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, final):
                last = item
            else:
                await emit(cast(dict[str, Any], item))
    return last


def _progress(stage: str, message: str) -> dict[str, Any]:
    return {"type": "progress", "stage": stage, "message": message}


def passages_of(findings: Sequence[Findings]) -> list[ScoredPassage]:
    """Every kept passage of `findings`, in order."""
    return [p for f in findings for p in f.passages]

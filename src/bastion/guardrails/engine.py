"""The guardrail engine: one entry point, `scan(text, source, direction, policy) -> Verdict`.

What a scan does, in order:

1. Input. Bytes are decoded as UTF-8 (invalid sequences become U+FFFD, and the verdict notes
   it); lone surrogates in a str are replaced the same way. A text longer than `max_chars` is
   not scanned at all: the verdict is BLOCKED with the note "too long" (fail closed).
2. Normalisation. Detectors read the text folded by `normalize.fold` (NFKC/NFKD compatibility
   forms, zero-width and bidi characters removed, look-alike letters mapped); every finding's
   span is an offset into the text as given. Runs of base64 or hex that decode to readable text
   are scanned too (`payloads`), their findings reported at the encoded run.
3. The cascade, cheapest first, only the detectors the policy asks for in this direction:
   - patterns with validators: PII and custom regexes (`pii`), word filters (`words`), prompt
     attack phrasing (`prompt_attack`, through `content`);
   - the linear models: prompt attacks and toxicity with per-category lexicons (`content`);
   - sentence embeddings (`topics`), only for a text the cheaper layers have not blocked:
     denied topics, and paraphrased prompt attacks when the cheaper layers are unsure (a linear
     score in `UNSURE_ATTACK`). Without the model the engine degrades to the cheaper layers
     (keywords for topics) and the verdict says so.
   Prompt attacks are looked for in user input, tool results and documents, never in the system
   prompt or a model's answer.
4. Decision. A content finding counts when its confidence reaches the filter's strength; then
   the filter's action says whether it blocks. PII, custom regex, word and topic findings carry
   the policy's action (BLOCK, ANONYMIZE or NONE). Any BLOCK makes the verdict BLOCKED, with
   the policy's blocked message as its text; otherwise any ANONYMIZE makes it ANONYMIZED, the
   text with those spans replaced by `{TYPE}` (or reversible tokens when the policy says so);
   otherwise NONE and the text unchanged. Findings below a filter's strength are dropped;
   findings the policy only reports are kept with action NONE.

Long texts are read in overlapping windows by each detector (`linear.windows`, shared by
every detector), so the work is linear in the length and bounded by `max_chars`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property
from importlib import resources

from bastion.guardrails import content, embedding, pii, words
from bastion.guardrails.anonymize import anonymize
from bastion.guardrails.linear import WINDOW_CHARS, windows
from bastion.guardrails.normalize import fold
from bastion.guardrails.payloads import decoded_payloads
from bastion.guardrails.policy import Policy, PolicyAction, default_policy
from bastion.guardrails.topics import ExemplarMatcher, Topic, TopicMatcher
from bastion.guardrails.types import (
    CONTENT_CATEGORIES,
    Action,
    Confidence,
    Direction,
    Finding,
    Source,
    Verdict,
)

__all__ = ["DEFAULT_MAX_CHARS", "UNSURE_ATTACK", "Engine", "scan"]

DEFAULT_MAX_CHARS = 2_000_000
# Linear prompt-attack scores in this band are "unsure": the embedding layer then compares the
# text with known attack phrasings.
UNSURE_ATTACK = (0.2, 0.5)
_PROMPT_ATTACK = "PROMPT_ATTACK"
_ATTACK_SOURCES = frozenset({Source.USER_INPUT, Source.TOOL_RESULT, Source.DOCUMENT})
_SURROGATE = re.compile("[\ud800-\udfff]")
_TO_ACTION = {
    PolicyAction.BLOCK: Action.BLOCKED,
    PolicyAction.ANONYMIZE: Action.ANONYMIZED,
    PolicyAction.NONE: Action.NONE,
}


class Engine:
    """A policy made ready to scan: its matchers built once, reused for every text."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        token_key: bytes | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        embeddings: bool = True,
    ) -> None:
        self.policy = policy if policy is not None else default_policy()
        if self.policy.anonymize_with == "token" and token_key is None:
            raise ValueError(
                f"policy {self.policy.name!r} anonymizes with reversible tokens: "
                "give the engine a token key (32, 48 or 64 bytes from the secret store)"
            )
        self.token_key = token_key
        self.max_chars = max_chars
        self.embeddings = embeddings
        # The content categories each direction's filters look for.
        self._categories = {
            direction: [c for c in CONTENT_CATEGORIES if self.policy.content_strength(c, direction)]
            for direction in Direction
        }

    @cached_property
    def _topics(self) -> TopicMatcher | None:
        if not self.policy.topics:
            return None
        topics = [Topic(t.name, t.definition, t.examples) for t in self.policy.topics]
        return TopicMatcher(topics, embeddings=self.embeddings)

    @cached_property
    def _attack_exemplars(self) -> ExemplarMatcher | None:
        if not self.embeddings or not embedding.available():
            return None
        return ExemplarMatcher(_PROMPT_ATTACK, _exemplars())

    def scan(self, text: str | bytes, source: Source | str, direction: Direction | str) -> Verdict:
        """The verdict on `text` coming from `source`, going `direction` (see module docs)."""
        source, direction = Source(source), Direction(direction)
        text, notes = _as_text(text)
        if len(text) > self.max_chars:
            notes.append(f"too long: {len(text)} characters, the limit is {self.max_chars}")
            return self._verdict([], text, direction, notes, blocked=True)
        findings, degraded = self._detect(text, source, direction, notes)
        for payload in decoded_payloads(text):
            inner, inner_degraded = self._detect(payload.text, source, direction, notes)
            degraded = degraded or inner_degraded
            findings += [replace(f, start=payload.start, end=payload.end) for f in inner]
            if inner:
                notes.append(f"{payload.encoding} payload decoded at {payload.start}")
        return self._verdict(findings, text, direction, notes, degraded=degraded)

    def _detect(
        self, text: str, source: Source, direction: Direction, notes: list[str]
    ) -> tuple[list[Finding], bool]:
        policy = self.policy
        categories = self._categories[direction]
        check_attacks = source in _ATTACK_SOURCES
        scanned = content.scan_content(text, categories, check_prompt_attack=check_attacks)
        found = list(scanned.findings)
        if policy.profanity or policy.words:
            found += words.find_words(text, policy.words, policy.profanity)
        if policy.pii_types or policy.regexes:
            found += _pii(text, policy)
        degraded = False
        if any(self._blocks(f, direction) for f in found):
            return found, degraded  # blocked already: the embedding layer has nothing to add
        if self._topics is not None:
            found += self._topics.match(text)
            if self._topics.degraded:
                degraded = True
                notes.append(f"denied topics matched by keywords: {self._topics.reason}")
        if check_attacks and _PROMPT_ATTACK in categories:
            found += self._paraphrased_attacks(text, found, scanned.attack_score, notes)
            degraded = degraded or (self.embeddings and not embedding.available())
        return found, degraded

    def _paraphrased_attacks(
        self, text: str, found: list[Finding], linear: float, notes: list[str]
    ) -> list[Finding]:
        best = max((f.score for f in found if f.type == _PROMPT_ATTACK), default=0.0)
        if best >= UNSURE_ATTACK[1] or not UNSURE_ATTACK[0] <= linear < UNSURE_ATTACK[1]:
            return []  # the cheaper layers are sure either way
        if self._attack_exemplars is None:
            if self.embeddings:
                notes.append(f"paraphrased attacks not checked: {embedding.unavailable_reason()}")
            return []
        return self._attack_exemplars.match(text)

    def _verdict(
        self,
        findings: list[Finding],
        text: str,
        direction: Direction,
        notes: list[str],
        *,
        blocked: bool = False,
        degraded: bool = False,
    ) -> Verdict:
        decided = sorted(
            _dedupe(self._decide(f, direction) for f in findings),
            key=lambda f: (f.start, f.end, f.type),
        )
        kept = tuple(decided)
        if blocked or any(f.action is Action.BLOCKED for f in kept):
            action, out = Action.BLOCKED, self.policy.blocked_message(direction)
        elif any(f.action is Action.ANONYMIZED for f in kept):
            action = Action.ANONYMIZED
            masked = [f for f in kept if f.action is Action.ANONYMIZED]
            out = anonymize(text, masked, mode=self.policy.anonymize_with, key=self.token_key)
        else:
            action, out = Action.NONE, text
        return Verdict(action, kept, out, self.policy.version, degraded, tuple(notes))

    def _blocks(self, finding: Finding, direction: Direction) -> bool:
        decided = self._decide(finding, direction)
        return decided is not None and decided.action is Action.BLOCKED

    def _decide(self, finding: Finding, direction: Direction) -> Finding | None:
        policy = self.policy
        kind = finding.type
        if kind in CONTENT_CATEGORIES:
            if not policy.content_covers(kind, direction, finding.confidence):
                return None
            blocks = policy.content_action(kind, direction)
            return replace(finding, action=Action.BLOCKED if blocks else Action.NONE)
        if finding.confidence < Confidence.LOW:
            return None
        if kind.startswith("TOPIC:"):
            topic = next(t for t in policy.topics if t.name == kind[len("TOPIC:") :])
            return replace(finding, action=_TO_ACTION[topic.action[direction]])
        if kind in ("PROFANITY", "CUSTOM_WORD"):
            return replace(finding, action=_TO_ACTION[policy.word_action[direction]])
        for rule in policy.regexes:
            if rule.name == kind:
                return replace(finding, action=_TO_ACTION[rule.action[direction]])
        return replace(finding, action=_TO_ACTION[policy.pii_action(kind, direction)])


_engines: dict[int, tuple[Policy, Engine]] = {}


def scan(
    text: str | bytes,
    source: Source | str,
    direction: Direction | str,
    policy: Policy | None = None,
) -> Verdict:
    """Scan `text` with `policy` (the default policy when None). The engine built for a policy
    is kept, so repeated scans with one policy object pay for its matchers once."""
    chosen = policy if policy is not None else default_policy()
    cached = _engines.get(id(chosen))
    if cached is None or cached[0] is not chosen:
        cached = _engines[id(chosen)] = (chosen, Engine(chosen))
    return cached[1].scan(text, source, direction)


def _as_text(text: str | bytes) -> tuple[str, list[str]]:
    notes: list[str] = []
    if isinstance(text, bytes):
        decoded = text.decode("utf-8", errors="replace")
        if "\ufffd" in decoded and b"\xef\xbf\xbd" not in text:
            notes.append("invalid UTF-8 replaced with U+FFFD")
        return decoded, notes
    if text.isascii():
        return text, notes
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        notes.append("lone surrogates replaced with U+FFFD")
        text = _SURROGATE.sub("\ufffd", text)  # one for one: offsets stay the same
    return text, notes


def _pii(text: str, policy: Policy) -> list[Finding]:
    """PII findings on the folded text (full-width digits, hidden separators), mapped back,
    in windows so that each call sees a bounded piece."""
    folded = fold(text)
    custom = [(rule.name, rule.pattern) for rule in policy.regexes]
    found: list[Finding] = []
    for offset in windows(folded.text):
        piece = folded.text[offset : offset + WINDOW_CHARS]
        for f in pii.detect_pii(piece, policy.pii_types, custom):
            start, end = folded.span(offset + f.start, offset + f.end)
            found.append(Finding(f.type, start, end, f.score, f.detector))
    return found


def _dedupe(findings: Iterable[Finding | None]) -> list[Finding]:
    """One finding per (type, span): the highest score (windows overlap, layers agree)."""
    best: dict[tuple[str, int, int], Finding] = {}
    for f in findings:
        if f is None:
            continue
        key = (f.type, f.start, f.end)
        if key not in best or f.score > best[key].score:
            best[key] = f
    return list(best.values())


def _exemplars() -> list[str]:
    path = resources.files("bastion.guardrails").joinpath("models/attack_exemplars.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

"""The content filters: HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT and PROMPT_ATTACK.

`detect_content(text, categories, check_prompt_attack=...)` returns the `Finding`s of the
categories asked for.

PROMPT_ATTACK joins two detectors: the pattern detector `prompt_attack.detect` (precise phrasing,
detector "pattern", its confidence as the score) and the `prompt_attack` linear model
(paraphrases and jailbreak templates, detector "linear", its calibrated probability as the score,
the window it scored as the span). The model also scores each passage of a window (whole lines
of at least `PASSAGE_TOKENS` tokens) on its own, reporting from `PASSAGE_FIRING_SCORE`: one
instruction slipped into a page of a document is diluted in the window's score by the page's
own text, not in its passage's.

The other five share one `toxicity` linear model; no labelled data exists per category, so each
category is told by a lexicon the team wrote (`models/content_<category>.txt`) of three kinds:

- terms (insulting, sexual, violent words): a hit names the category of a text the model finds
  toxic, with the score `1 - (1 - toxicity)(1 - TERM_WEIGHT)`;
- strong terms (slurs, explicit threats): fire alone, at least `STRONG_SCORE`;
- patterns (a threat to kill, dehumanising a group, asking how to make a bomb): fire alone, at
  least `PATTERN_SCORE`.

Matching is whole-word and case-insensitive on the folded text; a phrase's words match across
short gaps of spaces, hyphens, dots or asterisks.

A text the model finds toxic with no lexicon hit in any category is reported as INSULTS
(demeaning language is what a toxic comment without a more specific sign usually is) over the
scored window. Spans are the hits' spans, in the caller's text.

Cost: the folding and tokenizing are done once and shared by both models; a lexicon entry is
only tried when its first word (or a pattern's lead word) is among the text's tokens, and then
only where that word occurs (a one-word term is found by `str.find`). Long texts
are scored in overlapping windows (`linear.windows`), so the work stays linear in the length.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bastion.guardrails.linear import MODEL_DIR, WINDOW_CHARS, LinearModel, split_tokens, windows
from bastion.guardrails.normalize import Folded, fold
from bastion.guardrails.prompt_attack import detect as detect_patterns
from bastion.guardrails.types import Finding

__all__ = [
    "LEXICON_CATEGORIES",
    "PATTERN_SCORE",
    "STRONG_SCORE",
    "TERM_WEIGHT",
    "ContentScan",
    "detect_content",
    "scan_content",
    "toxicity",
]

LEXICON_CATEGORIES = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT")
PROMPT_ATTACK = "PROMPT_ATTACK"
FIRING_SCORE = 0.5  # a model's probability from which it reports (the LOW confidence level)
PASSAGE_TOKENS = 12  # a passage scored on its own: whole lines holding at least this many tokens
# A passage is short, and a short text's score is noisier: it reports from MEDIUM confidence.
PASSAGE_FIRING_SCORE = 0.7
TERM_WEIGHT = 0.3
STRONG_SCORE = 0.8
PATTERN_SCORE = 0.9
_GAP = r"[\s\-_*.]{1,3}"  # between the words of a lexicon phrase
_TOKEN_OR_BREAK = re.compile(r"\w+|[^\w\s]+|\n")  # linear's tokens, and the line breaks


@dataclass(frozen=True, slots=True)
class _Entry:
    category: str
    kind: str  # "terms", "strong" or "patterns"
    expression: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class _Window:
    start: int  # offsets into the folded text
    end: int
    tokens: list[str]
    # Runs of whole lines of at least PASSAGE_TOKENS tokens: the lines [first, last) of the
    # window and the slice of `tokens` they hold. One instruction slipped into a page is diluted
    # in the window's score by the page's own text; scored on its own passage, it is not.
    passages: list[tuple[int, int, int, int]]


@dataclass(frozen=True, slots=True)
class _Lexicon:
    words: dict[str, tuple[tuple[str, str], ...]]  # one-word term -> (category, kind) pairs
    expressions: dict[str, tuple[_Entry, ...]]  # lead word -> phrases and patterns it starts


@cache
def _lexicon() -> _Lexicon:
    """The lexicon files: one-word terms by word, phrases and patterns by lead word."""
    words: dict[str, list[tuple[str, str]]] = {}
    expressions: dict[str, list[_Entry]] = {}
    for category in LEXICON_CATEGORIES:
        path = MODEL_DIR / f"content_{category.lower()}.txt"
        for kind, leads, expression in _read_lexicon(path):
            if expression is None:
                words.setdefault(leads[0], []).append((category, kind))
                continue
            entry = _Entry(category, kind, re.compile(expression, re.IGNORECASE))
            for lead in leads:
                expressions.setdefault(lead, []).append(entry)
    return _Lexicon(
        {word: tuple(pairs) for word, pairs in words.items()},
        {lead: tuple(entries) for lead, entries in expressions.items()},
    )


def _read_lexicon(path: Path) -> Iterator[tuple[str, list[str], str | None]]:
    """(kind, lead words, expression) for each entry of a lexicon file; a one-word term is
    (kind, [word], None)."""
    kind = "terms"
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            kind = line[1:-1]
        elif kind == "patterns":
            leads, expression = line.split(" :: ", 1)
            yield kind, leads.split("|"), expression
        else:
            words = split_tokens(line)
            if len(words) == 1:
                yield kind, words, None
                continue
            phrase = _GAP.join(re.escape(word) for word in words)
            yield kind, [words[0]], rf"(?<!\w){phrase}(?!\w)"


def _windows(folded: str) -> list[_Window]:
    """The scoring windows of the folded text, tokenized, with their passages: one pass finds
    the tokens and the line breaks (a token never spans one), so the window's tokens are those
    of `split_tokens` and each passage is a slice of them."""
    parts = []
    for start in windows(folded):
        piece = folded[start : start + WINDOW_CHARS]
        marked = _TOKEN_OR_BREAK.findall(piece.lower())
        tokens = [item for item in marked if item != "\n"]
        # The first token of each line: a break's index in `marked`, less the breaks before it.
        line_starts = [0] + [
            i - k for k, i in enumerate(i for i, t in enumerate(marked) if t == "\n")
        ]
        passages: list[tuple[int, int, int, int]] = []  # lines [first, last), token slice
        first_line = first = 0
        ends = [*line_starts[1:], len(tokens)]
        for line, (line_first, end) in enumerate(zip(line_starts, ends, strict=True)):
            closed = _close_line(passages, line, first_line, first, line_first, end,
                                 last=line == len(ends) - 1)  # fmt: skip
            if closed:
                first_line, first = line + 1, end
        parts.append(_Window(start, start + len(piece), tokens, passages))
    return parts


def _close_line(
    passages: list[tuple[int, int, int, int]],
    line: int,
    first_line: int,
    first: int,
    line_first: int,
    end: int,
    *,
    last: bool = False,
) -> bool:
    """At the end of `line`: a line of PASSAGE_TOKENS tokens or more is a passage of its own
    (the short lines before it, if any, one more); short lines gather until they reach that.
    True when a passage was closed."""
    if end - line_first >= PASSAGE_TOKENS:
        if line_first > first:
            passages.append((first_line, line, first, line_first))
        passages.append((line, line + 1, line_first, end))
        return True
    if end - first >= PASSAGE_TOKENS or (last and end > first):
        passages.append((first_line, line + 1, first, end))
        return True
    return False


def _line_span(folded: str, part: _Window, first_line: int, last_line: int) -> tuple[int, int]:
    """The folded-text span of lines [first_line, last_line) of a window."""
    starts = [part.start]
    at = part.start
    while len(starts) <= last_line and (at := folded.find("\n", at, part.end) + 1) > 0:
        starts.append(at)
    end = starts[last_line] - 1 if last_line < len(starts) else part.end
    return starts[first_line], end


def toxicity(text: str) -> float:
    """The toxicity model's probability for `text` (the highest over its windows)."""
    folded = fold(text)
    model = LinearModel.load("toxicity")
    return max(model.score_tokens(w.tokens) for w in _windows(folded.text))


@dataclass(frozen=True, slots=True)
class ContentScan:
    """The findings, and the prompt-attack model's highest window score (also when it is under
    the firing score: the engine's cue to ask the embedding layer; 0.0 when not checked)."""

    findings: list[Finding]
    attack_score: float


def detect_content(
    text: str, categories: Collection[str], *, check_prompt_attack: bool = True
) -> list[Finding]:
    """The content findings of `categories` (see the module docstring) in `text`. The engine
    passes `check_prompt_attack=False` for the system prompt."""
    return scan_content(text, categories, check_prompt_attack=check_prompt_attack).findings


def scan_content(
    text: str, categories: Collection[str], *, check_prompt_attack: bool = True
) -> ContentScan:
    """`detect_content` with the prompt-attack model's score."""
    wanted = set(categories)
    if not text.strip() or not wanted:
        return ContentScan([], 0.0)
    folded = fold(text)
    parts = _windows(folded.text)
    findings: list[Finding] = []
    attack_score = 0.0
    if PROMPT_ATTACK in wanted and check_prompt_attack:
        attacks, attack_score = _prompt_attacks(text, folded, parts)
        findings += attacks
    if wanted & set(LEXICON_CATEGORIES):
        findings += _harmful_content(folded, parts, wanted)
    findings.sort(key=lambda f: (f.start, f.end, f.type))
    return ContentScan(findings, attack_score)


def _prompt_attacks(text: str, folded: Folded, parts: list[_Window]) -> tuple[list[Finding], float]:
    found = [
        Finding(PROMPT_ATTACK, d.start, d.end, d.confidence, "pattern")
        for d in detect_patterns(text)
    ]
    model = LinearModel.load("prompt_attack")
    best = 0.0
    for part in parts:
        # The window, then its passages (when there is more than one: one is the window itself).
        passages = part.passages if len(part.passages) > 1 else []
        slices = [(0, len(part.tokens))] + [(first, last) for _, _, first, last in passages]
        window_score, *passage_scores = model.score_slices(part.tokens, slices)
        best = max(best, window_score, *passage_scores)
        if window_score >= FIRING_SCORE:
            found.append(
                Finding(PROMPT_ATTACK, *folded.span(part.start, part.end), window_score, "linear")
            )
        for (first_line, last_line, _, _), score in zip(passages, passage_scores, strict=True):
            if score >= PASSAGE_FIRING_SCORE:
                start, end = _line_span(folded.text, part, first_line, last_line)
                found.append(Finding(PROMPT_ATTACK, *folded.span(start, end), score, "linear"))
    return found, best


def _harmful_content(folded: Folded, parts: list[_Window], wanted: set[str]) -> list[Finding]:
    model = LinearModel.load("toxicity")
    scores = [model.score_tokens(part.tokens) for part in parts]
    hits = _lexicon_hits(folded.text, {token for part in parts for token in part.tokens})
    found: list[Finding] = []
    covered: dict[str, tuple[int, float]] = {}  # category -> end and score of its last finding
    for category, kind, start, end in hits:
        toxic = max(s for s, p in zip(scores, parts, strict=True) if p.start <= start < p.end)
        score = _hit_score(kind, toxic)
        last_end, last_score = covered.get(category, (-1, 0.0))
        if category not in wanted or score < FIRING_SCORE:
            continue
        if end <= last_end and score <= last_score:
            continue  # inside a finding of its category at least as sure
        covered[category] = (max(end, last_end), score)
        found.append(Finding(category, *folded.span(start, end), score, "lexicon"))
    if "INSULTS" in wanted and not hits:
        for part, score in zip(parts, scores, strict=True):
            if score >= FIRING_SCORE:
                span = folded.span(part.start, part.end)
                found.append(Finding("INSULTS", *span, score, "linear"))
    return found


def _hit_score(kind: str, toxic: float) -> float:
    if kind == "patterns":
        return 1 - (1 - toxic) * (1 - PATTERN_SCORE)
    if kind == "strong":
        return 1 - (1 - toxic) * (1 - STRONG_SCORE)
    if toxic < FIRING_SCORE:
        return 0.0
    return 1 - (1 - toxic) * (1 - TERM_WEIGHT)


def _lexicon_hits(folded: str, present: set[str]) -> list[tuple[str, str, int, int]]:
    """Each lexicon entry's matches in the folded text, one per span and category (the
    strongest kind kept), tried only for the words present: one-word terms by `str.find`,
    phrases and patterns by their expressions, matched where their lead word starts."""
    lexicon = _lexicon()
    lowered = folded.lower()
    if len(lowered) != len(folded):  # a rare letter whose lower case is longer: no offsets
        lowered = ""
    best: dict[tuple[str, int, int], str] = {}
    for word in present & lexicon.words.keys():
        spans = list(_word_spans(folded, lowered, word))
        for category, kind in lexicon.words[word]:
            for start, end in spans:
                _keep(best, (category, start, end), kind)
    for lead in sorted(present & lexicon.expressions.keys()):
        starts = [start for start, _ in _word_spans(folded, lowered, lead)]
        for entry in lexicon.expressions[lead]:
            for start in starts:
                match = entry.expression.match(folded, start)
                if match:
                    _keep(best, (entry.category, *match.span()), entry.kind)
    ordered = sorted(best.items(), key=lambda item: (item[0][1], -item[0][2], item[0][0]))
    return [(category, kind, start, end) for (category, start, end), kind in ordered]


_RANK = {"terms": 0, "strong": 1, "patterns": 2}


def _keep(best: dict[tuple[str, int, int], str], key: tuple[str, int, int], kind: str) -> None:
    if key not in best or _RANK[kind] > _RANK[best[key]]:
        best[key] = kind


def _word_spans(folded: str, lowered: str, word: str) -> Iterator[tuple[int, int]]:
    """The whole-word, case-insensitive occurrences of a lower-case word in `folded`, found in
    its lower-case copy `lowered` (by a slower expression when that is "")."""
    if not lowered:
        yield from (m.span() for m in _word_expression(word).finditer(folded))
        return
    at = lowered.find(word)
    while at != -1:
        end = at + len(word)
        if not (_is_word(lowered, at - 1) or _is_word(lowered, end)):
            yield at, end
        at = lowered.find(word, at + 1)


def _is_word(text: str, index: int) -> bool:
    if not 0 <= index < len(text):
        return False
    char = text[index]
    return char.isalnum() or char == "_"


@cache
def _word_expression(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)

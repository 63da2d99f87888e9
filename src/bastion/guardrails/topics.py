"""Denied topics and paraphrase matching by sentence embeddings.

This module owns the similarity layer above the embedding model: splitting a text into a bounded
number of windows, scoring each window against example sentences, and turning a cosine
similarity into a detector score.

- `TopicMatcher(topics).match(text)` reports a `TOPIC:<name>` finding for every denied topic
  the text is about: a topic is its name, its definition and a few example sentences (from the
  policy), and the text matches when a window of it is close in meaning to the definition or an
  example; a paraphrase sharing no keyword with them matches too.
- `ExemplarMatcher(label, exemplars)` is the same mechanism for any list of example texts (the
  engine gives it paraphrased prompt attacks); `best(text)` gives the closest exemplar and the
  similarity.

Calibration. The score is the best window's maximum cosine similarity to the topic's sentences,
mapped piecewise-linearly by `Calibration`: for topics (`TOPIC_CALIBRATION`) a similarity of
0.20 or less scores 0, 0.35 scores 0.5 (LOW), 0.45 scores 0.7 (MEDIUM), 0.60 scores 0.9 (HIGH)
and 0.80 or more scores 1.0. The knots were set on the tuning sentences of
`tests/guardrails/topic_cases.py` (three topics; on-topic questions score 0.27 to 0.78, the
closest off-topic sentence, market news against investment advice, 0.32) and checked on its
held-out sentences.

Long texts. Windows are the text's sentences (one shorter than `MIN_WINDOW_CHARS` joined to the
next); when there would be more than `max_windows`, consecutive sentences are packed into longer
windows so that there are at most `max_windows`, and each window is embedded up to its first
`window_chars` characters. A text longer than about `max_windows * window_chars` is therefore
only partly embedded (the cheaper layers still read all of it), and the model's work per text is
bounded by about `max_windows * window_chars / 4` tokens. A short text of several sentences is
also embedded as a whole, so a topic spread over two sentences is seen.

Degraded mode. When the embedding model cannot run (`embedding.unavailable_reason()`), the
matchers say so: `degraded` is True and `reason` tells why. `TopicMatcher` then falls back to
keywords (the words of the topic's name, definition and examples, stop-words removed): findings
with detector "keyword" and a score of at most `KEYWORD_MAX_SCORE` (MEDIUM, never HIGH).
(`TopicMatcher(topics, embeddings=False)` matches by keywords by choice, and is not degraded.)
`ExemplarMatcher` has no keyword fallback (its exemplars are phrasings, not vocabulary) and finds
nothing.

Texts are folded first (`normalize.fold`), so invisible characters and look-alike letters do not
change the embedding; spans are offsets into the text given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from bastion.guardrails import embedding
from bastion.guardrails.normalize import Folded, fold
from bastion.guardrails.types import Finding

if TYPE_CHECKING:
    from bastion.guardrails.embedding import Embedder, Matrix

__all__ = [
    "EXEMPLAR_CALIBRATION",
    "KEYWORD_MAX_SCORE",
    "TOPIC_CALIBRATION",
    "Calibration",
    "ExemplarMatch",
    "ExemplarMatcher",
    "Topic",
    "TopicMatcher",
    "windows",
]

MAX_WINDOWS = 24  # windows embedded per text at most
WINDOW_CHARS = 400  # characters of a window embedded (about 100 tokens)
WHOLE_TEXT_CHARS = 512  # a text up to this long is also embedded as a whole
MIN_WINDOW_CHARS = 25  # a shorter sentence is joined to the next
MIN_SCORE = 0.5  # findings below this score (confidence NONE) are not reported
KEYWORD_MAX_SCORE = 0.7


@dataclass(frozen=True, slots=True)
class Calibration:
    """A piecewise-linear map from cosine similarity to a score in [0, 1]: similarities at or
    below `zero` score 0, `low`/`medium`/`high` score 0.5/0.7/0.9, `full` and above score 1."""

    zero: float
    low: float
    medium: float
    high: float
    full: float

    def __call__(self, similarity: float) -> float:
        knots = (
            (self.zero, 0.0),
            (self.low, 0.5),
            (self.medium, 0.7),
            (self.high, 0.9),
            (self.full, 1.0),
        )
        if similarity <= self.zero:
            return 0.0
        for (x0, y0), (x1, y1) in pairwise(knots):
            if similarity <= x1:
                return y0 + (y1 - y0) * (similarity - x0) / (x1 - x0)
        return 1.0


TOPIC_CALIBRATION = Calibration(zero=0.20, low=0.35, medium=0.45, high=0.60, full=0.80)
# A starting point for exemplar lists (reworded prompt attacks score about 0.5 to 0.6 against
# a few exemplars, benign sentences sharing their words about 0.3); tune it on the exemplars used.
EXEMPLAR_CALIBRATION = Calibration(zero=0.30, low=0.45, medium=0.55, high=0.70, full=0.85)


@dataclass(frozen=True, slots=True)
class Topic:
    """A denied topic as a policy defines it."""

    name: str
    definition: str
    examples: tuple[str, ...] = ()

    @property
    def sentences(self) -> tuple[str, ...]:
        return (self.definition, *self.examples)


# --- windows -----------------------------------------------------------------------------------

_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def windows(
    text: str, max_windows: int = MAX_WINDOWS, window_chars: int = WINDOW_CHARS
) -> list[tuple[int, int]]:
    """The spans of `text` that are embedded: sentences (or packs of them), at most
    `max_windows`, plus the whole text when it is short and has several sentences."""
    sentences = [piece for span in _sentences(text) for piece in _cut(text, span, window_chars)]
    if not sentences:
        return []
    spans = _pack(sentences, MIN_WINDOW_CHARS)
    if len(spans) > max_windows:
        spans = _pack(sentences, math.ceil(len(text) / max(max_windows - 1, 1)))
    whole = (sentences[0][0], sentences[-1][1])
    if len(spans) > 1 and whole[1] - whole[0] <= WHOLE_TEXT_CHARS and len(spans) < max_windows:
        spans.append(whole)
    return spans


def _sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        spans.extend(_stripped(text, start, boundary.start()))
        start = boundary.end()
    spans.extend(_stripped(text, start, len(text)))
    return spans


def _stripped(text: str, start: int, end: int) -> list[tuple[int, int]]:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    return [(start + left, start + right)] if right > left else []


def _cut(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """A sentence longer than `size` cut into pieces of at most `size`, at spaces if any."""
    start, end = span
    pieces: list[tuple[int, int]] = []
    while end - start > size:
        space = text.rfind(" ", start + size // 2, start + size)
        stop = space if space > start else start + size
        pieces.append((start, stop))
        start = stop + 1 if space > start else stop
    pieces.append((start, end))
    return pieces


def _pack(spans: list[tuple[int, int]], threshold: int) -> list[tuple[int, int]]:
    """Consecutive spans joined until each reaches `threshold` characters (the last may not)."""
    packed: list[tuple[int, int]] = []
    start: int | None = None
    for first, last in spans:
        start = first if start is None else start
        if last - start >= threshold:
            packed.append((start, last))
            start = None
    if start is not None:
        if packed and spans[-1][1] - start < MIN_WINDOW_CHARS:
            packed[-1] = (packed[-1][0], spans[-1][1])
        else:
            packed.append((start, spans[-1][1]))
    return packed


# --- embedding similarity ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExemplarMatch:
    """The window of a text closest to an exemplar: its span, the similarity and the score."""

    similarity: float
    score: float
    start: int
    end: int
    exemplar: int  # index into the exemplars (for a topic: 0 is the definition)


class _Index:
    """Embedded example sentences, each owned by a group (a topic), and a text's best window per
    group."""

    def __init__(self, embedder: Embedder, groups: Sequence[Sequence[str]]) -> None:
        self._embedder = embedder
        sentences = [sentence for group in groups for sentence in group]
        self._vectors: Matrix = embedder.embed(sentences)
        bounds = [0]
        for group in groups:
            bounds.append(bounds[-1] + len(group))
        self._bounds = bounds

    def best(
        self,
        folded: Folded,
        spans: list[tuple[int, int]],
        calibration: Calibration,
        window_chars: int,
    ) -> list[ExemplarMatch | None]:
        """For each group, the window most similar to one of its sentences (None if no text)."""
        if not spans:
            return [None] * (len(self._bounds) - 1)
        texts = [folded.text[start : min(end, start + window_chars)] for start, end in spans]
        similarities = self._vectors @ self._embedder.embed(texts).T  # (sentences, windows)
        results: list[ExemplarMatch | None] = []
        for low, high in pairwise(self._bounds):
            group = similarities[low:high]
            sentence, window = divmod(int(group.argmax()), group.shape[1])
            value = float(group[sentence, window])
            start, end = folded.span(*spans[window])
            results.append(ExemplarMatch(value, calibration(value), start, end, sentence))
        return results


def _load_embedder(given: Embedder | None) -> tuple[Embedder | None, str | None]:
    """The embedder to use and, when there is none, why."""
    if given is not None:
        return given, None
    try:
        return embedding.get_embedder(), None
    except embedding.EmbeddingUnavailableError as error:
        return None, str(error)


class ExemplarMatcher:
    """How close a text is to any of a list of example texts (e.g. known prompt attacks)."""

    def __init__(
        self,
        label: str,
        exemplars: Sequence[str],
        *,
        calibration: Calibration = EXEMPLAR_CALIBRATION,
        embedder: Embedder | None = None,
        max_windows: int = MAX_WINDOWS,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        self.label = label
        self.exemplars = tuple(exemplars)
        self.calibration = calibration
        self.max_windows = max_windows
        self.window_chars = window_chars
        found, self.reason = _load_embedder(embedder)
        self._index = _Index(found, [self.exemplars]) if found and self.exemplars else None

    @property
    def degraded(self) -> bool:
        """True when the embedding model is unavailable (see `reason`): nothing is found."""
        return self.reason is not None

    def best(self, text: str) -> ExemplarMatch | None:
        """The window of `text` closest to an exemplar, or None (no text, or degraded)."""
        if self._index is None:
            return None
        folded = fold(text)
        spans = windows(folded.text, self.max_windows, self.window_chars)
        return self._index.best(folded, spans, self.calibration, self.window_chars)[0]

    def score(self, text: str) -> float:
        """The calibrated score of the closest window, 0.0 when there is none."""
        match = self.best(text)
        return match.score if match else 0.0

    def match(self, text: str, min_score: float = MIN_SCORE) -> list[Finding]:
        """A finding of type `label` when the closest window scores at least `min_score`."""
        found = self.best(text)
        if found is None or found.score < min_score:
            return []
        return [Finding(self.label, found.start, found.end, found.score, "embedding")]


# --- keyword fallback --------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP_WORD_LIST = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    either else ever every few for from further get gets getting give go going good got had
    has have having he her here hers him his how i if in into is it its itself just know
    like make makes making me might more most much must my myself need no nor not now of off
    on once one only or other our ours out over own please right same say see she should so
    some such take tell than that the their theirs them then there these they thing things
    this those through to too under until up use using very want was way we well were what
    when where which while who whom why will with without would yes you your yours yourself
"""
_STOP_WORDS = frozenset(_STOP_WORD_LIST.split())


def _stem(word: str) -> str:
    word = word.lower().removesuffix("'s").strip("'-")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _keywords(text: str) -> set[str]:
    stems = (_stem(word) for word in _WORD.findall(text))
    return {stem for stem in stems if len(stem) > 2 and stem not in _STOP_WORDS}


class _KeywordTopic:
    """A topic's keywords: name words weigh 2, words of its definition and examples 1."""

    def __init__(self, topic: Topic) -> None:
        self.name_words = _keywords(topic.name)
        self.other_words = _keywords(" ".join(topic.sentences)) - self.name_words

    def score(self, text: str) -> float:
        words = _keywords(text)
        weight = 2 * len(words & self.name_words) + len(words & self.other_words)
        return min(KEYWORD_MAX_SCORE, 0.3 + 0.1 * weight) if weight else 0.0


# --- topics ------------------------------------------------------------------------------------


class TopicMatcher:
    """Finds the denied topics a text is about; see the module docstring for the calibration,
    long texts and the keyword fallback (`degraded`)."""

    def __init__(
        self,
        topics: Sequence[Topic],
        *,
        calibration: Calibration = TOPIC_CALIBRATION,
        embedder: Embedder | None = None,
        embeddings: bool = True,
        max_windows: int = MAX_WINDOWS,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        """`embedder` defaults to the shared one; `embeddings=False` matches by keywords only,
        by choice (not `degraded`)."""
        self.topics = tuple(topics)
        self.calibration = calibration
        self.max_windows = max_windows
        self.window_chars = window_chars
        found, self.reason = _load_embedder(embedder) if embeddings else (None, None)
        groups = [topic.sentences for topic in self.topics]
        self._index = _Index(found, groups) if found and self.topics else None
        self._keywords = [_KeywordTopic(topic) for topic in self.topics]

    @property
    def degraded(self) -> bool:
        """True when the embedding model is unavailable (see `reason`) and keywords are used."""
        return self.reason is not None

    @property
    def detector(self) -> str:
        """The detector of the findings: "embedding", or "keyword" without the model."""
        return "embedding" if self._index is not None else "keyword"

    def match(self, text: str, min_score: float = MIN_SCORE) -> list[Finding]:
        """One `TOPIC:<name>` finding per topic scoring at least `min_score`, at the span of the
        window that scored best."""
        folded = fold(text)
        spans = windows(folded.text, self.max_windows, self.window_chars)
        if self._index is not None:
            best = self._index.best(folded, spans, self.calibration, self.window_chars)
            found = [(m.score, m.start, m.end) if m else None for m in best]
        else:
            found = [self._keyword_best(keywords, folded, spans) for keywords in self._keywords]
        return [
            Finding(f"TOPIC:{topic.name}", start, end, score, self.detector)
            for topic, hit in zip(self.topics, found, strict=True)
            if hit is not None
            for score, start, end in [hit]
            if score >= min_score
        ]

    @staticmethod
    def _keyword_best(
        keywords: _KeywordTopic, folded: Folded, spans: list[tuple[int, int]]
    ) -> tuple[float, int, int] | None:
        scored = [(keywords.score(folded.text[start:end]), start, end) for start, end in spans]
        if not scored:
            return None
        score, start, end = max(scored, key=lambda item: item[0])
        return (score, *folded.span(start, end))

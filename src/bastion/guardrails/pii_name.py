"""Person names for the PII detector: a logistic model over the features of capitalised tokens.

Only capitalised tokens are candidates (a name is written with capitals; the rest of the text
costs one regular-expression scan). A candidate's features are its shape ("Xxxx", "X.",
"Xx'Xxxx"), length, two- and three-letter suffix, the word itself when it is a common word of
the training text, and the same for the words around it (two before, one after), whether those
are capitalised and whether a line break separates them. The weights live in
`models/pii_name.json`, trained by `scripts/train_pii.py` (logistic regression, L2); the
vocabulary of word features holds only words seen outside names in the training text, so the
model learns cues and morphology ("Dr.", "my name is", "-sson", "-ová"), not a list of names.

Adjacent positive tokens, with the particles of names between them ("van", "de"), become one
span whose score is the highest token probability.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = ["NameModel", "candidates", "features", "find_names", "load_model"]

MODEL_PATH = Path(__file__).parent / "models" / "pii_name.json"
_MEMO_LIMIT = 100_000  # memoised tokens and words per model (bounded memory)
_CONTEXT = 40  # characters looked at on each side of a candidate for its neighbours
_PARTICLES = r"(?:van|von|de|der|den|del|della|di|da|du|dos|das|la|le|bin|ibn|al|ten|ter)"
_JOIN = re.compile(rf"[ \t]{{1,3}}(?:{_PARTICLES}[ \t]{{1,3}}){{0,2}}")


@cache
def _uppercase_class() -> str:
    """A character class of the upper- and titlecase letters of the Basic Multilingual Plane."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x41, 0x10000):
        char = chr(code)
        if char.isupper() or char.istitle():
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    parts = (re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)
    return "[" + "".join(parts) + "]"


@cache
def _candidate_pattern() -> re.Pattern[str]:
    upper = _uppercase_class()
    return re.compile(rf"(?<![\w@/.'\u2019-]){upper}(?:[\w'\u2019-]{{0,40}}(?<![-'\u2019])|\.)")


def candidates(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the capitalised tokens of `text`."""
    for match in _candidate_pattern().finditer(text):
        yield match.span()


def _shape(token: str) -> str:
    out: list[str] = []
    for char in token[:12]:
        kind = "X" if char.isupper() else "x" if char.isalpha() else "d" if char.isdigit() else char
        if not out or out[-1] != kind:
            out.append(kind)
    return "".join(out)


def _word(token: str, vocab: frozenset[str]) -> str:
    lowered = token.lower()
    return lowered if lowered in vocab else "~" + _shape(token)


def token_features(token: str, vocab: frozenset[str]) -> list[str]:
    """The features of a candidate token that do not depend on where it is."""
    lowered = token.lower()
    found = [
        "bias",
        "shape=" + _shape(token),
        "len=" + str(min(len(token), 12)),
        "suf2=" + lowered[-2:],
        "suf3=" + lowered[-3:],
        "pre2=" + lowered[:2],
        "ascii=" + str(token.isascii()),
    ]
    if lowered in vocab:
        found.append("w=" + lowered)
    return found


def context_features(text: str, start: int, end: int, word: Callable[[str], str]) -> list[str]:
    """The features of the words around the candidate `text[start:end]`; `word` names a
    neighbouring word (`_word` with the vocabulary)."""
    before = text[max(0, start - _CONTEXT) : start]
    after = text[end : end + _CONTEXT]
    left = before.split()
    right = after.split()
    prev = word(left[-1]) if left else "<s>"
    prev2 = word(left[-2]) if len(left) > 1 else "<s>"
    return [
        "prev=" + prev,
        "prev2=" + prev2,
        "prev12=" + prev2 + "|" + prev,
        "next=" + (word(right[0]) if right else "</s>"),
        "prev_cap=" + str(bool(left) and left[-1][:1].isupper()),
        "next_cap=" + str(bool(right) and right[0][:1].isupper()),
        "nl_before=" + str("\n" in before[len(before.rstrip()) :]),
        "nl_after=" + str("\n" in after[: len(after) - len(after.lstrip())]),
        "glued_next=" + (after[:1] if after[:1] and not after[:1].isspace() else "_"),
    ]


def features(text: str, start: int, end: int, vocab: frozenset[str]) -> list[str]:
    """The feature names of the candidate token `text[start:end]`."""
    return token_features(text[start:end], vocab) + context_features(
        text, start, end, lambda token: _word(token, vocab)
    )


@dataclass(frozen=True, slots=True)
class NameModel:
    """The weights; the token part of a score and the neighbour words are memoised."""

    weights: dict[str, float]
    vocab: frozenset[str]
    threshold: float
    _token_scores: dict[str, float] = field(default_factory=dict)
    _words: dict[str, str] = field(default_factory=dict)

    def _token_score(self, token: str) -> float:
        score = self._token_scores.get(token)
        if score is None:
            score = sum(self.weights.get(name, 0.0) for name in token_features(token, self.vocab))
            if len(self._token_scores) < _MEMO_LIMIT:
                self._token_scores[token] = score
        return score

    def _word(self, token: str) -> str:
        name = self._words.get(token)
        if name is None:
            name = _word(token, self.vocab)
            if len(self._words) < _MEMO_LIMIT:
                self._words[token] = name
        return name

    def probability(self, text: str, start: int, end: int) -> float:
        weights = self.weights
        total = self._token_score(text[start:end]) + sum(
            weights.get(name, 0.0) for name in context_features(text, start, end, self._word)
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))


@cache
def load_model(path: Path = MODEL_PATH) -> NameModel:
    """The trained model (cached)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return NameModel(
        weights={str(k): float(v) for k, v in data["weights"].items()},
        vocab=frozenset(sys.intern(str(word)) for word in data["vocab"]),
        threshold=float(data["threshold"]),
    )


def find_names(text: str, model: NameModel | None = None) -> list[tuple[int, int, float]]:
    """(start, end, score) of the person names in `text`, adjacent name tokens joined."""
    model = model or load_model()
    spans: list[tuple[int, int, float]] = []
    for start, end in candidates(text):
        probability = model.probability(text, start, end)
        if probability < model.threshold:
            continue
        if spans and _JOIN.fullmatch(text, spans[-1][1], start):
            first, _, best = spans[-1]
            spans[-1] = (first, end, max(best, probability))
        else:
            spans.append((start, end, probability))
    return spans

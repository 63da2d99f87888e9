"""Cascade layer 2: small logistic-regression models over character n-grams, shipped as files.

A model (`models/<name>.json.gz`, written by `scripts/train_classifiers.py`) scores a text in
[0, 1]. The text is folded (`normalize.fold`) and lower-cased, then cut into tokens (runs of
word characters, runs of punctuation). Its features are, per token, the character n-grams of the
token padded with one space each side (`" ignore "` gives `" i"`, `"ig"`, ..., `"ore "`) and the
token itself, and the pairs of adjacent tokens. The feature counts are divided by the square root
of the token count; the raw score is the bias plus the weighted sum, and a Platt scaling fitted
on data the weights were not trained on maps it to a probability.

The model keeps an explicit vocabulary (the features that kept a weight when the model was
pruned) rather than hashing features into buckets: a dictionary look-up of the n-gram is
deterministic in every process and cheaper in Python than computing a stable hash of it.

How it stays fast: a token's weight (the sum over its n-grams and itself) is computed once per
process and cached, so a text costs one tokenizing expression, one cached look-up per token and
one look-up per token pair, all run by C loops (`map` over dictionaries). Tokens longer than
`max_token_chars` contribute their first characters only. `windows()` cuts a long text into
overlapping windows of a few KB, each scored on its own, so the work stays linear and a short
attack inside a long document is not averaged away.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, islice, repeat
from pathlib import Path
from typing import Any

from bastion.guardrails.normalize import fold

__all__ = [
    "FORMAT_VERSION",
    "MODEL_DIR",
    "FeatureSettings",
    "LinearModel",
    "split_tokens",
    "token_features",
    "tokens",
    "windows",
]

MODEL_DIR = Path(__file__).resolve().parent / "models"
FORMAT_VERSION = 1
WINDOW_CHARS = 4096  # a long text is scored in windows of this size ...
WINDOW_OVERLAP = 256  # ... overlapping by this much, so a phrase on a border is seen whole
_CACHE_LIMIT = 100_000  # cached token weights per model; the cache is emptied when full
_TOKEN = re.compile(r"\w+|[^\w\s]+")


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """How a text becomes features; stored in the model file with the weights."""

    ngram_min: int = 2
    ngram_max: int = 5
    max_token_chars: int = 24

    def to_dict(self) -> dict[str, int]:
        return {
            "ngram_min": self.ngram_min,
            "ngram_max": self.ngram_max,
            "max_token_chars": self.max_token_chars,
        }


def tokens(text: str) -> list[str]:
    """The tokens of the folded, lower-cased text: runs of word characters or punctuation."""
    return split_tokens(fold(text).text)


def split_tokens(folded: str) -> list[str]:
    """The tokens of text already folded, lower-cased here."""
    return _TOKEN.findall(folded.lower())


def token_features(token: str, settings: FeatureSettings) -> list[str]:
    """The character n-grams of one token (padded with a space each side), with repeats."""
    padded = f" {token[: settings.max_token_chars]} "
    return [
        padded[i : i + n]
        for n in range(settings.ngram_min, settings.ngram_max + 1)
        for i in range(len(padded) - n + 1)
    ]


def windows(text: str, size: int = WINDOW_CHARS, overlap: int = WINDOW_OVERLAP) -> Iterator[int]:
    """The start offsets of the windows `text[start : start + size]` that cover `text`."""
    step = max(size - overlap, 1)
    last = max(len(text) - size, 0)
    start = 0
    while True:
        yield min(start, last)
        if start >= last:
            return
        start += step


class _TokenWeights(dict[str, float]):
    """Token -> the summed weight of its n-grams and of the token itself, made on first use."""

    def __init__(self, model: LinearModel) -> None:
        super().__init__()
        self._ngrams = model.ngrams
        self._words = model.words
        self._settings = model.settings

    def __missing__(self, token: str) -> float:
        weight = self._words.get(token, 0.0) + sum(
            map(self._ngrams.get, token_features(token, self._settings), repeat(0.0))
        )
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[token] = weight
        return weight


class LinearModel:
    """A shipped logistic-regression model: `score(text)` is the probability of the positive
    class (a prompt attack, a toxic text)."""

    def __init__(
        self,
        name: str,
        *,
        bias: float,
        ngrams: Mapping[str, float],
        words: Mapping[str, float],
        bigrams: Mapping[str, float],
        calibration: tuple[float, float] = (1.0, 0.0),
        settings: FeatureSettings = FeatureSettings(),
        version: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.bias = bias
        self.ngrams = dict(ngrams)
        self.words = dict(words)
        self.bigrams: dict[tuple[str, ...], float] = {
            tuple(pair.split(" ", 1)): w for pair, w in bigrams.items()
        }
        self.calibration = calibration
        self.settings = settings
        self.version = version
        self.info = dict(info or {})
        self._token_weights = _TokenWeights(self)

    @classmethod
    def load(cls, name: str, directory: Path = MODEL_DIR) -> LinearModel:
        """The model `<directory>/<name>.json.gz` (cached per name for the shipped models)."""
        if directory == MODEL_DIR:
            return _shipped(name)
        return cls.from_dict(_read(directory / f"{name}.json.gz"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {data.get('format')!r}")
        slope, intercept = data["calibration"]
        return cls(
            data["name"],
            bias=float(data["bias"]),
            ngrams=data["ngrams"],
            words=data["words"],
            bigrams=data["bigrams"],
            calibration=(float(slope), float(intercept)),
            settings=FeatureSettings(**data["features"]),
            version=str(data["version"]),
            info=data.get("info", {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "features": self.settings.to_dict(),
            "bias": self.bias,
            "calibration": list(self.calibration),
            "info": self.info,
            "ngrams": self.ngrams,
            "words": self.words,
            "bigrams": {" ".join(pair): w for pair, w in self.bigrams.items()},
        }

    def save(self, path: Path) -> None:
        """Write the model as compact, reproducible gzipped JSON."""
        raw = json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()
        with path.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
            gz.write(raw)

    def raw_score(self, token_list: list[str]) -> float:
        """The uncalibrated score (log-odds) of a tokenized text."""
        if not token_list:
            return self.bias
        total = sum(map(self._token_weights.__getitem__, token_list))
        pairs = zip(token_list, islice(token_list, 1, None), strict=False)
        total += sum(map(self.bigrams.get, pairs, repeat(0.0)))
        return self.bias + total / math.sqrt(len(token_list))

    def probability(self, raw: float) -> float:
        slope, intercept = self.calibration
        return _sigmoid(slope * raw + intercept)

    def score_tokens(self, token_list: list[str]) -> float:
        return self.probability(self.raw_score(token_list))

    def score_slices(self, token_list: list[str], slices: list[tuple[int, int]]) -> list[float]:
        """The probabilities of several slices `[a, b)` of one token list (`score_tokens` of each
        slice), from prefix sums of the token and bigram weights: one pass over the tokens
        whatever the number of slices."""
        weights = accumulate(map(self._token_weights.__getitem__, token_list), initial=0.0)
        pairs = zip(token_list, islice(token_list, 1, None), strict=False)
        bigrams = accumulate(map(self.bigrams.get, pairs, repeat(0.0)), initial=0.0)
        token_sums, pair_sums = list(weights), list(bigrams)
        out = []
        for a, b in slices:
            if b <= a:
                out.append(self.probability(self.bias))
                continue
            total = token_sums[b] - token_sums[a] + pair_sums[b - 1] - pair_sums[a]
            out.append(self.probability(self.bias + total / math.sqrt(b - a)))
        return out

    def score(self, text: str) -> float:
        """The probability that `text` (best a window of a few KB) is of the positive class."""
        return self.score_tokens(tokens(text))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _read(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@cache
def _shipped(name: str) -> LinearModel:
    return LinearModel.from_dict(_read(MODEL_DIR / f"{name}.json.gz"))

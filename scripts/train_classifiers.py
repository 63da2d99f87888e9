"""Train the guardrails' linear models and write them to `src/bastion/guardrails/models/`.

    .venv/bin/python scripts/train_classifiers.py [--dataset DIR] [--out DIR] [--seed N]

Two models, each a logistic regression over the features of `bastion.guardrails.linear`
(character 2-5-grams of the folded, lower-cased tokens, the tokens, adjacent token pairs):

- `prompt_attack`: prompt injections and jailbreaks against benign prompts and documents;
- `toxicity`: toxic comments against civil ones (one model for every content category; the
  categories are told apart by the lexicons in `content.py`).

Training data: the texts that `scripts/guardrail_training/generate.py` writes from its own
phrase banks, plus the TRAINING HALF of each evaluation file in `../shared/datasets/guardrails/`.
Every file is split 50/50, stratified (PIGuard by source and label, NotInject by category,
the toxicity comments by label, the GPTFuzzer templates as one stratum), with a seeded shuffle
(`split_half`, seed `SPLIT_SEED`); a text that is in any held-out half is dropped from every
training half (48 NotInject prompts are also in PIGuard). The benchmark
(`bench/_guardrails_classifiers.py`) reports on the held-out halves only, through
`held_out_splits`.

How it trains: the features of each text (counts divided by the square root of its token
count), then AdaGrad on the class-balanced log loss with a small L2 penalty, a fixed number of
epochs in a seeded order; the weights are pruned to the strongest `--keep`; a Platt scaling of
the raw score is fitted on 15% of the training pool kept out of the weights' training. Pure
Python, deterministic for a seed, well under a minute for both models.
"""

# ruff: noqa: S311 (seeded shuffles: reproducible splits and training, nothing secret)
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from guardrail_training import generate  # noqa: E402

from bastion.guardrails.linear import (  # noqa: E402
    MODEL_DIR,
    WINDOW_CHARS,
    FeatureSettings,
    LinearModel,
    token_features,
    tokens,
)

DEFAULT_DATASET = ROOT / ".." / "shared" / "datasets" / "guardrails"
SPLIT_SEED = 1729  # the evaluation files' 50/50 split; changing it changes the held-out halves
TRAIN_SEED = 7
REAL_WEIGHT = 3.0  # an evaluation file's training text counts this many generated ones
T = TypeVar("T")

Example = tuple[str, int, float]  # text, label (1 = positive class), sample weight


# --- evaluation files and their split ----------------------------------------------------------
def split_half(
    items: Sequence[T], stratum: Callable[[T], Hashable], seed: int
) -> tuple[list[T], list[T]]:
    """(training half, held-out half): each stratum shuffled with `seed`, its first half (the
    smaller half when odd) for training."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(stratum(item), []).append(item)
    train: list[T] = []
    held: list[T] = []
    for key in sorted(groups, key=repr):
        group = list(groups[key])
        random.Random(f"{seed}:{key!r}").shuffle(group)
        cut = len(group) // 2
        train += group[:cut]
        held += group[cut:]
    return train, held


@dataclass
class Splits:
    """The evaluation files, each as (training half, held-out half) of (text, label) pairs."""

    piguard: tuple[list[tuple[str, int]], list[tuple[str, int]]]
    gptfuzzer: tuple[list[tuple[str, int]], list[tuple[str, int]]]
    notinject: tuple[list[tuple[str, int]], list[tuple[str, int]]]
    toxicity: tuple[list[tuple[str, int]], list[tuple[str, int]]]
    dropped: int = 0  # training texts dropped because a held-out half has them
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)


def _pairs(
    rows: list[dict[str, Any]], text: str, label: Callable[[dict[str, Any]], int]
) -> list[tuple[str, int]]:
    return [(row[text], label(row)) for row in rows]


def held_out_splits(dataset: Path, seed: int = SPLIT_SEED) -> Splits:
    """Split every evaluation file (see the module docstring)."""
    piguard = json.loads((dataset / "injection_piguard_valid.json").read_text())
    notinject = json.loads((dataset / "benign_notinject.json").read_text())
    with (dataset / "jailbreak_gptfuzzer_templates.csv").open(newline="") as f:
        fuzzer = list(csv.DictReader(f))
    with (dataset / "toxicity_surge_en.csv").open(newline="") as f:
        comments = list(csv.DictReader(f))
    raw = {
        "piguard": split_half(piguard, lambda r: (r["source"], r["label"]), seed),
        "gptfuzzer": split_half(fuzzer, lambda r: "all", seed),
        "notinject": split_half(notinject, lambda r: r["category"], seed),
        "toxicity": split_half(comments, lambda r: r["is_toxic"], seed),
    }
    labels: dict[str, tuple[str, Callable[[dict[str, Any]], int]]] = {
        "piguard": ("prompt", lambda r: int(r["label"])),
        "gptfuzzer": ("text", lambda r: 1),
        "notinject": ("prompt", lambda r: 0),
        "toxicity": ("text", lambda r: int(r["is_toxic"] == "Toxic")),
    }
    pairs = {
        name: (_pairs(train, *labels[name]), _pairs(held, *labels[name]))
        for name, (train, held) in raw.items()
    }
    held_texts = {text for _, held in pairs.values() for text, _ in held}
    dropped = 0
    for name, (train, held) in pairs.items():
        kept = [pair for pair in train if pair[0] not in held_texts]
        dropped += len(train) - len(kept)
        pairs[name] = (kept, held)
    sizes = {name: (len(train), len(held)) for name, (train, held) in pairs.items()}
    return Splits(**pairs, dropped=dropped, sizes=sizes)


# --- features and training ---------------------------------------------------------------------
def featurize(text: str, settings: FeatureSettings) -> dict[str, float]:
    """The feature vector the runtime scores: namespaced keys ("n" n-gram, "w" token, "b" token
    pair) with counts divided by the square root of the token count."""
    toks = tokens(text[:WINDOW_CHARS])
    counts: Counter[str] = Counter()
    for tok in toks:
        counts["w" + tok] += 1
        counts.update("n" + gram for gram in token_features(tok, settings))
    counts.update(f"b{a} {b}" for a, b in pairwise(toks))
    scale = 1.0 / math.sqrt(len(toks)) if toks else 0.0
    return {key: value * scale for key, value in counts.items()}


@dataclass
class Trained:
    bias: float
    weights: dict[str, float]


def train_logistic(
    vectors: list[dict[str, float]],
    labels: list[int],
    sample_weights: list[float],
    *,
    seed: int,
    epochs: int = 6,
    rate: float = 0.3,
    l2: float = 1e-5,
) -> Trained:
    """Logistic regression by AdaGrad, class-balanced, examples in a seeded order per epoch."""
    index: dict[str, int] = {}
    rows = [
        [(index.setdefault(k, len(index)), v) for k, v in sorted(vec.items())] for vec in vectors
    ]
    positives = sum(w for w, y in zip(sample_weights, labels, strict=True) if y == 1)
    negatives = sum(w for w, y in zip(sample_weights, labels, strict=True) if y == 0)
    balance = {1: 0.5 / max(positives, 1e-9), 0: 0.5 / max(negatives, 1e-9)}
    scale = len(labels)
    weights = [0.0] * len(index)
    squares = [1e-8] * len(index)
    bias, bias_square = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            row = rows[i]
            z = bias + sum(weights[j] * v for j, v in row)
            error = (_sigmoid(z) - labels[i]) * sample_weights[i] * balance[labels[i]] * scale
            for j, v in row:
                grad = error * v + l2 * weights[j]
                squares[j] += grad * grad
                weights[j] -= rate * grad / math.sqrt(squares[j])
            bias_square += error * error
            bias -= rate * error / math.sqrt(bias_square)
    names = list(index)
    return Trained(bias, {names[j]: w for j, w in enumerate(weights)})


def platt(raws: list[float], labels: list[int], steps: int = 100) -> tuple[float, float]:
    """Slope and intercept of the sigmoid that best maps raw scores to labels: damped Newton
    steps with a backtracking line search on the log loss of Platt's smoothed targets."""
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    targets = [(n_pos + 1) / (n_pos + 2) if y else 1 / (n_neg + 2) for y in labels]

    def loss(a: float, b: float) -> float:
        total = 0.0
        for x, t in zip(raws, targets, strict=True):
            z = a * x + b
            total += max(z, 0.0) - t * z + math.log1p(math.exp(-abs(z)))
        return total

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(steps):
        ga = gb = haa = hab = hbb = 0.0
        for x, t in zip(raws, targets, strict=True):
            p = _sigmoid(a * x + b)
            h = p * (1 - p) + 1e-6
            ga, gb = ga + (p - t) * x, gb + (p - t)
            haa, hab, hbb = haa + h * x * x, hab + h * x, hbb + h
        det = haa * hbb - hab * hab
        step_a = (hbb * ga - hab * gb) / det
        step_b = (haa * gb - hab * ga) / det
        size = 1.0
        while size > 1e-6 and loss(a - size * step_a, b - size * step_b) > current:
            size /= 2
        if size <= 1e-6:
            break
        a, b = a - size * step_a, b - size * step_b
        previous, current = current, loss(a, b)
        if previous - current < 1e-9:
            break
    return a, b


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def build_model(
    name: str,
    examples: list[Example],
    *,
    seed: int,
    keep: int,
    settings: FeatureSettings = FeatureSettings(),
    info: dict[str, Any] | None = None,
) -> LinearModel:
    """Train on 85% of `examples` (stratified), calibrate on the rest, prune to `keep` weights."""
    fit, calibrate = _calibration_split(examples, seed)
    vectors = [featurize(text, settings) for text, _, _ in fit]
    trained = train_logistic(vectors, [y for _, y, _ in fit], [w for _, _, w in fit], seed=seed)
    strongest = sorted(trained.weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:keep]
    spaces: dict[str, dict[str, float]] = {"n": {}, "w": {}, "b": {}}
    for key, weight in sorted(strongest):
        if round(weight, 4):
            spaces[key[0]][key[1:]] = round(weight, 4)
    model = LinearModel(
        name,
        bias=round(trained.bias, 4),
        ngrams=spaces["n"],
        words=spaces["w"],
        bigrams=spaces["b"],
        settings=settings,
        info=info,
    )
    raws = [model.raw_score(tokens(text[:WINDOW_CHARS])) for text, _, _ in calibrate]
    slope, intercept = platt(raws, [y for _, y, _ in calibrate])
    model.calibration = (round(slope, 4), round(intercept, 4))
    digest = hashlib.sha256(json.dumps(model.to_dict(), sort_keys=True).encode()).hexdigest()
    model.version = f"{name}-1.{digest[:12]}"
    return model


def _calibration_split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    fit: list[Example] = []
    calibrate: list[Example] = []
    for label in (0, 1):
        group = [e for e in examples if e[1] == label]
        random.Random(f"{seed}:calibration:{label}").shuffle(group)
        cut = max(1, round(len(group) * 0.15))
        calibrate += group[:cut]
        fit += group[cut:]
    return fit, calibrate


# --- the two models' training pools ------------------------------------------------------------
def _real(pairs: list[tuple[str, int]]) -> list[Example]:
    return [(text, label, REAL_WEIGHT) for text, label in pairs]


def _generated(texts: list[str], label: int) -> list[Example]:
    return [(text, label, 1.0) for text in texts]


def prompt_attack_examples(splits: Splits | None, seed: int, n: int) -> list[Example]:
    rng = random.Random(f"{seed}:prompt_attack")
    examples = _generated(generate.attacks(rng, n), 1)
    examples += _generated(generate.benign_prompts(rng, n), 0)
    examples += _generated(generate.civil(rng, n // 5), 0)
    if splits is not None:
        examples += _real(splits.piguard[0] + splits.gptfuzzer[0] + splits.notinject[0])
        examples += [(text, 0, 1.0) for text, _ in splits.toxicity[0]]  # comments: no attacks
    return examples


def toxicity_examples(splits: Splits | None, seed: int, n: int) -> list[Example]:
    rng = random.Random(f"{seed}:toxicity")
    examples = _generated(generate.toxic(rng, n), 1)
    examples += _generated(generate.civil(rng, n), 0)
    examples += _generated(generate.benign_prompts(rng, n // 2), 0)
    if splits is not None:
        examples += _real(splits.toxicity[0])
    return examples


def _summary(examples: list[Example]) -> dict[str, int]:
    return {
        "positive": sum(y for _, y, _ in examples),
        "negative": sum(1 - y for _, y, _ in examples),
    }


def train_all(
    dataset: Path | None, out: Path, *, seed: int = TRAIN_SEED, n: int = 1200, keep: int = 40_000
) -> dict[str, LinearModel]:
    """Train and save both models; `dataset=None` trains on generated texts only."""
    splits = held_out_splits(dataset) if dataset is not None else None
    note = (
        f"training halves of the evaluation files (split seed {SPLIT_SEED}) and generated texts"
        if splits
        else "generated texts only"
    )
    pools = {
        "prompt_attack": prompt_attack_examples(splits, seed, n),
        "toxicity": toxicity_examples(splits, seed, n),
    }
    models = {}
    for name, examples in pools.items():
        info = {"data": note, "examples": _summary(examples), "seed": seed}
        model = build_model(name, examples, seed=seed, keep=keep, info=info)
        model.save(out / f"{name}.json.gz")
        models[name] = model
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--no-dataset", action="store_true", help="generated texts only")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--generated", type=int, default=1200, help="generated texts per class")
    parser.add_argument("--keep", type=int, default=40_000, help="weights kept per model")
    args = parser.parse_args(argv)
    dataset = None if args.no_dataset else args.dataset
    args.out.mkdir(parents=True, exist_ok=True)
    models = train_all(dataset, args.out, seed=args.seed, n=args.generated, keep=args.keep)
    for name, model in models.items():
        size = (args.out / f"{name}.json.gz").stat().st_size
        print(
            f"{name}: {model.version}, {len(model.ngrams) + len(model.words) + len(model.bigrams)}"
            f" weights, {size / 1024:.0f} KiB, {model.info['examples']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

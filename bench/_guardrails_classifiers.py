"""Accuracy and speed of the guardrails' linear models and content filters.

    .venv/bin/python bench/_guardrails_classifiers.py [--dataset DIR] [--resamples N]

A library module of the guardrails benchmark (`attack_report`, `toxicity_report`,
`speed_report`, `print_tables`), also runnable alone.

HELD-OUT FIGURES ONLY. `scripts/train_classifiers.py` trains on generated texts and on the
training half of each evaluation file; the same seeded, stratified 50/50 split
(`held_out_splits`) gives the halves scored here: PIGuard valid (72 of 144 prompts), the
GPTFuzzer templates (39 of 77), NotInject (170 of 339), the toxicity comments (501 of 1,000).
The phrase banks of the generator were written by people who had read the evaluation files, so
the held-out figures may still be somewhat optimistic for text unlike these sets.

A prompt counts as an attack when `detect_content(..., {"PROMPT_ATTACK"})` reports a finding
of score >= 0.5 (LOW confidence and up, what a HIGH-strength filter blocks); the rows "pattern"
and "linear" count one detector alone. There is no labelled data per content category: the
toxicity rows score "any category fired" against the comments' `is_toxic` label, and the
per-category rows only count how often each category fires on toxic and on civil comments.

Intervals: 95% percentile bootstrap over items (`--resamples`, default 1000, seeded).
Speed: milliseconds per KB of text, over documents of about 2 KB made by joining held-out
texts, after a first pass that fills the per-process token caches (its p50 is the "cold" row).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from train_classifiers import SPLIT_SEED, Splits, held_out_splits  # noqa: E402

from bastion.guardrails.content import LEXICON_CATEGORIES, detect_content, toxicity  # noqa: E402

DEFAULT_DATASET = ROOT / ".." / "shared" / "datasets" / "guardrails"
FIRING = 0.5
RESAMPLES = 1000
BOOTSTRAP_SEED = 20250101
Item = tuple[bool, bool]  # (predicted, actual)
Metric = Callable[[Sequence[Item]], float]


# --- metrics and intervals ---------------------------------------------------------------------
def _rate(items: Sequence[Item], actual: bool) -> float:
    """Share of the items whose actual class is `actual` that are predicted positive."""
    chosen = [p for p, a in items if a == actual]
    return sum(chosen) / len(chosen) if chosen else float("nan")


def detection_rate(items: Sequence[Item]) -> float:
    return _rate(items, True)


def false_positive_rate(items: Sequence[Item]) -> float:
    return _rate(items, False)


def balanced_accuracy(items: Sequence[Item]) -> float:
    return (_rate(items, True) + 1 - _rate(items, False)) / 2


def precision(items: Sequence[Item]) -> float:
    flagged = [a for p, a in items if p]
    return sum(flagged) / len(flagged) if flagged else float("nan")


def f1(items: Sequence[Item]) -> float:
    p, r = precision(items), detection_rate(items)
    return 2 * p * r / (p + r) if p + r else 0.0


def bootstrap(
    items: Sequence[Item], metric: Metric, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float]:
    """The metric and its 95% percentile interval over `resamples` resamplings of the items."""
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        value = metric([items[rng.randrange(len(items))] for _ in items])
        if value == value:  # a resample without one of the classes has no value
            values.append(value)
    values.sort()
    low = values[int(0.025 * (len(values) - 1))]
    high = values[int(0.975 * (len(values) - 1))]
    return metric(items), low, high


def _row(
    name: str, metric_name: str, items: Sequence[Item], metric: Metric, **extra: Any
) -> dict[str, Any]:
    value, low, high = bootstrap(items, metric, extra.pop("resamples", RESAMPLES))
    return {
        "set": name,
        "metric": metric_name,
        "value": value,
        "low": low,
        "high": high,
        "n": len(items),
        **extra,
    }


# --- prompt attacks ----------------------------------------------------------------------------
def _attack_detectors(text: str) -> dict[str, bool]:
    findings = [
        f
        for f in detect_content(text, {"PROMPT_ATTACK"}, check_prompt_attack=True)
        if f.score >= FIRING
    ]
    return {
        "pattern + linear": bool(findings),
        "pattern": any(f.detector == "pattern" for f in findings),
        "linear": any(f.detector == "linear" for f in findings),
    }


def attack_report(
    dataset_dir: Path = DEFAULT_DATASET, resamples: int = RESAMPLES, splits: Splits | None = None
) -> list[dict[str, Any]]:
    """Rows: balanced accuracy on held-out PIGuard, detection on held-out GPTFuzzer templates,
    false positives on held-out NotInject, for the combination and each detector alone."""
    splits = splits or held_out_splits(dataset_dir)
    sets: list[tuple[str, list[tuple[str, int]], str, Metric]] = [
        ("PIGuard valid, held-out half", splits.piguard[1], "balanced accuracy", balanced_accuracy),
        (
            "GPTFuzzer templates, held-out half",
            splits.gptfuzzer[1],
            "detection rate",
            detection_rate,
        ),
        (
            "NotInject, held-out half",
            splits.notinject[1],
            "false-positive rate",
            false_positive_rate,
        ),
    ]
    rows = []
    for name, pairs, metric_name, metric in sets:
        verdicts = [(_attack_detectors(text), bool(label)) for text, label in pairs]
        for detector in ("pattern + linear", "pattern", "linear"):
            items = [(v[detector], actual) for v, actual in verdicts]
            rows.append(
                _row(name, metric_name, items, metric, detector=detector, resamples=resamples)
            )
    return rows


# --- toxicity ----------------------------------------------------------------------------------
def toxicity_report(
    dataset_dir: Path = DEFAULT_DATASET, resamples: int = RESAMPLES, splits: Splits | None = None
) -> list[dict[str, Any]]:
    """Rows: precision, recall and F1 of "a content category fired" and of the toxicity model's
    own finding (INSULTS, detector "linear", when no lexicon names a category) against the
    held-out comments' label; then how often each category fires on toxic and civil comments."""
    splits = splits or held_out_splits(dataset_dir)
    pairs = splits.toxicity[1]
    results = [
        (
            [
                f
                for f in detect_content(text, LEXICON_CATEGORIES, check_prompt_attack=False)
                if f.score >= FIRING
            ],
            bool(label),
        )
        for text, label in pairs
    ]
    name = "toxicity comments, held-out half"
    rows = []
    outcomes = {
        "any category": [(bool(found), actual) for found, actual in results],
        "toxicity model alone": [(toxicity(text) >= FIRING, bool(y)) for text, y in pairs],
    }
    for detector, items in outcomes.items():
        for metric_name, metric in (
            ("precision", precision),
            ("recall", detection_rate),
            ("F1", f1),
        ):
            rows.append(
                _row(name, metric_name, items, metric, detector=detector, resamples=resamples)
            )
    toxic = sum(actual for _, actual in results)
    for category in LEXICON_CATEGORIES:
        fired = [(any(f.type == category for f in found), actual) for found, actual in results]
        rows.append(
            {
                "set": name,
                "metric": "fires on toxic / civil (no per-category labels)",
                "detector": category,
                "value": sum(p and a for p, a in fired) / toxic,
                "civil": sum(p and not a for p, a in fired) / (len(fired) - toxic),
                "n": len(fired),
            }
        )
    return rows


# --- speed -------------------------------------------------------------------------------------
def documents(splits: Splits, size: int = 2048) -> list[str]:
    texts = [
        t
        for part in (splits.piguard, splits.notinject, splits.toxicity, splits.gptfuzzer)
        for t, _ in part[1]
    ]
    random.Random(SPLIT_SEED).shuffle(texts)
    docs, current = [], ""
    for text in texts:
        current = f"{current}\n\n{text}" if current else text
        if len(current) >= size:
            docs.append(current)
            current = ""
    return docs


def speed_report(
    dataset_dir: Path = DEFAULT_DATASET, splits: Splits | None = None
) -> list[dict[str, Any]]:
    """Rows: p50 and p99 milliseconds per KB of `detect_content` for the prompt-attack check,
    the five lexicon categories, and all six."""
    splits = splits or held_out_splits(dataset_dir)
    docs = documents(splits)
    checks: dict[str, tuple[tuple[str, ...], bool]] = {
        "PROMPT_ATTACK (pattern + linear)": (("PROMPT_ATTACK",), True),
        "HATE..MISCONDUCT (toxicity + lexicons)": (LEXICON_CATEGORIES, False),
        "all six": ((*LEXICON_CATEGORIES, "PROMPT_ATTACK"), True),
    }
    rows = []
    for name, (categories, attack) in checks.items():
        per_kb = [[], []]
        for run in (0, 1):  # 0 fills the caches
            for doc in docs:
                start = time.perf_counter()
                detect_content(doc, categories, check_prompt_attack=attack)
                per_kb[run].append(
                    (time.perf_counter() - start) * 1000 / (len(doc.encode()) / 1024)
                )
        warm = sorted(per_kb[1])
        rows.append(
            {
                "check": name,
                "docs": len(docs),
                "kb": statistics.mean(len(d.encode()) / 1024 for d in docs),
                "p50": statistics.median(warm),
                "p99": warm[min(len(warm) - 1, int(0.99 * len(warm)))],
                "cold_p50": statistics.median(per_kb[0]),
            }
        )
    return rows


# --- printing ----------------------------------------------------------------------------------
def print_tables(
    attack: list[dict[str, Any]], toxicity: list[dict[str, Any]], speed: list[dict[str, Any]]
) -> None:
    print(f"Prompt attacks (held-out halves, split seed {SPLIT_SEED}; finding score >= {FIRING})")
    print("| set | n | detector | metric | value | 95% CI |")
    print("|---|---|---|---|---|---|")
    for r in attack:
        value = f"{r['value']:.3f} | {r['low']:.3f}-{r['high']:.3f}"
        print(f"| {r['set']} | {r['n']} | {r['detector']} | {r['metric']} | {value} |")
    print()
    print("Toxicity (held-out half; no labelled data per category)")
    print("| detector | metric | value | 95% CI / civil | n |")
    print("|---|---|---|---|---|")
    for r in toxicity:
        extra = f"{r['low']:.3f}-{r['high']:.3f}" if "low" in r else f"civil {r['civil']:.3f}"
        print(f"| {r['detector']} | {r['metric']} | {r['value']:.3f} | {extra} | {r['n']} |")
    print()
    print("Speed (ms per KB, warm caches; cold = first pass)")
    print("| check | docs | mean KB | p50 | p99 | cold p50 |")
    print("|---|---|---|---|---|---|")
    for r in speed:
        times = f"{r['p50']:.3f} | {r['p99']:.3f} | {r['cold_p50']:.3f}"
        print(f"| {r['check']} | {r['docs']} | {r['kb']:.1f} | {times} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args(argv)
    splits = held_out_splits(args.dataset)
    print_tables(
        attack_report(args.dataset, args.resamples, splits),
        toxicity_report(args.dataset, args.resamples, splits),
        speed_report(args.dataset, splits),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the person-name model of the PII detector (`src/bastion/guardrails/models/pii_name.json`).

    .venv/bin/python scripts/train_pii.py [--dataset DIR] [--epochs N] [--l2 X]

Data: the TRAIN half of `../shared/datasets/guardrails/pii_presidio_synth_v2.json`, split by
`bench/_guardrails_pii.split_documents` (documents shuffled with a fixed seed, first half train);
the other half is what the benchmark reports on. Every capitalised token (`pii_name.candidates`)
is an example, positive when it overlaps a PERSON span. The vocabulary of word features is the
words seen at least `MIN_COUNT` times outside PERSON spans, so names themselves never become
features. Logistic regression with L2, full-batch AdaGrad, deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _guardrails_pii import DEFAULT_DATASET, load_split  # noqa: E402
from bastion.guardrails.pii_name import MODEL_PATH, candidates, features  # noqa: E402

MIN_COUNT = 2
THRESHOLD = 0.5


def _person_spans(doc: dict[str, Any]) -> list[tuple[int, int]]:
    return [
        (s["start_position"], s["end_position"])
        for s in doc["spans"]
        if s["entity_type"] == "PERSON"
    ]


def _vocab(docs: list[dict[str, Any]]) -> frozenset[str]:
    counts: Counter[str] = Counter()
    for doc in docs:
        text = doc["full_text"]
        for start, end in _person_spans(doc):
            text = text[:start] + " " * (end - start) + text[end:]
        counts.update(word.lower() for word in text.split())
    return frozenset(word for word, n in counts.items() if n >= MIN_COUNT)


def _examples(
    docs: list[dict[str, Any]], vocab: frozenset[str]
) -> tuple[list[list[str]], np.ndarray]:
    rows: list[list[str]] = []
    labels: list[float] = []
    for doc in docs:
        text, names = doc["full_text"], _person_spans(doc)
        for start, end in candidates(text):
            rows.append(features(text, start, end, vocab))
            labels.append(float(any(s < end and start < e for s, e in names)))
    return rows, np.array(labels)


def _train(rows: list[list[str]], y: np.ndarray, epochs: int, l2: float) -> dict[str, float]:
    index: dict[str, int] = {}
    cols = [[index.setdefault(name, len(index)) for name in row] for row in rows]
    row_ids = np.repeat(np.arange(len(cols)), [len(c) for c in cols])
    col_ids = np.concatenate([np.array(c) for c in cols])
    weights = np.zeros(len(index))
    squared = np.full(len(index), 1e-8)
    for _ in range(epochs):
        margin = np.bincount(row_ids, weights=weights[col_ids], minlength=len(cols))
        error = 1.0 / (1.0 + np.exp(-margin)) - y
        gradient = np.bincount(col_ids, weights=error[row_ids], minlength=len(index))
        gradient = gradient / len(cols) + l2 * weights
        squared += gradient**2
        weights -= 0.5 * gradient / np.sqrt(squared)
    return {
        name: round(float(weights[i]), 4) for name, i in index.items() if abs(weights[i]) > 1e-3
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--l2", type=float, default=1e-4)
    args = parser.parse_args()
    docs = load_split(args.dataset, "train")
    vocab = _vocab(docs)
    rows, labels = _examples(docs, vocab)
    weights = _train(rows, labels, args.epochs, args.l2)
    model = {"threshold": THRESHOLD, "vocab": sorted(vocab), "weights": weights}
    MODEL_PATH.write_text(json.dumps(model, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    print(
        f"{len(docs)} training documents, {len(rows)} candidate tokens "
        f"({int(labels.sum())} in names), {len(weights)} weights, {len(vocab)} words "
        f"-> {MODEL_PATH.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()

"""PII detection accuracy and speed: `detect_pii` on Presidio's synthetic PII set, next to
Presidio's own pattern recognizers when `presidio_analyzer` is installed.

    .venv/bin/python bench/_guardrails_pii.py [--dataset DIR] [--split test|train] [--json FILE]

The guardrails benchmark imports `pii_report` and `print_pii_table`.

Data: `../shared/datasets/guardrails/pii_presidio_synth_v2.json` (microsoft/presidio-research
synth_dataset_v2, MIT): 1,500 synthetic texts. The documents are split 50/50 by a seeded shuffle
(`split_documents`, seed `SPLIT_SEED`); the name model is trained on the first half
(`scripts/train_pii.py`) and rule changes were checked on that half (`--split train`). The
pattern and address rules were first written from about a dozen random examples per type
drawn from the whole file before the split was fixed, so the held-out figures of the rule-based
types are not fully blind. Figures are for the held-out half (`--split test`, the default).

Type mapping (dataset -> Bedrock): PERSON -> NAME, STREET_ADDRESS -> ADDRESS, CREDIT_CARD ->
CREDIT_DEBIT_CARD_NUMBER, PHONE_NUMBER -> PHONE, EMAIL_ADDRESS -> EMAIL, IBAN_CODE -> IBAN,
US_SSN -> US_SOCIAL_SECURITY_NUMBER, IP_ADDRESS, AGE, US_DRIVER_LICENSE -> DRIVER_ID,
DOMAIN_NAME -> URL. GPE, ORGANIZATION, DATE_TIME, TITLE, NRP and ZIP_CODE are not scored.

Matching is token-level, as in Presidio's evaluator: the text is cut into word tokens (runs of
letters, digits and underscores), each token gets the type of the gold span and of the predicted
finding covering it, and per type a token counts as a true positive (both agree), a false
positive (predicted, gold differs) or a false negative (gold, prediction differs). Tokens of an
unscored gold type (a city labelled GPE, a ZIP_CODE, an organisation) are left out: those parts
are an address or a name in Bedrock's terms as often as not, so a prediction there is neither
rewarded nor punished; the `strict` line counts predictions on them as false positives.
Predicted types the dataset has no label for (SWIFT_CODE, PASSWORD, ...) count as false
positives in the overall micro figure. `exact F1` is the span-level figure: a prediction counts
only when its type, start and end equal a gold span's. 95% intervals: percentile bootstrap over
documents, 1,000 resamples, seed `BOOTSTRAP_SEED`.

Speed: `detect_pii` per document (ms per KB of UTF-8, p50 and p99; the documents are short, so
this includes the per-call overhead), and on the held-out texts joined into 64 KB chunks.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bastion.guardrails.pii import detect_pii  # noqa: E402

DEFAULT_DATASET = ROOT / ".." / "shared" / "datasets" / "guardrails"
DATASET_FILE = "pii_presidio_synth_v2.json"
SPLIT_SEED = 20240611
BOOTSTRAP_SEED = 7
RESAMPLES = 1000

TYPE_MAP = {
    "PERSON": "NAME",
    "STREET_ADDRESS": "ADDRESS",
    "CREDIT_CARD": "CREDIT_DEBIT_CARD_NUMBER",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SOCIAL_SECURITY_NUMBER",
    "IP_ADDRESS": "IP_ADDRESS",
    "AGE": "AGE",
    "US_DRIVER_LICENSE": "DRIVER_ID",
    "DOMAIN_NAME": "URL",
}
SCORED = tuple(dict.fromkeys(TYPE_MAP.values()))
OTHER = "OTHER"  # predicted types the dataset has no label for
IGNORED = "-"  # tokens of an unscored gold type
_TOKEN = re.compile(r"\w+")

# Presidio entity -> Bedrock type, for the comparison run.
PRESIDIO_MAP = {
    **TYPE_MAP,
    "URL": "URL",
    "US_PASSPORT": "US_PASSPORT_NUMBER",
    "UK_NINO": "UK_NATIONAL_INSURANCE_NUMBER",
}

Span = tuple[int, int, str]  # start, end, Bedrock type
Detector = Callable[[str], list[Span]]


def split_documents(
    docs: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test): the documents shuffled with `SPLIT_SEED`, first half train."""
    order = list(range(len(docs)))
    random.Random(SPLIT_SEED).shuffle(order)
    half = len(order) // 2
    return [docs[i] for i in order[:half]], [docs[i] for i in order[half:]]


def load_split(dataset_dir: Path, split: str = "test") -> list[dict[str, Any]]:
    docs = json.loads((dataset_dir / DATASET_FILE).read_text(encoding="utf-8"))
    train, test = split_documents(docs)
    return train if split == "train" else test


def gold_spans(doc: dict[str, Any]) -> list[Span]:
    return [
        (s["start_position"], s["end_position"], TYPE_MAP.get(s["entity_type"], IGNORED))
        for s in doc["spans"]
    ]


def bastion_detector(text: str) -> list[Span]:
    return [(f.start, f.end, f.type) for f in detect_pii(text)]


@dataclass
class Counts:
    """Per-document counts: arrays of shape (documents, types) for tp, fp, fn."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def _label(spans: list[Span], start: int, end: int) -> str | None:
    for s, e, kind in spans:
        if s < end and start < e:
            return kind
    return None


def _type_index(kind: str) -> int:
    return SCORED.index(kind) if kind in SCORED else len(SCORED)


def _count(docs: list[dict[str, Any]], detector: Detector, strict: bool, exact: bool) -> Counts:
    shape = (len(docs), len(SCORED) + 1)
    tp, fp, fn = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for row, doc in enumerate(docs):
        text, gold = doc["full_text"], gold_spans(doc)
        predicted = detector(text)
        if exact:
            _count_spans(gold, predicted, tp[row], fp[row], fn[row])
            continue
        for token in _TOKEN.finditer(text):
            want = _label(gold, *token.span())
            got = _label(predicted, *token.span())
            if want == IGNORED:
                if strict and got is not None:
                    fp[row, _type_index(got)] += 1
                continue
            if want is not None and want == got:
                tp[row, _type_index(want)] += 1
                continue
            if got is not None:
                fp[row, _type_index(got)] += 1
            if want is not None:
                fn[row, _type_index(want)] += 1
    return Counts(tp, fp, fn)


def _count_spans(
    gold: list[Span], predicted: list[Span], tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> None:
    scored = {span for span in gold if span[2] != IGNORED}
    for span in predicted:
        if span in scored:
            tp[_type_index(span[2])] += 1
        elif _label([g for g in gold if g[2] == IGNORED], span[0], span[1]) is None:
            fp[_type_index(span[2])] += 1
    for span in scored - set(predicted):
        fn[_type_index(span[2])] += 1


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _bootstrap_f1(counts: Counts, columns: slice | int) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = counts.tp.shape[0]
    tp = counts.tp[:, columns].reshape(n, -1).sum(axis=1)
    fp = counts.fp[:, columns].reshape(n, -1).sum(axis=1)
    fn = counts.fn[:, columns].reshape(n, -1).sum(axis=1)
    scores = []
    for _ in range(RESAMPLES):
        pick = rng.integers(0, n, n)
        scores.append(_prf(tp[pick].sum(), fp[pick].sum(), fn[pick].sum())[2])
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def _rows_for(system: str, docs: list[dict[str, Any]], detector: Detector) -> list[dict[str, Any]]:
    tokens = _count(docs, detector, strict=False, exact=False)
    strict = _count(docs, detector, strict=True, exact=False)
    spans = _count(docs, detector, strict=False, exact=True)
    rows = []
    columns: list[tuple[str, slice | int]] = [(kind, i) for i, kind in enumerate(SCORED)]
    columns += [(OTHER, len(SCORED)), ("overall (micro)", slice(None))]
    for kind, column in columns:
        tp, fp, fn = (float(a[:, column].sum()) for a in (tokens.tp, tokens.fp, tokens.fn))
        if tp + fp + fn == 0:
            continue
        precision, recall, f1 = _prf(tp, fp, fn)
        low, high = _bootstrap_f1(tokens, column)
        exact = _prf(*(float(a[:, column].sum()) for a in (spans.tp, spans.fp, spans.fn)))[2]
        rows.append(
            {
                "system": system,
                "type": kind,
                "gold_tokens": int(tp + fn),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "f1_ci": (low, high),
                "exact_f1": exact,
            }
        )
    strict_f1 = _prf(*(float(a.sum()) for a in (strict.tp, strict.fp, strict.fn)))[2]
    rows.append({"system": system, "type": "overall (strict)", "f1": strict_f1})
    return rows


def _presidio_detector() -> Detector | str:
    """Presidio's predefined pattern recognizers, run without an NLP model, or why not."""
    try:
        from presidio_analyzer import PatternRecognizer, RecognizerRegistry
    except ImportError:
        return "presidio_analyzer is not installed"
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    recognizers = [r for r in registry.recognizers if isinstance(r, PatternRecognizer)]

    def detect(text: str) -> list[Span]:
        found = []
        for recognizer in recognizers:
            for result in recognizer.analyze(text, recognizer.supported_entities, None) or []:
                kind = PRESIDIO_MAP.get(result.entity_type, OTHER)
                if result.score >= 0.3:
                    found.append((result.start, result.end, kind, result.score))
        return _non_overlapping(found)

    return detect


def _non_overlapping(found: list[tuple[int, int, str, float]]) -> list[Span]:
    kept: list[Span] = []
    for start, end, kind, _ in sorted(found, key=lambda f: (-f[3], f[0] - f[1])):
        if all(end <= s or e <= start for s, e, _ in kept):
            kept.append((start, end, kind))
    return kept


def _speed(texts: list[str]) -> dict[str, Any]:
    per_doc = []
    for text in texts:
        started = time.perf_counter()
        detect_pii(text)
        elapsed = (time.perf_counter() - started) * 1000
        per_doc.append(elapsed / (len(text.encode("utf-8", "surrogatepass")) / 1024))
    chunks = _chunks("\n\n".join(texts), 64 * 1024)
    bulk = []
    for chunk in chunks:
        started = time.perf_counter()
        detect_pii(chunk)
        bulk.append((time.perf_counter() - started) * 1000 / (len(chunk.encode()) / 1024))
    return {
        "system": "bastion",
        "type": "speed (ms/KB)",
        "doc_p50": statistics.median(per_doc),
        "doc_p99": float(np.percentile(per_doc, 99)),
        "bulk_p50": statistics.median(bulk),
        "bulk_p99": float(np.percentile(bulk, 99)),
    }


def _chunks(text: str, size: int) -> Iterable[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def pii_report(dataset_dir: Path = DEFAULT_DATASET, split: str = "test") -> list[dict[str, Any]]:
    """Rows for the PII table: per type and overall, ours and Presidio's patterns, and speed."""
    docs = load_split(dataset_dir, split)
    detect_pii("warm up: card 4111 1111 1111 1111, IBAN GB82WEST12345698765432, John Smith")
    rows = _rows_for("bastion", docs, bastion_detector)
    presidio = _presidio_detector()
    if isinstance(presidio, str):
        rows.append({"system": "presidio-regex", "type": "not run", "note": presidio})
    else:
        rows += _rows_for("presidio-regex", docs, presidio)
    rows.append(_speed([doc["full_text"] for doc in docs]))
    return rows


def print_pii_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'system':<15} {'type':<27} {'gold':>5} {'P':>6} {'R':>6} {'F1':>6}  "
        f"{'95% CI':<13} {'exact F1':>8}"
    )
    for row in rows:
        if "note" in row:
            print(f"{row['system']:<15} {row['note']}")
        elif "doc_p50" in row:
            print(
                f"{row['system']:<15} {row['type']:<27} per document p50 {row['doc_p50']:.3f} "
                f"p99 {row['doc_p99']:.3f}; 64 KB chunks p50 {row['bulk_p50']:.3f} "
                f"p99 {row['bulk_p99']:.3f}"
            )
        elif "precision" not in row:
            print(
                f"{row['system']:<15} {row['type']:<27} {'':>5} {'':>6} {'':>6} {row['f1']:>6.3f}"
            )
        else:
            low, high = row["f1_ci"]
            print(
                f"{row['system']:<15} {row['type']:<27} {row['gold_tokens']:>5} "
                f"{row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f}  "
                f"[{low:.3f}, {high:.3f}] {row['exact_f1']:>8.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = pii_report(args.dataset, args.split)
    print(f"PII detection, {DATASET_FILE}, {args.split} split (token-level, see module doc)")
    print_pii_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

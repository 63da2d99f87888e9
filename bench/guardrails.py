"""Guardrails: accuracy on the shared guardrail sets and the engine's speed, in one run.

    .venv/bin/python bench/guardrails.py [--dataset DIR] [--resamples N]

Tables, each with bootstrap 95% intervals where it measures accuracy:

1. PII (`bench/_guardrails_pii.py`): per-entity token-level precision, recall and F1 on the
   held-out half of `pii_presidio_synth_v2.json`, next to Presidio's regex recognizers where
   `presidio_analyzer` is installed.
2. Prompt attacks and toxicity (`bench/_guardrails_classifiers.py`): balanced accuracy on the
   held-out half of PIGuard, detection on held-out GPTFuzzer templates, false positives on
   held-out NotInject, toxicity precision/recall/F1 on held-out comments.
3. Engine speed: `Engine.scan` for the cheap cascade (the default policy: patterns, validators,
   linear models; no embedding model) and with the embedding layer (the strict policy: denied
   topics, paraphrased attacks). Per text: p50/p99 milliseconds and texts/s over the held-out
   texts of every set as they are (prompts, comments, PII documents; most under 300 bytes, so a
   scan's fixed cost dominates). Per KB: p50/p99 milliseconds per KB over documents of at least
   2 KB made by joining those texts (the classifier bench's documents), where the cost per byte
   shows. Next to both, a baseline measured in the same run on the same texts: one compiled
   regex (an e-mail pattern) over each text, what a single scan costs.

Targets (the issue): PII F1 >= 0.62 overall and >= 0.95 on checksum-validated types;
prompt-attack balanced accuracy >= 0.85, GPTFuzzer detection >= 90%, NotInject false positives
<= 5%; cheap cascade p50 < 1 ms per KB; p50 < 15 ms per text with the embedding layer.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _guardrails_classifiers import (  # noqa: E402
    DEFAULT_DATASET,
    RESAMPLES,
    attack_report,
    documents,
    held_out_splits,
    print_tables,
    speed_report,
    toxicity_report,
)
from _guardrails_pii import load_split, pii_report, print_pii_table  # noqa: E402
from bastion.guardrails import embedding  # noqa: E402
from bastion.guardrails.engine import Engine  # noqa: E402
from bastion.guardrails.policy import default_policy, load_policy  # noqa: E402

STRICT = ROOT / "src" / "bastion" / "guardrails" / "policies" / "strict.yaml"
_BASELINE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _texts(dataset: Path) -> tuple[list[str], list[str]]:
    """The held-out texts as they are, and documents of at least 2 KB joined from them."""
    splits = held_out_splits(dataset)
    texts = [text for name in ("piguard", "gptfuzzer", "notinject", "toxicity")
             for text, _label in getattr(splits, name)[1]]  # fmt: skip
    texts += [doc["full_text"] for doc in load_split(dataset, "test")]
    return [t for t in texts if t.strip()], documents(splits)


def _timed(scan: Callable[[str], object], texts: list[str]) -> dict[str, float]:
    for text in texts[:50]:
        scan(text)  # warm the caches and load the models
    per_text: list[float] = []
    per_kb: list[float] = []
    started = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        scan(text)
        elapsed = (time.perf_counter() - t) * 1000
        per_text.append(elapsed)
        per_kb.append(elapsed / (len(text.encode()) / 1024))
    total = time.perf_counter() - started
    return {
        "kb_p50": statistics.median(per_kb),
        "kb_p99": _percentile(per_kb, 0.99),
        "text_p50": statistics.median(per_text),
        "text_p99": _percentile(per_text, 0.99),
        "texts_per_second": len(texts) / total,
    }


def engine_speed(dataset: Path) -> list[dict[str, Any]]:
    texts, docs = _texts(dataset)
    cheap = Engine(default_policy(), embeddings=False)
    scanners: list[tuple[str, Callable[[str], object]]] = [
        ("baseline: one e-mail regex", _BASELINE.findall),
        ("cheap cascade (default policy)", lambda t: cheap.scan(t, "user_input", "input")),
    ]
    if embedding.available():
        full = Engine(load_policy(STRICT), token_key=os.urandom(32))
        scanners.append(
            (
                "with the embedding layer (strict policy)",
                lambda t: full.scan(t, "user_input", "input"),
            )
        )
    rows: list[dict[str, Any]] = []
    for what, scan in scanners:
        per_text, per_kb = _timed(scan, texts), _timed(scan, docs)
        rows.append(
            {
                "what": what,
                "texts": len(texts),
                "documents": len(docs),
                "text_p50": per_text["text_p50"],
                "text_p99": per_text["text_p99"],
                "texts_per_second": per_text["texts_per_second"],
                "kb_p50": per_kb["kb_p50"],
                "kb_p99": per_kb["kb_p99"],
            }
        )
    if not embedding.available():
        rows.append({"what": f"embedding layer not run: {embedding.unavailable_reason()}"})
    return rows


def print_speed(rows: list[dict[str, Any]]) -> None:
    base = rows[0]
    print(
        f"Engine speed (`Engine.scan`; per text: {base['texts']} held-out texts as they are; "
        f"per KB: {base['documents']} documents of >= 2 KB joined from them)"
    )
    print("| scan | ms/text p50 | ms/text p99 | texts/s | ms/KB p50 | ms/KB p99 | vs base |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "kb_p50" not in r:
            print(f"| {r['what']} | | | | | | |")
            continue
        print(
            f"| {r['what']} | {r['text_p50']:.3f} | {r['text_p99']:.2f} | "
            f"{r['texts_per_second']:.0f} | {r['kb_p50']:.3f} | {r['kb_p99']:.3f} | "
            f"{r['kb_p50'] / base['kb_p50']:.0f}x |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args(argv)
    if not args.dataset.is_dir():
        print(f"no dataset at {args.dataset}: see ../shared/datasets/README.md", file=sys.stderr)
        return 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print()
    print("PII detection, pii_presidio_synth_v2.json, held-out half (token-level)")
    print_pii_table(pii_report(args.dataset))
    print()
    splits = held_out_splits(args.dataset)
    print_tables(
        attack_report(args.dataset, args.resamples, splits),
        toxicity_report(args.dataset, args.resamples, splits),
        speed_report(args.dataset, splits),
    )
    print()
    print_speed(engine_speed(args.dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())

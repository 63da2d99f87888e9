"""Confidence calibration: fit the table of `bastion.pipeline.extract.calibration` on the tuning
data, and show how well confidences match observed accuracy.

    .venv/bin/python bench/calibration.py            # the reliability tables only
    .venv/bin/python bench/calibration.py --write    # and rewrite src/bastion/data/calibration.json

Tuning data (the table is fitted on it): the odd-numbered files of `../shared/datasets/einvoices/`
(truth in `N.json`), `../shared/datasets/invoice2data/` and the bundled invoice samples, all read
from the page text (`text_only=True`). The even-numbered einvoices are held out: reported,
never fitted on. A field counts when the extractor gave a value and the truth has one; it is
right as `bench/extraction.py` scores it (`same_einvoice_field` for einvoices, `same_field`
otherwise). Line items are not calibrated.

Printed: for each data set, a reliability table (confidence bins against the observed
accuracy) and the expected calibration error (ECE: the mean gap between a bin's confidence and
its accuracy, weighted by the bin's share of fields), for the extractor's own scores and for
the calibrated confidences of the table just fitted. The table's prior strength is chosen by
leave-one-out log loss on the tuning data. Rerun with `--write` whenever the reading
rules change: a rule's accuracy is what the table records.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bastion.pipeline.extract import extract_document  # noqa: E402
from bastion.pipeline.extract.calibration import (  # noqa: E402
    Calibration,
    calibration_path,
    cell_keys,
    tally,
)
from bastion.pipeline.model import ExtractionError, ExtractionResult  # noqa: E402
from bastion.pipeline.samples import SAMPLES, bundled_dir  # noqa: E402
from extraction import (  # noqa: E402 -- the scoring of the extraction benchmark
    DEFAULT_DATASET,
    EINVOICE_FIELDS,
    EINVOICES,
    FIELD_MAP,
    same_einvoice_field,
    same_field,
)

# The prior strengths tried; the one of the least leave-one-out log loss on the tuning data
# is kept.
PRIOR_STRENGTHS = (2.0, 4.0, 8.0, 16.0, 32.0)
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
Scorer = Callable[[str, Any, Any], bool]


@dataclass(frozen=True)
class Observation:
    """One extracted field with truth: how it was read, its own score, and whether it is right."""

    field: str
    rule: str
    arithmetic: str
    score: float
    right: bool


def _read(path: Path) -> ExtractionResult | None:
    try:
        return extract_document(path.read_bytes(), text_only=True)
    except ExtractionError:
        return None


def _observe(
    result: ExtractionResult | None, truth: dict[str, Any], same: Scorer
) -> Iterator[Observation]:
    if result is None:
        return
    for name, expected in truth.items():
        f = result.fields.get(name)
        if expected in (None, "") or f is None or f.evidence is None:
            continue
        yield Observation(
            name,
            f.evidence.rule,
            f.evidence.arithmetic or "unknown",
            f.evidence.score if f.evidence.score is not None else f.confidence,
            same(name, expected, f.value),
        )


def einvoices(odd: bool) -> Iterator[Observation]:
    """The real-producer invoices of one half (odd: tuning; even: held out)."""
    for truth_path in sorted(EINVOICES.glob("*.json"), key=lambda p: int(p.stem)):
        pdf = truth_path.with_suffix(".pdf")
        if not pdf.exists() or (int(truth_path.stem) % 2 == 1) != odd:
            continue
        raw = json.loads(truth_path.read_text(encoding="utf-8"))
        truth = {name: raw.get(name) for name in EINVOICE_FIELDS}
        yield from _observe(_read(pdf), truth, same_einvoice_field)


def invoice2data() -> Iterator[Observation]:
    for truth_path in sorted(DEFAULT_DATASET.glob("*.json")):
        pdf = truth_path.with_suffix(".pdf")
        if not pdf.exists():
            continue
        raw = json.loads(truth_path.read_text(encoding="utf-8"))
        raw = raw[0] if isinstance(raw, list) else raw
        truth = {ours: raw.get(key) for key, ours in FIELD_MAP.items()}
        yield from _observe(_read(pdf), truth, same_field)


def samples() -> Iterator[Observation]:
    for sample in SAMPLES:
        if sample.document_type != "invoice" or sample.reason is not None:
            continue
        truth = {k: v for k, v in sample.fields.items() if k != "line_items"}
        yield from _observe(_read(bundled_dir() / sample.name), truth, same_field)


def reliability(title: str, points: list[tuple[float, bool]]) -> float:
    """Print the reliability table of (confidence, right) points; return the ECE."""
    print(f"\n{title}: {len(points)} fields")
    print(f"{'confidence':<14}{'fields':>8}{'mean conf':>11}{'accuracy':>10}{'gap':>8}")
    ece = 0.0
    for low, high in itertools.pairwise(BINS):
        inside = [(c, ok) for c, ok in points if low <= c < high]
        if not inside:
            continue
        conf = sum(c for c, _ok in inside) / len(inside)
        acc = sum(ok for _c, ok in inside) / len(inside)
        ece += abs(acc - conf) * len(inside) / len(points)
        label = f"{low:.1f}-{min(high, 1.0):.1f}"
        print(f"{label:<14}{len(inside):>8}{conf:>11.3f}{acc:>10.3f}{acc - conf:>+8.3f}")
    overall = sum(ok for _c, ok in points) / len(points) if points else 0.0
    print(f"{'all':<14}{len(points):>8}{'':>11}{overall:>10.3f}   ECE {ece:.3f}")
    return ece


def calibrated(table: Calibration, obs: list[Observation]) -> list[tuple[float, bool]]:
    return [(table.confidence(o.field, o.rule, o.arithmetic, o.score), o.right) for o in obs]


def _fit(obs: list[Observation], strength: float) -> Calibration:
    return tally(((o.field, o.rule, o.arithmetic, o.right) for o in obs), strength)


def leave_one_out_loss(obs: list[Observation], strength: float) -> float:
    """The mean log loss of each observation's confidence from the table fitted without it."""
    full = _fit(obs, strength)
    loss = 0.0
    for o in obs:
        counts = dict(full.counts)
        for key in cell_keys(o.field, o.rule, o.arithmetic):
            right, seen = counts[key]
            counts[key] = (right - o.right, seen - 1)
        conf = Calibration(counts, strength).confidence(o.field, o.rule, o.arithmetic, o.score)
        conf = min(max(conf, 1e-3), 1 - 1e-3)
        loss -= math.log(conf if o.right else 1 - conf)
    return loss / len(obs) if obs else 0.0


def table_json(table: Calibration, meta: dict[str, Any]) -> str:
    """The table as JSON, one cell a line (diffs of a regenerated table stay readable)."""
    raw = table.to_json(meta)
    counts = raw.pop("counts")
    head = json.dumps(raw, indent=1)[:-2]
    cells = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in counts.items())
    return f'{head},\n "counts": {{\n{cells}\n }}\n}}\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the shipped table")
    args = parser.parse_args(argv)
    tuning = [*einvoices(odd=True), *invoice2data(), *samples()]
    held_out = list(einvoices(odd=False))
    losses = {k: leave_one_out_loss(tuning, k) for k in PRIOR_STRENGTHS}
    strength = min(losses, key=lambda k: losses[k])
    print("prior strength: leave-one-out log loss on the tuning data")
    for k, loss in losses.items():
        print(f"  {k:>5g}: {loss:.4f}{'  <- kept' if k == strength else ''}")
    table = _fit(tuning, strength)
    results = {}
    for name, obs in (("tuning", tuning), ("held out (even einvoices)", held_out)):
        raw = reliability(f"{name}, extractor scores", [(o.score, o.right) for o in obs])
        cal = reliability(f"{name}, calibrated", calibrated(table, obs))
        results[name] = (raw, cal)
    print()
    for name, (raw, cal) in results.items():
        print(f"ECE {name}: {raw:.3f} (scores) -> {cal:.3f} (calibrated)")
    if args.write:
        meta = {
            "generated_by": "bench/calibration.py --write",
            "tuning_fields": len(tuning),
        }
        path = calibration_path()
        path.write_text(table_json(table, meta), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

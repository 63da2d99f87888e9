"""Calibrated field confidence: how often a field read by a given rule was right.

The table (`bastion/data/calibration.json`) counts, on the tuning documents, how many values of
each field were read by each rule, and how many of them were right, split by whether the
document's totals added up (net + tax = total: `agrees`, `disagrees`, `unknown`). A field's
confidence starts from the extractor's own score of it (`Evidence.score`) and is moved toward
the observed accuracy of its field and rule, then of its field, rule and arithmetic, each
count weighed against `prior_strength` pseudo-observations of the estimate so far: a cell
seen often says what its accuracy is, a rare one moves the score a little, and a field or
rule the table has never seen keeps the score.

`bench/calibration.py --write` regenerates the table from the tuning data (the reading rules
change, and the table with them); it never fits on the held-out half.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bastion.pipeline.model import ExtractedField

Arithmetic = Literal["agrees", "disagrees", "unknown"]
CALIBRATION_VERSION = 1
_ANY = "*"


def arithmetic_state(fields: Mapping[str, ExtractedField]) -> Arithmetic:
    """Whether subtotal + tax = total holds (within a cent and a half) among `fields`."""
    values = [_number(fields.get(name)) for name in ("subtotal", "tax", "total")]
    subtotal, tax, total = values
    if subtotal is None or tax is None or total is None:
        return "unknown"
    return "agrees" if abs(subtotal + tax - total) <= 0.015 else "disagrees"


def _number(f: ExtractedField | None) -> float | None:
    if f is None or isinstance(f.value, bool) or not isinstance(f.value, int | float):
        return None
    return float(f.value)


def cell_keys(field: str, rule: str, arithmetic: str) -> tuple[str, ...]:
    """The table's keys for one observation, coarsest first: the field and rule, then the
    field, rule and arithmetic."""
    return (f"{field}|{rule}|{_ANY}", f"{field}|{rule}|{arithmetic}")


@dataclass(frozen=True)
class Calibration:
    """Counts of (right, seen) by `cell_keys`, and the smoothing toward coarser cells."""

    counts: Mapping[str, tuple[int, int]]
    prior_strength: float = 8.0

    def confidence(self, field: str, rule: str, arithmetic: str, score: float) -> float:
        """The estimated probability that a `field` read by `rule` with the extractor's
        `score` is right, on a document whose totals are in state `arithmetic`."""
        estimate = min(max(score, 0.0), 1.0)
        for key in cell_keys(field, rule, arithmetic):
            right, seen = self.counts.get(key, (0, 0))
            estimate = (right + self.prior_strength * estimate) / (seen + self.prior_strength)
        return estimate

    def to_json(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {
            "version": CALIBRATION_VERSION,
            **(meta or {}),
            "prior_strength": self.prior_strength,
            "counts": {k: list(v) for k, v in sorted(self.counts.items())},
        }


def tally(
    observations: Iterable[tuple[str, str, str, bool]], prior_strength: float = 8.0
) -> Calibration:
    """A table from (field, rule, arithmetic, right) observations."""
    counts: dict[str, tuple[int, int]] = {}
    for field, rule, arithmetic, right in observations:
        for key in cell_keys(field, rule, arithmetic):
            r, n = counts.get(key, (0, 0))
            counts[key] = (r + int(right), n + 1)
    return Calibration(counts, prior_strength)


def parse_calibration(raw: Mapping[str, Any]) -> Calibration:
    """A table from its JSON form; raises ValueError when it is not one."""
    if raw.get("version") != CALIBRATION_VERSION:
        raise ValueError(f"calibration table version {raw.get('version')!r} is not supported")
    counts: dict[str, tuple[int, int]] = {}
    for key, pair in dict(raw.get("counts", {})).items():
        right, seen = (int(v) for v in pair)
        if key.count("|") != 2 or not 0 <= right <= seen:
            raise ValueError(f"calibration cell {key!r}: {pair!r} is not (right, seen)")
        counts[key] = (right, seen)
    strength = float(raw.get("prior_strength", 8.0))
    if strength <= 0:
        raise ValueError(f"calibration prior_strength {strength!r} is not positive")
    return Calibration(counts, strength)


def calibration_path() -> Path:
    return Path(str(resources.files("bastion") / "data" / "calibration.json"))


@cache
def shipped_calibration() -> Calibration:
    """The table shipped with the package (an empty one, calibrating nothing, if absent)."""
    path = calibration_path()
    if not path.is_file():
        return Calibration({})
    return parse_calibration(json.loads(path.read_text(encoding="utf-8")))


def calibrate(fields: dict[str, ExtractedField], table: Calibration | None = None) -> None:
    """Set each field's confidence from its evidence (rule) and the document's arithmetic;
    record the arithmetic in the evidence. Fields without evidence keep their confidence."""
    table = shipped_calibration() if table is None else table
    arithmetic = arithmetic_state(fields)
    for name, f in fields.items():
        if f.evidence is None:
            continue
        f.evidence.arithmetic = arithmetic
        score = f.confidence if f.evidence.score is None else f.evidence.score
        f.confidence = round(table.confidence(name, f.evidence.rule, arithmetic, score), 3)

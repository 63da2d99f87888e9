"""Guardrails: deterministic checks on untrusted text before any model or agent reads it.

This first layer is small and fast: `prompt_attack.detect` finds prompt-injection and jailbreak
phrasing (English, German, French), on text folded by `normalize.fold` so that invisible
characters, look-alike letters and accents do not hide it. The extractor runs it on every
document (`bastion.pipeline.extract.guard`).
"""

from __future__ import annotations

from bastion.guardrails.normalize import Folded, fold
from bastion.guardrails.prompt_attack import (
    FAMILIES,
    WARNING_CONFIDENCE,
    Detection,
    Family,
    detect,
)

__all__ = ["FAMILIES", "WARNING_CONFIDENCE", "Detection", "Family", "Folded", "detect", "fold"]

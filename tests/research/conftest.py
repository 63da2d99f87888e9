"""Shared data for the research tests: where the HotpotQA sample lives (beside the clone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The model tests' fake model server and keyword guard, for the research model tests.
from tests.llm.conftest import _shared_fake, fake, guard  # noqa: F401

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "research"


def hotpotqa(name: str) -> Any:
    """A file of the shared HotpotQA sample, or a skip when this clone has no datasets beside it."""
    path = DATASETS / f"hotpotqa100_{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared datasets sit beside the clone)")
    return json.loads(path.read_text(encoding="utf-8"))

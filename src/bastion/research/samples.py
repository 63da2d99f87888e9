"""The bundled research corpus: five short articles (`bastion/data/research_corpus/`) for the
demo and the tests, one of them carrying a planted prompt injection that the researchers must
quarantine. Written for this project; a bridge question ("When was the designer of the Eiffel
Tower born?") needs two of the articles."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEMO_QUESTION", "POISONED_TITLE", "bundled_corpus"]

DEMO_QUESTION = "When was the designer of the Eiffel Tower born?"
POISONED_TITLE = "paris-travel-notes"


def bundled_corpus() -> Path:
    """The folder of the bundled corpus, as installed with the package."""
    return Path(str(resources.files("bastion") / "data" / "research_corpus"))

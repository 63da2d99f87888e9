"""`bastion extract FILE`: run the document extractor in-process and print its JSON result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.common import fail
from bastion.pipeline import REASON_CODES, ExtractionError


def extract(
    file: Annotated[Path, typer.Argument(help="The PDF to read.", show_default=False)],
    text_only: Annotated[
        bool,
        typer.Option("--text-only", help="Ignore embedded e-invoice XML; read the page text."),
    ] = False,
) -> None:
    """Classify a PDF and extract its fields; print them as JSON."""
    from bastion.pipeline import extract_document, preflight

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"unreadable: {file}: {exc.strerror or exc}")
    try:
        # Refuses what the pipeline refuses, before any page is parsed; the extractor opens it.
        preflight(data, open_pdf=False)
        result = extract_document(data, text_only=text_only)
    except ExtractionError as exc:
        fail(f"{exc.reason}: {exc.detail or REASON_CODES[exc.reason]}")
    sys.stdout.write(json.dumps(result.to_public(), indent=2, ensure_ascii=False) + "\n")

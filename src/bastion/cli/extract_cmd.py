"""`bastion extract FILE`: run the document extractor in-process and print its JSON result;
`--explain` shows each field's evidence and the candidates it beat (a table, or `--json`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.common import JsonOption, fail, print_rows
from bastion.pipeline import REASON_CODES, ExtractionError

EXPLAIN_COLUMNS = ("field", "value", "confidence", "page", "rule", "label", "bbox", "beat")


def extract(
    file: Annotated[Path, typer.Argument(help="The PDF to read.", show_default=False)],
    text_only: Annotated[
        bool,
        typer.Option("--text-only", help="Ignore embedded e-invoice XML; read the page text."),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Show each field's evidence (page, box, label, rule) and the candidates it "
            "beat: a table, or JSON with --json.",
        ),
    ] = False,
    as_json: JsonOption = False,
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
    public = result.to_public(explain=explain)
    if explain and not as_json:
        title = f"{result.document_type} ({result.confidence:.2f}), read from {result.source}"
        _print_explained(public["fields"], title)
        return
    sys.stdout.write(json.dumps(public, indent=2, ensure_ascii=False) + "\n")


def _print_explained(fields: dict[str, dict[str, Any]], title: str) -> None:
    """One row a field (`to_public(explain=True)`'s): its value, confidence, and where and how
    it was read."""
    rows: list[dict[str, Any]] = []
    for name, f in fields.items():
        ev = f["evidence"] or {}
        rows.append(
            {
                "field": name,
                "value": _short(f["value"]),
                "confidence": f"{f['confidence']:.2f}",
                "page": f["page"],
                "rule": ev.get("rule"),
                "label": ev.get("label"),
                "bbox": " ".join(f"{v:g}" for v in ev["bbox"]) if ev.get("bbox") else None,
                "beat": "; ".join(
                    f"{_short(a['value'])} ({a['rule']}, {a['score']:.2f})"
                    for a in f["alternatives"]
                ),
            }
        )
    print_rows(rows, EXPLAIN_COLUMNS, as_json=False, title=title)


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"

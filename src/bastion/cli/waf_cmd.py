"""`bastion waf test FILE.jsonl`: judge recorded requests offline with the configured WAF rules.

One verdict per input line on standard output, in order: `{"action": "ALLOW"|"COUNT"|"BLOCK",
"rule_ids": [...]}`, or `{"action": "ERROR", "line": N, "error": ...}` for a line that is not a
recorded request (evaluation goes on). Progress and a summary go to standard error. Exit
status is non-zero only when FILE cannot be read.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer

from bastion.cli.common import ConfigOption, err_console, fail, settings_from
from bastion.config import Settings

app = typer.Typer(no_args_is_help=True, help="Try the edge WAF's rules on recorded requests.")

PROGRESS_EVERY = 1000


@app.command("test")
def test(
    file: Annotated[
        Path,
        typer.Argument(
            help='JSON Lines, one {"method", "uri", "headers", "body"} per line (CRS format).',
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    edge: Annotated[
        bool,
        typer.Option(
            "--edge",
            help="Also evaluate rule 0 (path allow-list: waf.extra_paths and --allow) and "
            "rule 1 (rate per client IP, from each line's client_ip).",
        ),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="A path to allow with --edge (repeatable; /x/{rest:path})."),
    ] = None,
) -> None:
    """Print one verdict per recorded request."""
    settings = settings_from(config, required=False)
    try:
        fh = file.open("rb")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    with fh:
        try:
            totals = asyncio.run(_run(fh, settings, edge=edge, allow=allow or []))
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
    summary = ", ".join(f"{n} {action}" for action, n in sorted(totals.items()))
    err_console.print(f"{sum(totals.values())} requests: {summary or 'none'}", highlight=False)


async def _run(fh: BinaryIO, settings: Settings, *, edge: bool, allow: list[str]) -> Counter[str]:
    from bastion.edge.offline import (
        BadRecord,
        OfflineEvaluator,
        error_line,
        parse_record,
        verdict_line,
    )

    evaluator = OfflineEvaluator(settings, edge=edge, allow=allow)
    totals: Counter[str] = Counter()
    out = sys.stdout.buffer
    for line_no, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            result = verdict_line(await evaluator.evaluate(parse_record(line)))
        except BadRecord as exc:
            result = error_line(line_no, str(exc))
        totals[str(result["action"])] += 1
        out.write(orjson.dumps(result) + b"\n")
        if line_no % PROGRESS_EVERY == 0:
            out.flush()
            err_console.print(f"{line_no} lines...", highlight=False)
    out.flush()
    return totals

"""`bastion demo`: the guided end-to-end demonstration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="Keep the demo's files here (default: a temp dir).")
    ] = None,
) -> None:
    """Run the document pipeline end to end on sample documents, in a temporary folder."""
    from bastion.config import LoggingSettings
    from bastion.demos.pipeline import run_demo
    from bastion.observability.logging import configure_logging

    configure_logging(LoggingSettings(level="WARNING"))
    if not run_demo(workdir=workdir):
        raise typer.Exit(1)

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
    """Start two agents on loopback and show the security stack at work."""
    from bastion.config import LoggingSettings
    from bastion.demos.runtime import run_demo
    from bastion.observability.logging import configure_logging

    configure_logging(LoggingSettings(level="WARNING"))
    if not run_demo(workdir=workdir):
        raise typer.Exit(1)

"""`bastion init --dir DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.common import console, fail
from bastion.project import InitError, init_project


def init(
    directory: Annotated[Path, typer.Option("--dir", help="Folder to initialise.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Write bastion.yaml, policy.json, secrets and the database; print the first admin key."""
    try:
        result = init_project(directory, force=force)
    except InitError as exc:
        fail(str(exc))
    console.print(f"Initialised [bold]{result.directory}[/]")
    console.print(f"  config: {result.config}")
    console.print("  admin API key (shown once, store it now):")
    typer.echo(result.admin_key)

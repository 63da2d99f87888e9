"""`bastion init --dir DIR [--force] [--database-url URL]`: lay out a project; a bad --dir, a
bad --database-url or an existing project is refused with one line and exit status 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bastion.cli.common import console, fail
from bastion.project import InitError, init_project


def init(
    directory: Annotated[Path, typer.Option("--dir", help="Folder to initialise.")] = Path("."),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Rewrite bastion.yaml and policy.json of an existing project; its secrets, "
            "database and audit trail are kept.",
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The database to use instead of the embedded SQLite file, e.g. "
            "postgresql://bastion@db.internal:5432/bastion (no password: PGPASSWORD or "
            "~/.pgpass); it is written to bastion.yaml, migrated and given the keys.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write bastion.yaml, policy.json, secrets and the database; print the first admin key."""
    try:
        result = init_project(directory, force=force, database_url=database_url)
    except InitError as exc:
        fail(str(exc), 2)
    console.print(f"Initialised [bold]{escape(str(result.directory))}[/]", highlight=False)
    console.print(f"  config: {escape(str(result.config))}", highlight=False)
    if result.kept:
        console.print(
            f"  kept from the previous project: {escape(', '.join(result.kept))}",
            highlight=False,
            soft_wrap=True,
        )
    console.print("  admin API key (shown once, store it now):")
    typer.echo(result.admin_key)

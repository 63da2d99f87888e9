"""The `bastion` command line. Each command group lives in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion._version import __version__

app = typer.Typer(
    name="bastion",
    help="Bastion: zero-trust agents. Every call authenticated, authorized, rate limited, audited.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Bastion command line."""


def _register() -> None:
    from bastion.cli import commands

    commands.register(app)


def main() -> None:
    _register()
    app()

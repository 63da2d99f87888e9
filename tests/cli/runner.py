"""Runs `bastion` commands in-process (typer's CliRunner) for the tests."""

from __future__ import annotations

import typer
from typer.testing import CliRunner, Result

import bastion.cli


def cli_app() -> typer.Typer:
    """The CLI app with every command registered (once)."""
    if not bastion.cli.app.registered_groups:
        bastion.cli._register()
    return bastion.cli.app


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # BASTION_CONFIG from the outer environment must never leak into a test.
    return CliRunner().invoke(cli_app(), list(args), env={"BASTION_CONFIG": None, **(env or {})})

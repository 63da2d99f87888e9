"""Shared CLI plumbing: the `--config` and `--json` options, settings loading, table output."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bastion.config import ConfigError, EnvOverrideError, Settings, load_settings
from bastion.storage.database import shared_engine

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="bastion.yaml to use (default: $BASTION_CONFIG, then ./bastion.yaml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line actionable error and exit non-zero.

    The message is printed verbatim: never wrapped at the terminal width, and brackets in it
    (paths, patterns, user input) are not taken for console markup.
    """
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc), 2 if isinstance(exc, EnvOverrideError) else 1)


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """Print rows as a rich table, or as a JSON list with `--json`."""
    if as_json:
        sys.stdout.write(json.dumps(list(rows), default=str, indent=2) + "\n")
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def db_error(exc: BaseException) -> str:
    """The driver's one-line message; never the URL, SQL text or parameters."""
    inner = getattr(exc, "orig", None) or exc
    first = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}: {first}"[:300]


def open_engine(settings: Settings) -> Engine:
    """The configured database's engine; a one-line error and exit when it cannot be opened."""
    try:
        return shared_engine(settings.database_url())
    except SQLAlchemyError as exc:
        fail(f"cannot open the database: {db_error(exc)}")
    except ImportError as exc:
        fail(f"cannot open the database: missing driver ({exc.name})")

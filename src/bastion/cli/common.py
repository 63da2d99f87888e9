"""Shared CLI plumbing: the `--config` and `--json` options, settings loading, errors and
warnings, table output that never cuts an id, and ids given by a unique prefix."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bastion.config import ConfigError, EnvOverrideError, Settings, load_settings
from bastion.storage import shared_engine

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


def usage_error(message: str) -> NoReturn:
    """A bad argument: one line on stderr, exit status 2."""
    fail(message, code=2)


def warn(message: str) -> None:
    """One line on stderr; never changes the exit status or what goes to stdout."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def settings_from(config: str | None, *, required: bool = True) -> Settings:
    """The settings `--config` (or the usual lookup) names; `required=False`: the defaults when
    there is no file. A bad override value exits 2, any other configuration error 1."""
    try:
        return load_settings(config, required=required)
    except ConfigError as exc:
        fail(str(exc), 2 if isinstance(exc, EnvOverrideError) else 1)


def is_id_column(name: str) -> bool:
    """Columns holding ids (`id`, `key_id`, `correlation id`, ...) are never cut or wrapped."""
    return name == "id" or name.endswith(("_id", " id"))


# A table column's borders and padding, and the narrowest a folding column may get.
_COLUMN_CHROME = 3
_NARROWEST_FOLDED = 3


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """Print rows as a table, or as a JSON list with `--json`.

    Id columns (see `is_id_column`) are always shown whole: other columns fold (wrap) to make
    room; on a terminal too narrow even for that, each row is printed as `column: value` lines.
    When stdout is not a terminal (a pipe, a file), the table is as wide as its content.
    """
    if as_json:
        sys.stdout.write(json.dumps(list(rows), default=str, indent=2) + "\n")
        return
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    widths = [max([cell_len(c), *(cell_len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    # A fresh console: COLUMNS and whether stdout is a terminal are read now, not at import.
    out = Console(highlight=False)
    table = Table(title=title)
    for col, width in zip(columns, widths, strict=True):
        if is_id_column(col):
            table.add_column(col, no_wrap=True, min_width=width)
        else:
            table.add_column(col, overflow="fold")
    for row_cells in cells:
        table.add_row(*(Text(value) for value in row_cells))
    if not out.is_terminal:
        out = Console(highlight=False, width=1 + sum(w + _COLUMN_CHROME for w in widths))
    elif _narrowest(columns, widths) > out.width:
        _print_records(out, cells, columns, title)
        return
    out.print(table)


def _narrowest(columns: Sequence[str], widths: Sequence[int]) -> int:
    """How wide the table must be with its id columns whole and every other column folded."""
    return 1 + sum(
        (w if is_id_column(c) else min(w, _NARROWEST_FOLDED)) + _COLUMN_CHROME
        for c, w in zip(columns, widths, strict=True)
    )


def _print_records(
    out: Console, cells: Iterable[Sequence[str]], columns: Sequence[str], title: str | None
) -> None:
    """Each row as `column: value` lines, a blank line between rows; values are never cut."""
    if title:
        out.print(Text(title, style="italic"))
    pad = max(len(c) for c in columns)
    for number, row_cells in enumerate(cells):
        if number:
            out.print()
        for col, value in zip(columns, row_cells, strict=True):
            out.print(Text(f"{col.rjust(pad)}: {value}"), soft_wrap=True)


def resolve_prefix(given: str, candidates: Iterable[str], what: str, listed_by: str) -> str:
    """The one candidate equal to `given` or starting with it; else a usage error (exit 2):
    `no such <what>`, or how many candidates an ambiguous prefix matches. `listed_by` is the
    command that shows the candidates."""
    matches = sorted({c for c in candidates if c.startswith(given)}) if given else []
    if given in matches:
        return given
    if len(matches) == 1:
        return matches[0]
    if not matches:
        usage_error(f"no such {what}: {given!r} (see `{listed_by}`)")
    usage_error(
        f"{what} prefix {given!r} is ambiguous: it matches {len(matches)}; give more "
        f"characters (see `{listed_by}`)"
    )


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


def client_api_key(settings: Settings, explicit: str | None, purpose: str) -> str:
    """The key a client command calls the gateway with: `explicit` (--api-key or
    BASTION_API_KEY), else `pipeline.submit_api_key` resolved. `purpose` completes "no API key
    to ..." in the error."""
    from bastion.security import SecretError, resolve

    if explicit:
        return explicit
    ref = settings.pipeline.submit_api_key
    if not ref:
        fail(
            f"no API key to {purpose} with: set pipeline.submit_api_key in bastion.yaml "
            "(`bastion init` writes one), or pass --api-key / set BASTION_API_KEY"
        )
    try:
        return resolve(ref, settings.base_dir).get()
    except SecretError as exc:
        fail(f"pipeline.submit_api_key: {exc}")

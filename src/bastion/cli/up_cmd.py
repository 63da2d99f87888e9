"""`bastion up`: the document pipeline and the research agents on this machine, supervised,
until Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from bastion.agents.services import check_local, service_endpoints, service_supervisor
from bastion.cli.common import (
    ConfigOption,
    console,
    db_error,
    err_console,
    fail,
    print_rows,
    settings_from,
)
from bastion.config import ConfigError, Settings, find_config
from bastion.runtime import SupervisorError, SupervisorEvent
from bastion.security import check_references, describe_failures
from bastion.storage import display_url, has_schema, migrate

STOP_TIMEOUT_SECONDS = 20.0
_SHOWN = {
    "ready": "[green]ready[/]",
    "exited": "[red]exited[/]",
    "failed": "[bold red]failed[/]",
    "stopped": "stopped",
}


def _show(event: SupervisorEvent) -> None:
    if event.kind == "starting":
        err_console.print(f"  starting {event.child} …", highlight=False)
    elif event.kind in _SHOWN:
        err_console.print(
            f"  {_SHOWN[event.kind]} {event.child}: {escape(event.message)}", highlight=False
        )
    elif event.kind == "restarting":
        err_console.print(f"  [yellow]{escape(event.message)}[/]", highlight=False)


def _ready_database(settings: Settings) -> None:
    """The database holds Bastion's schema, brought up to this version's (a no-op when it is);
    one that was never set up is refused, since its keys would be missing too."""
    url = settings.database_url()
    shown = display_url(url)
    try:
        if not has_schema(url):
            fail(
                f"the database database.url={shown} holds no Bastion tables and no keys: "
                "create them with `bastion init` (`--database-url URL` for PostgreSQL; "
                "`--force` in an existing project folder)"
            )
        migrate(url)
    except SQLAlchemyError as exc:
        fail(f"cannot use the database database.url={shown}: {db_error(exc)}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(
    config: ConfigOption = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(
            "--log-dir",
            help="Where each service writes its log (default: logs/ next to bastion.yaml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the pipeline (four agents, the gateway, the worker) and the three research agents,
    on loopback, until Ctrl-C.

    Every secret reference in the configuration must resolve first, and the database must
    have been set up by `bastion init` (an older schema is migrated), or nothing starts.
    Services that crash are restarted; stopping (Ctrl-C or SIGTERM) shuts them down in order;
    if `bastion up` itself is killed, each service notices and stops cleanly.
    """
    settings = settings_from(config)
    try:
        config_path = find_config(config)
    except ConfigError as exc:
        fail(str(exc))
    assert config_path is not None  # settings_from() found it
    try:
        check_local(settings)
        endpoints = service_endpoints(settings)
    except SupervisorError as exc:
        fail(str(exc))
    # Every secret resolves before any service starts (and reports ready), or nothing starts.
    failures = [c for c in check_references(settings) if not c.ok]
    if failures:
        fail(f"cannot start the pipeline: {describe_failures(failures)}")
    _ready_database(settings)
    logs = log_dir if log_dir is not None else settings.path("logs")
    sup = service_supervisor(config_path, settings, log_dir=logs, on_event=_show)
    err_console.print(
        f"Starting the pipeline from {config_path} (logs in {logs}/)", highlight=False
    )
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        sup.start()
        rows = [{"service": name, "url": url} for name, url in endpoints]
        queue = display_url(settings.pipeline.queue_url)
        rows.append({"service": "worker", "url": f"queue {queue}"})
        for row in rows:
            row["log"] = str(sup.log_path(row["service"]))
        print_rows(rows, ["service", "url", "log"], as_json=False, title="bastion up")
        console.print(
            "Running. Upload with `bastion submit FILE.pdf`; Ctrl-C stops everything.",
            highlight=False,
        )
        while not sup.wait(1.0):
            pass
        for name, reason in sup.failures.items():
            err_console.print(
                f"[bold red]error:[/] {name}: {escape(reason)}", highlight=False, soft_wrap=True
            )
        code = 1
    except SupervisorError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the orderly shutdown short.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        err_console.print("Stopping …", highlight=False)
        sup.stop(STOP_TIMEOUT_SECONDS)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err_console.print("Stopped.", highlight=False)
    raise typer.Exit(code)

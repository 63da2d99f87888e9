"""`bastion dlq`: list dead-lettered documents and send them through the pipeline again."""

from __future__ import annotations

import datetime as dt
import getpass
import sqlite3
from functools import partial
from typing import Annotated, Any

import typer

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    print_rows,
    resolve_prefix,
    settings_from,
    usage_error,
    warn,
)
from bastion.cli.status_cmd import archive_call, open_archive, open_pipeline_queue
from bastion.pipeline import DocumentNotFoundError
from bastion.storage import DeadLetter, Queue, display_url

app = typer.Typer(no_args_is_help=True, help="Inspect and redrive the dead-letter queue.")

LIST_COLUMNS = ("id", "document_id", "reason", "receive_count", "dead_at")
# Redrive looks at every dead letter; far beyond any DLQ that should exist.
_ALL = 1_000_000


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _row(dl: DeadLetter) -> dict[str, Any]:
    return {
        "id": dl.id,
        "document_id": dl.body.get("document_id"),
        "reason": dl.reason,
        "receive_count": dl.receive_count,
        "dead_at": _iso(dl.dead_at),
        "sent_at": _iso(dl.sent_at),
        "filename": dl.body.get("filename"),
        "correlation_id": dl.body.get("correlation_id"),
    }


def _dead_letters(queue: Queue, limit: int, url: str) -> list[DeadLetter]:
    try:
        return queue.dlq_list(limit)
    except (sqlite3.Error, OSError) as exc:
        fail(f"cannot read the queue pipeline.queue_url={display_url(url)}: {exc}")


@app.command("list")
def list_(
    config: ConfigOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100000, help="How many, oldest first.")
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """Dead-lettered messages, oldest first: which document, why, and when."""
    settings = settings_from(config)
    queue = open_pipeline_queue(settings)
    try:
        letters = _dead_letters(queue, limit, settings.pipeline.queue_url)
    finally:
        queue.close()
    if not letters and not as_json:
        console.print("the dead-letter queue is empty", highlight=False)
        return
    print_rows([_row(d) for d in letters], LIST_COLUMNS, as_json=as_json, title="dead letters")


def _principal() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


@app.command()
def redrive(
    ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Dead-letter ids (or unique prefixes) to move back (see `bastion dlq list`).",
            show_default=False,
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Move every dead letter back.")] = False,
    config: ConfigOption = None,
) -> None:
    """Move dead letters back onto the queue and mark their documents `queued` again."""
    if bool(ids) == all_:
        usage_error("name the dead letters to redrive (ids from `bastion dlq list`) or pass --all")
    settings = settings_from(config)
    repo = open_archive(settings)
    queue = open_pipeline_queue(settings)
    try:
        letters = _dead_letters(queue, _ALL, settings.pipeline.queue_url)
        if ids:
            by_id = {d.id: d for d in letters}
            chosen = (resolve_prefix(i, by_id, "dead letter", "bastion dlq list") for i in ids)
            letters = [by_id[i] for i in dict.fromkeys(chosen)]
        if not letters:
            console.print("the dead-letter queue is empty: nothing to redrive", highlight=False)
            return
        principal = _principal()
        missing: list[str] = []
        # Statuses first: once a message is back on the queue, a worker may take it at once.
        for dl in letters:
            doc_id = dl.body.get("document_id")
            if not isinstance(doc_id, str):
                continue
            try:
                archive_call(
                    partial(
                        repo.set_status,
                        doc_id,
                        "queued",
                        detail=f"redriven from the dead-letter queue (was: {dl.reason})"[:500],
                        correlation_id=dl.body.get("correlation_id"),
                        principal=principal,
                    )
                )
            except DocumentNotFoundError:
                missing.append(doc_id)
        try:
            moved = queue.redrive([d.id for d in letters])
        except (sqlite3.Error, OSError) as exc:
            fail(
                f"cannot redrive on pipeline.queue_url={display_url(settings.pipeline.queue_url)}"
                f": {exc}"
            )
    finally:
        queue.close()
    for doc_id in missing:
        warn(f"document {doc_id} is not in the archive; its message was redriven anyway")
    console.print(
        f"moved {moved} message(s) back onto the queue; their documents are queued again",
        highlight=False,
    )

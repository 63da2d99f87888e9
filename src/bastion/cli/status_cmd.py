"""`bastion status`: documents by status and the queue's depth, read straight from storage."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TypeVar

import orjson
from sqlalchemy.exc import SQLAlchemyError

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    db_error,
    fail,
    open_engine,
    print_rows,
    settings_from,
)
from bastion.config import Settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.storage.queue import Queue

T = TypeVar("T")

QUEUE_LABELS = {
    "visible": "visible",
    "in_flight": "in flight",
    "delayed": "delayed",
    "dead": "dead-letter",
}


def open_archive(settings: Settings) -> ArchiveRepository:
    return ArchiveRepository(open_engine(settings))


def archive_call(fn: Callable[[], T]) -> T:
    """Run a repository read or write; a database problem becomes an actionable error."""
    try:
        return fn()
    except SQLAlchemyError as exc:
        fail(
            f"cannot use the archive database: {db_error(exc)} (is it set up? `bastion init` "
            "creates and migrates it)"
        )


def open_pipeline_queue(settings: Settings) -> Queue:
    from bastion.pipeline.stores import open_pipeline_queue as open_queue

    try:
        return open_queue(settings)
    except (ValueError, OSError, sqlite3.Error) as exc:
        fail(f"cannot open the queue pipeline.queue_url={settings.pipeline.queue_url}: {exc}")


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Documents by status and the queue (visible, in flight, delayed, dead-letter).

    Reads the database and the queue directly: works whether or not `bastion up` is running.
    """
    settings = settings_from(config)
    counts = archive_call(open_archive(settings).status_counts)
    queue = open_pipeline_queue(settings)
    try:
        stats = asdict(queue.stats())
    except sqlite3.Error as exc:
        fail(f"cannot read the queue pipeline.queue_url={settings.pipeline.queue_url}: {exc}")
    finally:
        queue.close()
    if as_json:
        doc = {"documents": counts, "queue": stats}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print_rows(
        [{"status": k, "documents": v} for k, v in counts.items()],
        ["status", "documents"],
        as_json=False,
        title="documents",
    )
    print_rows(
        [{"queue": QUEUE_LABELS[k], "messages": v} for k, v in stats.items()],
        ["queue", "messages"],
        as_json=False,
        title="queue",
    )

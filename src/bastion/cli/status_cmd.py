"""`bastion status`: documents by status, the queue's depth and the messages in flight (who holds
each, for how long), read straight from storage."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from sqlalchemy.exc import SQLAlchemyError

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    db_error,
    fail,
    open_engine,
    print_rows,
    settings_from,
)
from bastion.config import Settings
from bastion.pipeline import ArchiveRepository
from bastion.storage import InFlight, Queue, display_url, process_gone

T = TypeVar("T")

QUEUE_LABELS = {
    "visible": "visible",
    "in_flight": "in flight",
    "delayed": "delayed",
    "dead": "dead-letter",
}
IN_FLIGHT_LIMIT = 100
IN_FLIGHT_COLUMNS = ("message id", "document id", "age", "receive count", "consumer")
# What became of the consumer that holds an in-flight message.
HELD = "held"  # its lease is live
LEASE_EXPIRED = "lease expired"
PROCESS_GONE = "process gone"
UNREGISTERED = "gone"
RETRY_WAIT = "none (waiting to retry)"
_ABANDONED = {LEASE_EXPIRED, PROCESS_GONE, UNREGISTERED}


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
    from bastion.pipeline import open_pipeline_queue as open_queue

    try:
        return open_queue(settings)
    except (ValueError, OSError, sqlite3.Error) as exc:
        shown = display_url(settings.pipeline.queue_url)
        fail(f"cannot open the queue pipeline.queue_url={shown}: {exc}")


def consumer_state(message: InFlight, now: float) -> str:
    """Who holds `message`: a live lease, or a consumer that is gone (why), or nobody."""
    if message.consumer_id is None:
        return RETRY_WAIT
    consumer = message.consumer
    if consumer is None:
        return UNREGISTERED
    if process_gone(consumer):
        return PROCESS_GONE
    if consumer.lease_expires_at <= now:
        return LEASE_EXPIRED
    return HELD


def in_flight_row(message: InFlight, now: float) -> dict[str, Any]:
    """One in-flight message for `--json`: ids whole, times in seconds."""
    consumer = message.consumer
    return {
        "id": message.id,
        "document_id": message.body.get("document_id"),
        "age_seconds": round(now - message.sent_at, 1),
        "receive_count": message.receive_count,
        "held_seconds": (
            None if message.received_at is None else round(now - message.received_at, 1)
        ),
        "visible_in_seconds": round(message.visible_at - now, 1),
        "consumer": message.consumer_id,
        "consumer_pid": consumer.pid if consumer else None,
        "consumer_host": consumer.host if consumer else None,
        "consumer_state": consumer_state(message, now),
        "last_error": message.last_error,
    }


def format_age(seconds: float) -> str:
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _consumer_cell(row: dict[str, Any]) -> str:
    state = row["consumer_state"]
    if row["consumer_pid"] is None:
        return str(state) if row["consumer"] is None else f"{row['consumer']} ({state})"
    return f"pid {row['consumer_pid']} on {row['consumer_host']} ({state})"


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "message id": row["id"],
        "document id": row["document_id"],
        "age": format_age(row["age_seconds"]),
        "receive count": row["receive_count"],
        "consumer": _consumer_cell(row),
    }


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Documents by status, the queue (visible, in flight, delayed, dead-letter) and the
    messages in flight: their age, receive count and the consumer that holds them.

    Reads the database and the queue directly: works whether or not `bastion up` is running.
    """
    settings = settings_from(config)
    counts = archive_call(open_archive(settings).status_counts)
    queue = open_pipeline_queue(settings)
    try:
        stats = asdict(queue.stats())
        held = queue.in_flight(IN_FLIGHT_LIMIT)
    except (sqlite3.Error, OSError) as exc:
        shown = display_url(settings.pipeline.queue_url)
        fail(f"cannot read the queue pipeline.queue_url={shown}: {exc}")
    finally:
        queue.close()
    now = time.time()
    in_flight = [in_flight_row(m, now) for m in held]
    if as_json:
        doc = {"documents": counts, "queue": stats, "in_flight": in_flight}
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
    if in_flight:
        shown = (
            f" (oldest {len(in_flight)} of {stats['in_flight']})"
            if len(in_flight) < stats["in_flight"]
            else ""
        )
        print_rows(
            [_table_row(r) for r in in_flight],
            IN_FLIGHT_COLUMNS,
            as_json=False,
            title=f"in flight{shown}",
        )
    if any(r["consumer_state"] in _ABANDONED for r in in_flight):
        console.print(
            "messages held by a consumer that is gone go back to the queue as soon as a worker "
            "runs (`bastion up` or `bastion serve worker`)",
            highlight=False,
        )

"""Durable message queues for the document pipeline (SQS-shaped).

`open_queue(url)` opens the backend named by a URL: `sqlite:///queue.db` (relative paths are
resolved against `base_dir`), `redis://HOST:PORT/DB?prefix=PREFIX` or `rediss://...` (Redis
Streams, see `redis_streams`), `postgresql://USER@HOST/DATABASE` (see `postgres`), or an SQS
queue URL (see `sqs`). The API is synchronous; see `base` for the contract.
"""

from __future__ import annotations

from pathlib import Path

from bastion.storage.queue.base import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT,
    REASON_MAX_RECEIVES,
    Consumer,
    DeadLetter,
    InFlight,
    Message,
    Queue,
    QueueStats,
)
from bastion.storage.queue.lease import ConsumerLease
from bastion.storage.queue.sqlite import SQLiteQueue
from bastion.storage.queue.url import display_url

__all__ = [
    "DEFAULT_MAX_RECEIVE_COUNT",
    "DEFAULT_RETENTION_SECONDS",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "REASON_MAX_RECEIVES",
    "Consumer",
    "ConsumerLease",
    "DeadLetter",
    "InFlight",
    "Message",
    "Queue",
    "QueueStats",
    "SQLiteQueue",
    "display_url",
    "open_queue",
    "queue_path",
]


def queue_path(url: str, base_dir: Path | None = None) -> Path:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` queue URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"unsupported queue URL {url!r} (expected sqlite:///path)")
    path = Path(url[len(prefix) :].split("?", 1)[0])
    if not str(path) or ":memory:" in str(path):
        raise ValueError("a queue needs a file path")
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def open_queue(
    url: str,
    *,
    base_dir: Path | None = None,
    name: str = "default",
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    endpoint_url: str | None = None,
    region: str | None = None,
    ledger_url: str | None = None,
) -> Queue:
    """Open (creating if needed) the queue at `url`.

    An `http(s)://` URL is an SQS queue (`endpoint_url`, `region`: its endpoint and region when
    the URL does not say; `ledger_url`: the database of its ledger, unless the URL names one
    with `?ledger=`); see `sqs`.
    """
    if url.startswith(("redis://", "rediss://")):
        from bastion.storage.queue.redis_streams import RedisStreamsQueue

        return RedisStreamsQueue.from_url(
            url,
            name=name,
            max_receive_count=max_receive_count,
            retention_seconds=retention_seconds,
        )
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from bastion.storage.queue.postgres import PostgresQueue

        return PostgresQueue(
            url,
            name=name,
            max_receive_count=max_receive_count,
            retention_seconds=retention_seconds,
        )
    if url.startswith(("https://", "http://")):
        from bastion.storage.queue.sqs import SQSQueue, split_queue_url

        sqs_url, in_url = split_queue_url(url)
        ledger = in_url or ledger_url
        if ledger is None:
            raise ValueError(
                "an SQS queue needs a database for its ledger of consumers and receipts: set "
                "pipeline.sqs_ledger_url (or database.url), or add ?ledger=sqlite:///FILE"
            )
        return SQSQueue(
            sqs_url,
            ledger_url=ledger,
            name=name,
            max_receive_count=max_receive_count,
            retention_seconds=retention_seconds,
            endpoint_url=endpoint_url,
            region=region,
        )
    return SQLiteQueue(
        queue_path(url, base_dir),
        name=name,
        max_receive_count=max_receive_count,
        retention_seconds=retention_seconds,
    )

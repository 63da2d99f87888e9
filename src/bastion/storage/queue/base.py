"""The queue interface the pipeline codes against, shaped after Amazon SQS.

A consumer `receive()`s messages, which become invisible to other consumers for a visibility
timeout; it `delete()`s a message (by the receipt handle of that receive) once processed. A
message that is not deleted becomes visible again when its timeout expires; once it has been
received `max_receive_count` times it moves to the dead-letter queue (DLQ) with its last error,
and `dead_letter()` sends a poison message there at once. `redrive()` moves DLQ entries back.
Messages older than `retention_seconds` are purged. Every backend passes
`tests/storage/test_queue_contract.py`.

Consumers and leases: a consumer process `register_consumer()`s and names its id on each
`receive(consumer=...)`, so every message in flight records who holds it. The consumer renews its
lease well inside the lease time (`renew_lease`, see `lease.ConsumerLease`). `reclaim()` makes the
messages of consumers whose lease has expired (or who are known to be gone) visible again at once,
keeping their receive counts, instead of leaving them hidden until their visibility timeout: a
crashed worker's documents are picked up as soon as a worker starts, and never a live worker's.
(Redis Streams: the consumer group's pending entries of expired consumers handed to nobody,
visible at once; SQS: a consumer table beside the queue and ChangeMessageVisibility 0.)

The API is synchronous (a short database transaction per call, `receive(wait_seconds=...)`
blocks); asyncio callers run it through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_RETENTION_SECONDS = 14 * 24 * 3600.0
DEFAULT_VISIBILITY_TIMEOUT = 30.0
# The DLQ reason of a message that kept timing out without any error being recorded.
REASON_MAX_RECEIVES = "max_receive_count_exceeded"


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a message. `receipt_handle` is new on every receive."""

    id: str
    receipt_handle: str
    body: dict[str, Any]
    receive_count: int
    sent_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue and why it is there."""

    id: str
    body: dict[str, Any]
    receive_count: int
    sent_at: float
    dead_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Consumer:
    """A registered consumer: the process that holds it and how long its lease runs."""

    id: str
    pid: int
    host: str
    node: str  # this boot of this host's pid namespace: where `pid` can be checked
    started_at: float
    lease_expires_at: float


@dataclass(frozen=True, slots=True)
class InFlight:
    """A message received and not yet deleted, with who holds it (None: no consumer, e.g.
    waiting out a retry backoff)."""

    id: str
    body: dict[str, Any]
    receive_count: int
    sent_at: float
    received_at: float | None
    visible_at: float  # when it becomes visible again if nobody deletes it
    consumer: Consumer | None
    consumer_id: str | None  # set with `consumer` None: a consumer that is no longer registered
    last_error: str | None


def in_flight_from_row(row: Sequence[Any]) -> InFlight:
    """An `InFlight` from a row of (id, body JSON, receive_count, sent_at, received_at,
    visible_at, consumer id, last_error, then the consumer's columns or NULLs), the order the
    SQL backends select them in."""
    return InFlight(
        id=row[0],
        body=json.loads(row[1]),
        receive_count=row[2],
        sent_at=row[3],
        received_at=row[4],
        visible_at=row[5],
        consumer_id=row[6],
        last_error=row[7],
        consumer=None if row[8] is None else Consumer(*row[8:14]),
    )


@dataclass(frozen=True, slots=True)
class QueueStats:
    visible: int  # ready to be received now
    in_flight: int  # received, visibility timeout not yet expired
    delayed: int  # sent with a delay that has not passed yet
    dead: int  # in the dead-letter queue


@runtime_checkable
class Queue(Protocol):
    """A durable at-least-once queue with visibility timeouts and a dead-letter queue."""

    max_receive_count: int
    retention_seconds: float

    def send(self, body: dict[str, Any], *, delay_seconds: float = 0) -> str:
        """Enqueue a JSON-serialisable dict; return the message id."""
        ...

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        wait_seconds: float = 0,
        consumer: str | None = None,
    ) -> list[Message]:
        """Claim up to `max_messages` visible messages, hiding them for `visibility_timeout`.

        With `wait_seconds` > 0, wait up to that long for a first message (long poll).
        `consumer` (an id from `register_consumer`) is recorded as the messages' holder, so
        that `reclaim()` can hand them back at once if that consumer's lease runs out.
        """
        ...

    def delete(self, receipt_handle: str) -> bool:
        """Acknowledge a message. False if the handle is stale (the message was received again
        after its visibility expired, deleted, or dead-lettered)."""
        ...

    def change_visibility(
        self, receipt_handle: str, timeout: float, *, reason: str | None = None
    ) -> bool:
        """Hide the message for `timeout` seconds from now (0: visible again at once).

        `reason` records why processing failed; it becomes the DLQ reason if the message runs
        out of receives. The message no longer has a holder: it waits out `timeout` whatever
        becomes of the consumer that received it. False if the handle is stale.
        """
        ...

    def dead_letter(self, receipt_handle: str, reason: str) -> bool:
        """Move a received (poison) message to the DLQ now. False if the handle is stale."""
        ...

    def dlq_list(self, limit: int = 100) -> list[DeadLetter]:
        """Dead-lettered messages, oldest first."""
        ...

    def redrive(self, ids: list[str] | None = None) -> int:
        """Move DLQ messages (all, or those in `ids`) back to the queue with a fresh receive
        count; return how many moved."""
        ...

    def depth(self) -> int:
        """Messages on the main queue: visible, in flight and delayed."""
        ...

    def dlq_depth(self) -> int: ...

    def stats(self) -> QueueStats: ...

    def oldest_age_seconds(self) -> float | None:
        """How long the message that has waited longest has been receivable: seconds since it
        last became visible (sent, its delay ran out, its visibility timeout ran out or it was
        handed back, or it was redriven); 0 when no message is receivable now. Messages in flight
        and delayed ones not yet due are not waiting. None when the backend cannot tell (SQS)."""
        ...

    def purge_expired(self) -> int:
        """Delete messages past retention (also done as part of normal use); return count."""
        ...

    def register_consumer(self, lease_seconds: float) -> str:
        """Register the calling process as a consumer with a lease of `lease_seconds` from now;
        return its new id (pass it to `receive`)."""
        ...

    def renew_lease(self, consumer_id: str, lease_seconds: float) -> bool:
        """Extend the consumer's lease to `lease_seconds` from now (registering it again if it
        was removed). False if the lease had already lapsed or was gone: messages it held may
        have been reclaimed and received by others (their receipt handles are then stale)."""
        ...

    def unregister_consumer(self, consumer_id: str) -> int:
        """Remove the consumer (a clean stop) and make the messages it still holds visible at
        once; return how many."""
        ...

    def reclaim(self, gone: Collection[str] = ()) -> int:
        """Make visible at once, keeping their receive counts, the in-flight messages whose
        consumer's lease has expired, whose consumer is no longer registered, or whose consumer
        id is in `gone` (known dead by the caller); remove those consumers. Never touches the
        messages of a live lease that is not in `gone`, nor messages received without a
        consumer (they wait out their visibility timeout). Return how many were released."""
        ...

    def consumers(self) -> list[Consumer]:
        """The registered consumers, live or with a lapsed lease not yet reclaimed."""
        ...

    def in_flight(self, limit: int = 100) -> list[InFlight]:
        """Messages received and not deleted whose visibility timeout has not expired, oldest
        sent first."""
        ...

    def close(self) -> None: ...

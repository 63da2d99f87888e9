"""The queue interface the pipeline codes against, shaped after Amazon SQS.

A consumer `receive()`s messages, which become invisible to other consumers for a visibility
timeout; it `delete()`s a message (by the receipt handle of that receive) once processed. A
message that is not deleted becomes visible again when its timeout expires; once it has been
received `max_receive_count` times it moves to the dead-letter queue (DLQ) with its last error,
and `dead_letter()` sends a poison message there at once. `redrive()` moves DLQ entries back.
Messages older than `retention_seconds` are purged. Every backend passes
`tests/storage/test_queue_contract.py`.

The API is synchronous (a short database transaction per call, `receive(wait_seconds=...)`
blocks); asyncio callers run it through `asyncio.to_thread`.
"""

from __future__ import annotations

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
    ) -> list[Message]:
        """Claim up to `max_messages` visible messages, hiding them for `visibility_timeout`.

        With `wait_seconds` > 0, wait up to that long for a first message (long poll).
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
        out of receives. False if the handle is stale.
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

    def purge_expired(self) -> int:
        """Delete messages past retention (also done as part of normal use); return count."""
        ...

    def close(self) -> None: ...

"""The live pipeline event feed: where the gateway's `WS /ws/events` events come from.

Every step of a document's life is a row in the archive's `history` table, written by whichever
process did it (the gateway's ingest, the worker, the archivist). `EventFeed` tails that table
by increasing id: one query per `poll_seconds` for all subscribers, and none while nobody is
subscribed (a new first subscriber starts from the newest row). Each row becomes an `Event`,
fanned out to the subscribers allowed to see it through bounded per-subscriber queues; a
subscriber that falls `queue_size` events behind is dropped (`Subscription.dropped`), so a slow
reader never blocks the others or grows memory. A poll reads at most `queue_size` rows, so that a
burst alone never drops a reader that keeps up from one poll to the next.

Ids are handed out when a row is inserted but become visible when its transaction commits, so
on PostgreSQL a row can appear after a higher id was already read. The feed remembers the ids it
skipped for `GAP_SECONDS` and asks for them again in the same query; SQLite commits one writer
at a time, in id order, so it never has such gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from bastion.pipeline.archive_repo import ArchiveRepository

log = structlog.get_logger("bastion.events")

# History event -> the document status it leaves behind.
STATUS_AFTER = {
    "received": "queued",
    "queued": "queued",
    "processing": "processing",
    "extracted": "processing",
    "validated": "processing",
    "reprocessed": "processing",
    "archived": "archived",
    "failed": "failed",
    "deleted": "deleted",
}
TERMINAL_EVENTS = frozenset({"archived", "failed", "deleted"})
EVENT_PREFIX = "document."
BATCH = 500
GAP_SECONDS = 10.0
MAX_GAPS = 1_000


class TooManySubscriptions(Exception):
    """The principal already has as many event streams open as it may."""


@dataclass(frozen=True, slots=True)
class Event:
    """One history row, as subscribers see it (`message()`) and as the feed filters it."""

    id: int
    event: str
    document_id: str
    correlation_id: str | None
    at: float
    owner: str
    principal: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        return cls(
            id=int(row["id"]),
            event=str(row["event"]),
            document_id=str(row["document_id"]),
            correlation_id=row["correlation_id"],
            at=float(row["at"]),
            owner=str(row["owner"]),
            principal=row["principal"],
        )

    def message(self) -> dict[str, Any]:
        """The JSON object sent to subscribers."""
        return {
            "type": EVENT_PREFIX + self.event,
            "document_id": self.document_id,
            "status": STATUS_AFTER.get(self.event, self.event),
            "correlation_id": self.correlation_id,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
        }


@dataclass(eq=False)
class Subscription:
    """One subscriber's view of the feed: what it may see and its bounded queue.

    `see_all` subscribers get every event; the others the events of documents their principal
    owns, and events their principal caused. `documents`, when set, narrows that further to
    those document ids (the client's `subscribe` message).
    """

    principal: str
    see_all: bool
    queue_size: int
    documents: frozenset[str] | None = None
    dropped: bool = False
    ended: bool = False
    _queue: asyncio.Queue[Event | None] = field(init=False)
    _stopped: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        # One slot more than the limit, for the end-of-stream marker of a dropped subscriber.
        self._queue = asyncio.Queue(self.queue_size + 1)
        self._stopped = asyncio.Event()

    def wants(self, event: Event) -> bool:
        if self.documents is not None and event.document_id not in self.documents:
            return False
        return self.see_all or event.owner == self.principal or event.principal == self.principal

    def offer(self, event: Event) -> bool:
        """Queue `event`; False (and the subscription ends) when the subscriber is too slow."""
        if self.dropped:
            return False
        if self._queue.qsize() >= self.queue_size:
            self.dropped = True
            self._queue.put_nowait(None)
            self._stopped.set()
            return False
        self._queue.put_nowait(event)
        return True

    def end(self) -> None:
        """End the stream (the feed is closing): `next` answers None from now on."""
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        self._stopped.set()

    async def stopped(self) -> None:
        """Returns once the subscription is dropped or ended (even while nobody reads it)."""
        await self._stopped.wait()

    async def next(self, timeout: float | None) -> Event | None:
        """The next event, or None after `timeout` seconds or once the stream has ended
        (`dropped` or `ended` tell which)."""
        if self.dropped or self.ended:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


class EventFeed:
    """Tails the history table and fans its events out to subscribers (one per gateway)."""

    def __init__(
        self,
        repo: ArchiveRepository,
        *,
        poll_seconds: float,
        queue_size: int,
        max_per_principal: int,
    ) -> None:
        self.repo = repo
        self.poll_seconds = poll_seconds
        self.queue_size = queue_size
        self.max_per_principal = max_per_principal
        self._subscribers: list[Subscription] = []
        self._cursor = 0
        self._gaps: dict[int, float] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bastion-event-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in self._subscribers:
            sub.end()
        self._subscribers.clear()

    def count(self, principal: str) -> int:
        return sum(1 for s in self._subscribers if s.principal == principal)

    async def subscribe(self, principal: str, *, see_all: bool) -> Subscription:
        """A new subscription, seeing events from now on. TooManySubscriptions past the
        per-principal limit."""
        async with self._lock:
            if self.count(principal) >= self.max_per_principal:
                raise TooManySubscriptions(principal)
            if not self._subscribers:
                self._cursor = await asyncio.to_thread(self.repo.last_history_id)
                self._gaps.clear()
            sub = Subscription(principal, see_all, self.queue_size)
            self._subscribers.append(sub)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(sub)

    def publish(self, events: Iterable[Event]) -> None:
        """Hand `events` to every subscriber that may see them; drop those that fell behind."""
        for event in events:
            for sub in list(self._subscribers):
                if sub.wants(event) and not sub.offer(event):
                    self.unsubscribe(sub)
                    log.warning(
                        "event subscriber too slow; closing its stream",
                        principal=sub.principal,
                        queue_size=sub.queue_size,
                    )

    async def _run(self) -> None:
        while True:
            if not self._subscribers:
                self._wake.clear()
                await self._wake.wait()
            try:
                async with self._lock:
                    if self._subscribers:
                        self.publish(await self._poll())
            except Exception as exc:  # the database may be away for a while: keep tailing
                log.warning("event feed poll failed; retrying", error=type(exc).__name__)
            await asyncio.sleep(self.poll_seconds)

    async def _poll(self) -> list[Event]:
        limit = min(BATCH, self.queue_size)
        rows = await asyncio.to_thread(
            self.repo.history_after, self._cursor, sorted(self._gaps), limit
        )
        now = time.monotonic()
        events: list[Event] = []
        for row in rows:
            event = Event.from_row(row)
            if event.id in self._gaps:
                del self._gaps[event.id]
            elif event.id > self._cursor:
                missing = range(self._cursor + 1, event.id)
                for gap in missing[: max(0, MAX_GAPS - len(self._gaps))]:
                    self._gaps[gap] = now
                self._cursor = event.id
            else:
                continue
            events.append(event)
        expired = [gap for gap, seen in self._gaps.items() if now - seen > GAP_SECONDS]
        for gap in expired:
            del self._gaps[gap]
        return events

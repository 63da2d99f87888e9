"""The live pipeline event feed: where the gateway's `WS /ws/events` events come from.

Every step of a document's life is a row in the archive's `history` table, which only the
Archivist writes. The feed reads them from the archivist's streaming method
`archivist.watch_events` (the gateway's own grant): one stream per gateway for all subscribers,
and none while nobody is subscribed (a new first subscriber starts from the newest row). Each row
becomes an `Event`, fanned out to the subscribers allowed to see it through bounded
per-subscriber queues; a subscriber that falls `queue_size` events behind is dropped
(`Subscription.dropped`), so a slow reader never blocks the others or grows memory.

A broken stream (the archivist restarted, a replica went away) is opened again after a short,
growing pause from the cursor of the last batch, so no event is lost in between; the archivist
sends an empty batch every few seconds, so a silent stream is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

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
READY_SECONDS = 5.0  # how long a first subscriber waits for the stream to open
MAX_BACKOFF_SECONDS = 5.0

# Opens the archivist's event stream after a cursor (None: from now on).
EventSource = Callable[[int | None], AsyncIterator[dict[str, Any]]]


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
    """Streams the archive's history from the archivist and fans its events out to
    subscribers (one feed per gateway)."""

    def __init__(
        self,
        source: EventSource,
        *,
        retry_seconds: float,
        queue_size: int,
        max_per_principal: int,
    ) -> None:
        self.source = source
        self.retry_seconds = retry_seconds
        self.queue_size = queue_size
        self.max_per_principal = max_per_principal
        self._subscribers: list[Subscription] = []
        self._cursor: int | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._streaming = False

    async def start(self) -> None:
        """Nothing to do until the first subscriber (kept for the gateway's lifespan)."""

    async def close(self) -> None:
        await self._stop_stream()
        for sub in self._subscribers:
            sub.end()
        self._subscribers.clear()

    async def _stop_stream(self) -> None:
        self._streaming = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def count(self, principal: str) -> int:
        return sum(1 for s in self._subscribers if s.principal == principal)

    async def subscribe(self, principal: str, *, see_all: bool) -> Subscription:
        """A new subscription, seeing events from now on. TooManySubscriptions past the
        per-principal limit."""
        async with self._lock:
            if self.count(principal) >= self.max_per_principal:
                raise TooManySubscriptions(principal)
            sub = Subscription(principal, see_all, self.queue_size)
            self._subscribers.append(sub)
            if not self._streaming:
                await self._stop_stream()
                self._cursor = None
                self._ready.clear()
                self._streaming = True
                self._task = asyncio.create_task(self._run(), name="bastion-event-feed")
        # Events from now on: wait (briefly) until the stream has its starting cursor.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), READY_SECONDS)
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
        """Read the archivist's stream while anyone is subscribed; reopen it when it breaks."""
        pause = self.retry_seconds
        while self._subscribers:
            try:
                async for batch in self.source(self._cursor):
                    self._cursor = int(batch["cursor"])
                    self._ready.set()
                    self.publish(Event.from_row(row) for row in batch["events"])
                    pause = self.retry_seconds
                    if not self._subscribers:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the archivist may be away for a while: keep trying
                log.warning("event stream broke; reopening it", error=str(exc))
            if self._subscribers:
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)
        self._streaming = False

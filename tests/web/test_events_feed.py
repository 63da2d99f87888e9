"""The event feed on a real archive (SQLite and PostgreSQL), read the way the archivist streams
it (`history_batches`): a slow subscriber is dropped without holding up the others, rows
committed out of id order are still delivered, and a broken stream is reopened from its cursor
without losing an event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert

from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.events import STATUS_AFTER, EventFeed, TooManySubscriptions
from bastion.pipeline.history_tail import history_batches
from bastion.storage.database import shared_engine
from bastion.storage.pipeline_models import HISTORY_EVENTS, HistoryRow
from tests.web.conftest import record_new_upload


class ArchiveStream:
    """The archivist's `watch_events` on a real archive, which the test can break once."""

    def __init__(self, repo: ArchiveRepository) -> None:
        self.repo = repo
        self.break_after_first_event = False
        self.opened_after: list[int | None] = []

    async def __call__(self, after: int | None) -> AsyncIterator[dict[str, Any]]:
        self.opened_after.append(after)
        async for batch in history_batches(self.repo, after, poll_seconds=0.02):
            yield batch
            if batch["events"] and self.break_after_first_event:
                self.break_after_first_event = False
                raise ConnectionResetError("the archivist went away")


@pytest.fixture
def stream(db_url: str) -> ArchiveStream:
    return ArchiveStream(ArchiveRepository(shared_engine(db_url)))


@pytest.fixture
async def feed(stream: ArchiveStream) -> AsyncIterator[EventFeed]:
    events = EventFeed(stream, retry_seconds=0.02, queue_size=4, max_per_principal=5)
    await events.start()
    try:
        yield events
    finally:
        await events.close()


def test_every_history_event_maps_to_a_status() -> None:
    assert set(STATUS_AFTER) == set(HISTORY_EVENTS)


async def test_slow_subscriber_is_dropped_and_the_others_get_everything(
    feed: EventFeed, stream: ArchiveStream
) -> None:
    slow = await feed.subscribe("admin", see_all=True)
    fast = await feed.subscribe("submitter", see_all=False)
    for _ in range(feed.queue_size + 2):
        doc_id = await asyncio.to_thread(record_new_upload, stream.repo)
        event = await fast.next(10)
        assert event is not None and event.document_id == doc_id
    assert slow.dropped and not fast.dropped
    assert await slow.next(10) is None
    assert feed.count("admin") == 0 and feed.count("submitter") == 1


async def test_rows_committed_out_of_id_order_are_delivered(
    feed: EventFeed, stream: ArchiveStream
) -> None:
    repo = stream.repo
    doc_id = await asyncio.to_thread(record_new_upload, repo)
    sub = await feed.subscribe("admin", see_all=True)
    base = await asyncio.to_thread(repo.last_history_id)
    table = cast(Table, HistoryRow.__table__)

    def commit(row_id: int, event: str) -> None:
        with repo.engine.begin() as conn:
            row = {"id": row_id, "document_id": doc_id, "at": time.time(), "event": event}
            conn.execute(insert(table), [row])

    # The later id becomes visible first, as when two transactions commit out of order.
    await asyncio.to_thread(commit, base + 2, "archived")
    first = await sub.next(10)
    assert first is not None and (first.id, first.event) == (base + 2, "archived")
    await asyncio.to_thread(commit, base + 1, "processing")
    second = await sub.next(10)
    assert second is not None and (second.id, second.event) == (base + 1, "processing")


async def test_per_principal_limit(feed: EventFeed) -> None:
    subs = [await feed.subscribe("submitter", see_all=False) for _ in range(5)]
    with pytest.raises(TooManySubscriptions):
        await feed.subscribe("submitter", see_all=False)
    feed.unsubscribe(subs[0])
    await feed.subscribe("submitter", see_all=False)


async def test_a_broken_stream_is_reopened_from_its_cursor_and_loses_nothing(
    feed: EventFeed, stream: ArchiveStream
) -> None:
    sub = await feed.subscribe("admin", see_all=True)
    stream.break_after_first_event = True
    first = await asyncio.to_thread(record_new_upload, stream.repo)
    event = await sub.next(10)
    assert event is not None and event.document_id == first
    broke_at = event.id
    # Written while the stream is down: delivered once it is open again.
    second = await asyncio.to_thread(record_new_upload, stream.repo)
    event = await sub.next(10)
    assert event is not None and event.document_id == second
    # The first subscriber started from now on; the stream reopened after the last event seen.
    assert stream.opened_after == [None, broke_at]


async def test_the_stream_closes_when_the_last_subscriber_leaves(
    stream: ArchiveStream, db_url: str
) -> None:
    feed = EventFeed(stream, retry_seconds=0.02, queue_size=4, max_per_principal=5)
    sub = await feed.subscribe("admin", see_all=True)
    feed.unsubscribe(sub)
    await asyncio.to_thread(record_new_upload, stream.repo)  # the next batch ends the stream
    task = feed._task
    assert task is not None
    await asyncio.wait_for(task, 10)
    again = await feed.subscribe("admin", see_all=True)
    assert stream.opened_after == [None, None]  # a new first subscriber starts from now on
    doc_id = await asyncio.to_thread(record_new_upload, stream.repo)
    event = await again.next(10)
    assert event is not None and event.document_id == doc_id
    await feed.close()

"""The event feed on a real archive (SQLite and PostgreSQL): a slow subscriber is dropped without
holding up the others, and rows committed out of id order are still delivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest
from sqlalchemy import Table, insert

from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.events import STATUS_AFTER, EventFeed, TooManySubscriptions
from bastion.storage.database import shared_engine
from bastion.storage.pipeline_models import HISTORY_EVENTS, HistoryRow
from tests.web.conftest import record_new_upload


@pytest.fixture
async def feed(db_url: str) -> AsyncIterator[EventFeed]:
    repo = ArchiveRepository(shared_engine(db_url))
    events = EventFeed(repo, poll_seconds=0.02, queue_size=4, max_per_principal=5)
    await events.start()
    try:
        yield events
    finally:
        await events.close()


def test_every_history_event_maps_to_a_status() -> None:
    assert set(STATUS_AFTER) == set(HISTORY_EVENTS)


async def test_slow_subscriber_is_dropped_and_the_others_get_everything(feed: EventFeed) -> None:
    slow = await feed.subscribe("admin", see_all=True)
    fast = await feed.subscribe("submitter", see_all=False)
    for _ in range(feed.queue_size + 2):
        doc_id = await asyncio.to_thread(record_new_upload, feed.repo)
        event = await fast.next(10)
        assert event is not None and event.document_id == doc_id
    assert slow.dropped and not fast.dropped
    assert await slow.next(10) is None
    assert feed.count("admin") == 0 and feed.count("submitter") == 1


async def test_rows_committed_out_of_id_order_are_delivered(feed: EventFeed) -> None:
    repo = feed.repo
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

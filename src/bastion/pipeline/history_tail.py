"""The archive's history, read as it grows: what `archivist.watch_events` streams.

`history_batches(repo, after)` yields `{"events": [...], "cursor": n}`: first at once (the
cursor a reader starts from), then each poll that found rows, and an empty batch at least every
`HEARTBEAT_SECONDS`, so that a reader knows the stream is alive.

Every step of a document's life is a row in the archive's `history` table, written by the
Archivist (for the gateway's uploads and deletions, the worker's status changes and its own
archiving). `HistoryTail` reads the rows after a cursor, in id order, each with its document's
owner, at most `limit` per read.

Ids are handed out when a row is inserted but become visible when its transaction commits, so on
PostgreSQL a row can appear after a higher id was already read. The tail remembers the ids it
skipped for `GAP_SECONDS` and asks for them again in the same query; SQLite commits one writer
at a time, in id order, so it never has such gaps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from bastion.pipeline.archive_repo import ArchiveRepository

GAP_SECONDS = 10.0
MAX_GAPS = 1_000
HEARTBEAT_SECONDS = 5.0
BATCH = 500


class HistoryTail:
    """History rows after `cursor` (None: after the newest row now), read by `read()`."""

    def __init__(self, repo: ArchiveRepository, cursor: int | None) -> None:
        self.repo = repo
        self.cursor = repo.last_history_id() if cursor is None else cursor
        self._gaps: dict[int, float] = {}

    def read(self, limit: int) -> list[dict[str, Any]]:
        """The rows not read before, oldest first (blocking: run it in a thread)."""
        rows = self.repo.history_after(self.cursor, sorted(self._gaps), limit)
        now = time.monotonic()
        fresh: list[dict[str, Any]] = []
        for row in rows:
            row_id = int(row["id"])
            if row_id in self._gaps:
                del self._gaps[row_id]
            elif row_id > self.cursor:
                missing = range(self.cursor + 1, row_id)
                for gap in missing[: max(0, MAX_GAPS - len(self._gaps))]:
                    self._gaps[gap] = now
                self.cursor = row_id
            else:
                continue
            fresh.append(row)
        for gap in [gap for gap, seen in self._gaps.items() if now - seen > GAP_SECONDS]:
            del self._gaps[gap]
        return fresh


async def history_batches(
    repo: ArchiveRepository,
    after: int | None,
    *,
    poll_seconds: float,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[dict[str, Any]]:
    """Batches of the history rows after `after` (None: after the newest row now), forever."""
    tail = await asyncio.to_thread(HistoryTail, repo, after)
    yield {"events": [], "cursor": tail.cursor}
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(poll_seconds)
        rows = await asyncio.to_thread(tail.read, BATCH)
        if rows or time.monotonic() - quiet_since >= heartbeat_seconds:
            quiet_since = time.monotonic()
            yield {"events": [_event(r) for r in rows], "cursor": tail.cursor}


def _event(row: dict[str, Any]) -> dict[str, Any]:
    """A history row as JSON: what the feed's `Event.from_row` reads."""
    return {
        "id": int(row["id"]),
        "document_id": row["document_id"],
        "at": float(row["at"]),
        "event": row["event"],
        "correlation_id": row["correlation_id"],
        "principal": row["principal"],
        "owner": row["owner"],
    }

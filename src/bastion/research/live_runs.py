"""The runs a research service is running now, each with its events kept in memory.

A `LiveRun` appends every event to a buffer and wakes its followers (one condition), so
`follow` replays the run from its first event and then streams it live, however late it
starts. A finished run stays for a while (the most recent `keep_finished`), then only the
store knows it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from bastion.research.protocol import FINAL_EVENTS

__all__ = ["LiveRun", "LiveRuns"]

KEEP_FINISHED = 256


class LiveRun:
    """One run's events, its owner and its task."""

    def __init__(self, run_id: str, owner: str, conversation_id: str) -> None:
        self.run_id = run_id
        self.owner = owner
        self.conversation_id = conversation_id
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def emit(self, event: dict[str, Any]) -> None:
        """Add `event`; a final one (`done`, `error`, `cancelled`) ends the run's stream."""
        async with self._changed:
            if self.finished:
                return
            self.events.append(event)
            if event.get("type") in FINAL_EVENTS:
                self.finished = True
            self._changed.notify_all()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event from the first, then each new one, until the final one."""
        seen = 0
        while True:
            async with self._changed:
                while len(self.events) <= seen and not self.finished:
                    await self._changed.wait()
                batch = self.events[seen:]
                finished = self.finished
            for event in batch:
                yield event
            seen += len(batch)
            if finished and seen >= len(self.events):
                return


class LiveRuns:
    """The live runs by id; finished ones are forgotten beyond the most recent `keep`."""

    def __init__(self, keep: int = KEEP_FINISHED) -> None:
        self._runs: OrderedDict[str, LiveRun] = OrderedDict()
        self._keep = keep

    def add(self, run: LiveRun) -> None:
        self._runs[run.run_id] = run
        self._trim()

    def get(self, run_id: str, owner: str) -> LiveRun | None:
        """`owner`'s run `run_id` when it is in memory (another owner's is None)."""
        run = self._runs.get(run_id)
        return run if run is not None and run.owner == owner else None

    def running(self) -> list[LiveRun]:
        return [run for run in self._runs.values() if not run.finished]

    def _trim(self) -> None:
        finished = [run_id for run_id, run in self._runs.items() if run.finished]
        for run_id in finished[: max(0, len(finished) - self._keep)]:
            del self._runs[run_id]

"""The A2A task store: in memory, bounded, one process.

Oldest tasks are evicted first, finished ones before live ones. A task is visible only to the
principal that created it: anyone else gets -32001 exactly as if it did not exist.

`TaskStore` is also the base of the durable store (`task_store_db.DatabaseTaskStore`): the
changes are split into applying them to a record (`_apply_status`, `_apply_artifact`) and
announcing them to subscribers, so the durable store writes in between.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bastion.protocol.a2a import (
    DEFAULT_PAGE_SIZE,
    Message,
    Metadata,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    a2a_error,
    utc_now,
)
from bastion.protocol.errors import (
    INVALID_PARAMS,
    TASK_NOT_FOUND,
    UNSUPPORTED_OPERATION,
    RpcError,
)
from bastion.runtime.a2a_executor import ArtifactUpdate


class RunHandle(Protocol):
    """What the store needs of a task's running executor (the A2A methods' run): a way to
    stop it at cancellation or shutdown, and to wait for it to end."""

    def cancel(self) -> None: ...

    async def wait(self, timeout: float) -> None: ...


@dataclass(eq=False, slots=True)
class TaskRecord:
    """One stored task: its owner, its full state, its live subscribers and its running run."""

    owner: str
    task: Task  # artifacts and history are always lists here
    seq: int  # store-wide counter, bumped on every status change: the list order
    subscribers: set[asyncio.Queue[StreamResponse | None]] = field(default_factory=set)
    run: RunHandle | None = None
    # Durable store only: the task's run is alive in another process (another replica).
    elsewhere: bool = False

    @property
    def state(self) -> TaskState:
        return self.task.status.state

    @property
    def running(self) -> bool:
        """An executor is processing a message of this task, here or in another process."""
        return self.run is not None or self.elsewhere


def busy_error(task_id: str) -> RpcError:
    """A message for a task whose previous message is still being processed."""
    return a2a_error(
        UNSUPPORTED_OPERATION,
        f"Task {task_id} is still processing the previous message",
        taskId=task_id,
    )


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{seq}".encode()).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, value = raw.partition(":")
        if prefix != "c1" or not value.isdigit():
            raise ValueError(token)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise RpcError(
            INVALID_PARAMS,
            data=[{"field": "pageToken", "problem": "not a token returned by ListTasks"}],
        ) from None


class TaskStore:
    """In-memory tasks, bounded, each visible only to the principal that created it."""

    def __init__(
        self,
        *,
        max_tasks: int = 10_000,
        max_tasks_per_principal: int = 1_000,
        max_history: int = 200,
        max_artifacts: int = 100,
        subscriber_queue: int = 1_000,
    ) -> None:
        if min(max_tasks, max_tasks_per_principal, max_history, max_artifacts) < 1:
            raise ValueError("TaskStore limits must be positive")
        self.max_tasks = max_tasks
        self.max_tasks_per_principal = max_tasks_per_principal
        self.max_history = max_history
        self.max_artifacts = max_artifacts
        self.subscriber_queue = subscriber_queue
        # Least recently updated first: eviction scans from the front.
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()
        self._by_owner: dict[str, OrderedDict[str, TaskRecord]] = {}
        self._seq = 0
        self._last_ts = datetime.fromtimestamp(0, UTC)

    def __len__(self) -> int:
        return len(self._records)

    # -- time and order ----------------------------------------------------------------------

    def _stamp(self) -> tuple[int, datetime]:
        """The next sequence number and a timestamp later than the previous one.

        Timestamps have the millisecond precision they are sent with, so that a client's
        `statusTimestampAfter` compares exactly with what it was shown.
        """
        self._seq += 1
        now = utc_now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self._last_ts:
            now = self._last_ts + timedelta(milliseconds=1)
        self._last_ts = now
        return self._seq, now

    def _touch(self, record: TaskRecord) -> None:
        if self._records.get(record.task.id) is not record:
            return  # evicted while its executor was still finishing
        self._records.move_to_end(record.task.id)
        self._by_owner[record.owner].move_to_end(record.task.id)

    # -- lookup ------------------------------------------------------------------------------

    def find(self, owner: str, task_id: str) -> TaskRecord | None:
        record = self._records.get(task_id)
        if record is None or record.owner != owner:
            return None
        return record

    def get(self, owner: str, task_id: str) -> TaskRecord:
        """The caller's task, or -32001 (also when it belongs to someone else)."""
        record = self.find(owner, task_id)
        if record is None:
            raise a2a_error(TASK_NOT_FOUND, f"Task not found: {task_id}", taskId=task_id)
        return record

    # -- changes -----------------------------------------------------------------------------

    def _new_record(
        self, owner: str, task: Task, seq: int, now: datetime, run: RunHandle | None
    ) -> TaskRecord:
        stored = task.model_copy(
            update={
                "status": task.status.model_copy(update={"timestamp": now}),
                "artifacts": list(task.artifacts or []),
                "history": list(task.history or [])[-self.max_history :],
            }
        )
        return TaskRecord(owner=owner, task=stored, seq=seq, run=run)

    def create(self, owner: str, task: Task, run: RunHandle | None = None) -> TaskRecord:
        """Store a new task, run by `run` (its timestamp and order are assigned here)."""
        if task.id in self._records:
            raise ValueError(f"task {task.id} already exists")
        seq, now = self._stamp()
        record = self._new_record(owner, task, seq, now, run)
        self._records[task.id] = record
        self._by_owner.setdefault(owner, OrderedDict())[task.id] = record
        self._evict(owner)
        return record

    def attach_run(self, record: TaskRecord, run: RunHandle) -> None:
        """`run` now processes a message of the task."""
        record.run = run

    def detach_run(self, record: TaskRecord, run: RunHandle) -> None:
        """`run` has ended (nothing if another run took the task over)."""
        if record.run is run:
            record.run = None

    def _apply_status(
        self, record: TaskRecord, status: TaskStatus, seq: int, now: datetime
    ) -> None:
        record.seq = seq
        record.task.status = status.model_copy(update={"timestamp": now})
        if status.message is not None:
            self._apply_history(record, status.message)

    def set_status(
        self, record: TaskRecord, status: TaskStatus, metadata: Metadata | None = None
    ) -> TaskStatusUpdateEvent:
        """Change the task's status (timestamped now) and tell its subscribers."""
        seq, now = self._stamp()
        self._apply_status(record, status, seq, now)
        self._touch(record)
        return self._announce_status(record, metadata)

    def _announce_status(
        self, record: TaskRecord, metadata: Metadata | None = None
    ) -> TaskStatusUpdateEvent:
        event = TaskStatusUpdateEvent(
            task_id=record.task.id,
            context_id=record.task.context_id,
            status=record.task.status,
            metadata=metadata,
        )
        self.publish(record, StreamResponse(status_update=event))
        if record.state.is_terminal:
            self._close_subscribers(record)
        return event

    def add_artifact(self, record: TaskRecord, update: ArtifactUpdate) -> TaskArtifactUpdateEvent:
        """Add (or append to) an artifact and tell the task's subscribers."""
        self._apply_artifact(record, update)
        return self._announce_artifact(record, update)

    def _apply_artifact(self, record: TaskRecord, update: ArtifactUpdate) -> None:
        artifacts = record.task.artifacts
        assert artifacts is not None
        incoming = update.artifact
        for i, existing in enumerate(artifacts):
            if existing.artifact_id == incoming.artifact_id:
                if update.append:
                    incoming = existing.model_copy(
                        update={"parts": [*existing.parts, *incoming.parts]}
                    )
                artifacts[i] = incoming
                break
        else:
            artifacts.append(incoming)
            del artifacts[: -self.max_artifacts]

    def _announce_artifact(
        self, record: TaskRecord, update: ArtifactUpdate
    ) -> TaskArtifactUpdateEvent:
        event = TaskArtifactUpdateEvent(
            task_id=record.task.id,
            context_id=record.task.context_id,
            artifact=update.artifact,
            append=update.append or None,
            last_chunk=update.last_chunk or None,
        )
        self.publish(record, StreamResponse(artifact_update=event))
        return event

    def append_history(self, record: TaskRecord, message: Message) -> None:
        """Add a message to the task's history (the oldest go beyond `max_history`)."""
        self._apply_history(record, message)

    def _apply_history(self, record: TaskRecord, message: Message) -> None:
        history = record.task.history
        assert history is not None
        history.append(message)
        del history[: -self.max_history]

    def _evict(self, owner: str) -> None:
        own = self._by_owner[owner]
        while len(own) > self.max_tasks_per_principal:
            self._drop(self._oldest(own))
        while len(self._records) > self.max_tasks:
            self._drop(self._oldest(self._records))

    @staticmethod
    def _oldest(records: OrderedDict[str, TaskRecord]) -> TaskRecord:
        """The least recently updated finished task, else the least recently updated one."""
        for record in records.values():
            if record.state.is_terminal:
                return record
        return next(iter(records.values()))

    def _drop(self, record: TaskRecord) -> None:
        self._records.pop(record.task.id, None)
        own = self._by_owner.get(record.owner)
        if own is not None:
            own.pop(record.task.id, None)
            if not own:
                del self._by_owner[record.owner]
        self._stop(record)

    def _stop(self, record: TaskRecord) -> None:
        """The task is gone from the store: stop its run and end its streams."""
        if record.run is not None:
            record.run.cancel()
        self._close_subscribers(record)

    # -- views -------------------------------------------------------------------------------

    @staticmethod
    def snapshot(
        record: TaskRecord, *, history_length: int | None = None, include_artifacts: bool = True
    ) -> Task:
        """A deep copy of the task; `history_length` 0 omits history, N keeps the last N."""
        task = record.task
        history = task.history or []
        if history_length is not None:
            history = history[-history_length:] if history_length > 0 else []
        artifacts = task.artifacts if include_artifacts else None
        return task.model_copy(
            update={
                "history": list(history) or None,
                "artifacts": list(artifacts) if artifacts is not None else None,
            },
            deep=True,
        )

    def page(
        self,
        owner: str,
        *,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
    ) -> tuple[list[TaskRecord], str, int]:
        """One page of the owner's tasks, most recently updated first.

        Returns (records, next page token or "", total number of matching tasks).
        """
        cursor = decode_cursor(page_token) if page_token else None
        matching = [
            r
            for r in self._by_owner.get(owner, {}).values()
            if (context_id is None or r.task.context_id == context_id)
            and (state is None or r.state == state)
            and (
                updated_after is None
                or (r.task.status.timestamp is not None and r.task.status.timestamp > updated_after)
            )
        ]
        matching.sort(key=lambda r: r.seq, reverse=True)
        after = matching if cursor is None else [r for r in matching if r.seq < cursor]
        page = after[:page_size]
        next_token = encode_cursor(page[-1].seq) if len(after) > page_size else ""
        return page, next_token, len(matching)

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, record: TaskRecord) -> asyncio.Queue[StreamResponse | None]:
        queue: asyncio.Queue[StreamResponse | None] = asyncio.Queue(self.subscriber_queue)
        record.subscribers.add(queue)
        return queue

    @staticmethod
    def unsubscribe(record: TaskRecord, queue: asyncio.Queue[StreamResponse | None]) -> None:
        record.subscribers.discard(queue)

    def publish(self, record: TaskRecord, event: StreamResponse) -> None:
        for queue in list(record.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A subscriber that stopped reading loses its stream, not the agent's memory.
                record.subscribers.discard(queue)
                self._end(queue)

    def _close_subscribers(self, record: TaskRecord) -> None:
        for queue in list(record.subscribers):
            self._end(queue)
        record.subscribers.clear()

    @staticmethod
    def _end(queue: asyncio.Queue[StreamResponse | None]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
        if queue.full():
            # Make room for the end marker: the reader is gone or hopelessly behind.
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    async def start(self) -> None:
        """Nothing to prepare in memory (the durable store recovers orphaned tasks here)."""

    async def aclose(self) -> None:
        """Cancel running executors and end every subscription (at shutdown)."""
        records = list(self._local_records())
        runs = [r.run for r in records if r.run is not None]
        for run in runs:
            run.cancel()
        for run in runs:
            await run.wait(5.0)
        for record in records:
            self._close_subscribers(record)

    def _local_records(self) -> list[TaskRecord]:
        """The records this process holds (their runs and subscribers are here)."""
        return list(self._records.values())

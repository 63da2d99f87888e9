"""The durable A2A task store: tasks in the database, so a restart or a second replica still
knows them.

`DatabaseTaskStore` keeps the interface and the semantics of the memory store (`task_store`):
per-owner visibility (anyone else gets -32001), the same ListTasks order, cursor and filters,
history and artifacts bounded, the oldest tasks evicted first (finished before live), per owner
and per agent. Every change is written in one transaction that first re-reads the row, so two
replicas changing one task never overwrite each other's changes; reads (`find`, `get`, `page`)
come from the database. Changes are numbered by the agent's row in `a2a_task_clocks`, locked
first by every change, so replicas share one update order and two changes never wait on each
other's task rows in opposite orders.

What stays in the process: live subscribers and the running executor. The row names the
process running the task (`runner`, renewed every `heartbeat_seconds`), so that:

- a second message to a task running in another replica is refused as busy, like one to a task
  running here;
- CancelTask of a task running in another replica writes CANCELED at once; the replica running
  it stops its executor as soon as it reads the row again: at the run's next output (its write
  finds the task finished), a GetTask or ListTasks there, or its next heartbeat;
- SubscribeToTask of a task running in another replica is refused (-32004) with a message to
  poll GetTask instead: only the running replica streams live updates;
- a task left SUBMITTED or WORKING by a process that died (its runner missed its heartbeats for
  `stale_seconds`, or no runner is named) is marked FAILED, with a status message saying the
  agent stopped before the task finished, at start-up and by every replica's heartbeat sweep.
  Interrupted tasks (input or auth required) are kept: they wait for the next message.

Finished tasks older than `retention_seconds` are deleted by the heartbeat sweep. The store's
interface is the memory store's, synchronous: its short transactions run on the event loop and
hold it for their duration (a SQLite writer may wait for another's file lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bastion.config import Settings
from bastion.protocol.a2a import (
    DEFAULT_PAGE_SIZE,
    TERMINAL_STATES,
    Message,
    Metadata,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    agent_message,
    utc_now,
)
from bastion.runtime.a2a_executor import ArtifactUpdate, new_id
from bastion.runtime.task_store import (
    RunHandle,
    TaskRecord,
    TaskStore,
    busy_error,
    decode_cursor,
    encode_cursor,
)
from bastion.storage import A2ATask, A2ATaskClock, shared_engine, write_transaction

log = structlog.get_logger("bastion.a2a")

_TERMINAL = sorted(state.value for state in TERMINAL_STATES)
_ORPHAN_STATES = (TaskState.SUBMITTED.value, TaskState.WORKING.value)
ORPHAN_MESSAGE = (
    "The agent stopped (a restart or a crash) before this task finished; send the message again."
)


# A row of `a2a_tasks` as read by Core (`row.seq`, `row.task`, ...).
TaskRow = Row[Any]


class TaskTablesMissing(RuntimeError):
    """The database has no A2A task tables: its schema predates them."""


_EPOCH = datetime.fromtimestamp(0, UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: datetime) -> int:
    """Whole milliseconds since the epoch (exact: no float rounding), rounded down."""
    return (value - _EPOCH) // _MS


def _from_ms(value: int) -> datetime:
    return _EPOCH + value * _MS


class DatabaseTaskStore(TaskStore):
    """A2A tasks of the agent `agent` in the database behind `engine`."""

    def __init__(
        self,
        engine: Engine,
        *,
        agent: str,
        max_tasks: int = 10_000,
        max_tasks_per_principal: int = 1_000,
        max_history: int = 200,
        max_artifacts: int = 100,
        subscriber_queue: int = 1_000,
        retention_seconds: float = 7 * 24 * 3600.0,
        heartbeat_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            max_tasks=max_tasks,
            max_tasks_per_principal=max_tasks_per_principal,
            max_history=max_history,
            max_artifacts=max_artifacts,
            subscriber_queue=subscriber_queue,
        )
        if min(retention_seconds, heartbeat_seconds) <= 0:
            raise ValueError("DatabaseTaskStore retention and heartbeat must be positive")
        self.engine = engine
        self.agent = agent
        self.runner = uuid.uuid4().hex  # this store instance, as named in the rows it runs
        self.retention_seconds = retention_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = 3 * heartbeat_seconds
        self._clock = clock
        # The tasks with a run or a subscriber in this process.
        self._live: dict[str, TaskRecord] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._clock_ready = False

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return self._count(conn, [A2ATask.agent == self.agent])

    @staticmethod
    def _count(conn: Connection, where: list[ColumnElement[bool]]) -> int:
        query = select(func.count()).select_from(A2ATask).where(*where)
        return int(conn.execute(query).scalar_one())

    def _delete(self, conn: Connection, ids: list[str]) -> None:
        if ids:
            conn.execute(delete(A2ATask).where(A2ATask.agent == self.agent, A2ATask.id.in_(ids)))

    # -- rows --------------------------------------------------------------------------------

    def _alive(self, row: TaskRow) -> bool:
        """The row's runner is another process that renewed its claim recently."""
        return (
            row.runner is not None
            and row.runner != self.runner
            and row.runner_seen is not None
            and row.runner_seen >= self._clock() - self.stale_seconds
            and row.state not in _TERMINAL
        )

    def _adopt(self, record: TaskRecord, row: TaskRow) -> None:
        """Bring the record up to its row. A task that finished elsewhere (another replica
        canceled it) while a run here still works on it: the run is stopped."""
        was_open = not record.state.is_terminal
        task = Task.model_validate_json(row.task)
        task.artifacts = list(task.artifacts or [])
        task.history = list(task.history or [])
        record.task = task
        record.seq = row.seq
        record.elsewhere = self._alive(row)
        if record.run is not None and was_open and record.state.is_terminal:
            record.run.cancel()

    def _record(self, row: TaskRow) -> TaskRecord:
        """The row as a record: this process's live record (refreshed) when it has one."""
        record = self._live.get(row.id)
        if record is None:
            record = TaskRecord(owner=row.owner, task=Task.model_validate_json(row.task), seq=0)
        self._adopt(record, row)
        return record

    def _values(self, record: TaskRecord) -> dict[str, object]:
        task = record.task
        assert task.status.timestamp is not None
        return {
            "context_id": task.context_id,
            "state": task.status.state.value,
            "status_ms": _ms(task.status.timestamp),
            "seq": record.seq,
            "task": task.model_dump_json(by_alias=True, exclude_none=True),
        }

    def _where_task(self, task_id: str) -> ColumnElement[bool]:
        return and_(A2ATask.agent == self.agent, A2ATask.id == task_id)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction holding the agent's clock row (locked first by every change)."""
        if not self._clock_ready:
            self._ensure_clock()
        with write_transaction(self.engine) as conn:
            self._lock_clock(conn)
            yield conn

    def _lock_clock(self, conn: Connection) -> Row[Any]:
        query = select(A2ATaskClock).where(A2ATaskClock.agent == self.agent).with_for_update()
        clock = conn.execute(query).first()
        if clock is None:
            raise TaskTablesMissing(f"the task clock of agent {self.agent!r} was deleted")
        return clock

    def _stamp_in(self, conn: Connection) -> tuple[int, datetime]:
        """The agent's next sequence number and a status timestamp later than the last one."""
        clock = self._lock_clock(conn)
        seq = clock.seq + 1
        now = max(_ms(utc_now()), clock.last_ms + 1)
        conn.execute(
            update(A2ATaskClock)
            .where(A2ATaskClock.agent == self.agent)
            .values(seq=seq, last_ms=now)
        )
        return seq, _from_ms(now)

    def _ensure_clock(self) -> None:
        with self.engine.connect() as conn:
            exists = conn.execute(
                select(A2ATaskClock.agent).where(A2ATaskClock.agent == self.agent)
            ).first()
        if exists is None:
            # Another replica may be inserting it at the same time: either insert will do.
            with contextlib.suppress(IntegrityError), write_transaction(self.engine) as conn:
                conn.execute(insert(A2ATaskClock).values(agent=self.agent, seq=0, last_ms=0))
        self._clock_ready = True

    # -- lookup ------------------------------------------------------------------------------

    def find(self, owner: str, task_id: str) -> TaskRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(A2ATask).where(self._where_task(task_id))).first()
        if row is None or row.owner != owner:
            return None
        return self._record(row)

    # -- changes -----------------------------------------------------------------------------

    def create(self, owner: str, task: Task, run: RunHandle | None = None) -> TaskRecord:
        with self._write() as conn:
            taken = conn.execute(select(A2ATask.id).where(self._where_task(task.id))).first()
            if taken is not None:
                raise ValueError(f"task {task.id} already exists")
            seq, now = self._stamp_in(conn)
            record = self._new_record(owner, task, seq, now, run)
            conn.execute(
                insert(A2ATask).values(
                    agent=self.agent,
                    id=task.id,
                    owner=owner,
                    runner=self.runner if run is not None else None,
                    runner_seen=self._clock() if run is not None else None,
                    **self._values(record),
                )
            )
            evicted = self._evict_rows(conn, owner)
        if run is not None:
            self._live[task.id] = record
        for task_id in evicted:
            self._let_go(task_id)
        return record

    def attach_run(self, record: TaskRecord, run: RunHandle) -> None:
        """Claim the task for `run`, unless a live process runs it (then it is busy)."""
        now = self._clock()
        with write_transaction(self.engine) as conn:
            claimed = conn.execute(
                update(A2ATask)
                .where(
                    self._where_task(record.task.id),
                    or_(
                        A2ATask.runner.is_(None),
                        A2ATask.runner == self.runner,
                        A2ATask.runner_seen < now - self.stale_seconds,
                    ),
                )
                .values(runner=self.runner, runner_seen=now)
            ).rowcount
        if not claimed:
            raise busy_error(record.task.id)
        record.run = run
        record.elsewhere = False
        self._live[record.task.id] = record

    def detach_run(self, record: TaskRecord, run: RunHandle) -> None:
        if record.run is not run:
            return
        record.run = None
        if not record.subscribers:
            self._live.pop(record.task.id, None)
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(A2ATask)
                .where(self._where_task(record.task.id), A2ATask.runner == self.runner)
                .values(runner=None, runner_seen=None)
            )

    def _change(
        self,
        record: TaskRecord,
        apply: Callable[[Connection | None], None],
        still: Callable[[TaskRow], bool] = lambda _row: True,
    ) -> bool:
        """Apply a change to the task's newest state and write it; False when it could not be
        written because the task finished meanwhile (another replica canceled it: the run here
        is stopped), is gone (evicted: applied to the record only, as in memory), or its row
        no longer meets `still`."""
        with self._write() as conn:
            query = select(A2ATask).where(self._where_task(record.task.id)).with_for_update()
            row = conn.execute(query).first()
            if row is not None:
                self._adopt(record, row)
                if not still(row):
                    return False
                if not record.state.is_terminal:
                    apply(conn)
                    conn.execute(
                        update(A2ATask)
                        .where(self._where_task(record.task.id))
                        .values(**self._values(record))
                    )
                    return True
        if row is None:
            apply(None)
        return False

    def _stamp_or_local(self, conn: Connection | None) -> tuple[int, datetime]:
        if conn is not None:
            return self._stamp_in(conn)
        now = utc_now()
        return self._seq, now.replace(microsecond=now.microsecond // 1000 * 1000)

    def set_status(
        self, record: TaskRecord, status: TaskStatus, metadata: Metadata | None = None
    ) -> TaskStatusUpdateEvent:
        def apply(conn: Connection | None) -> None:
            seq, now = self._stamp_or_local(conn)
            self._apply_status(record, status, seq, now)

        written = self._change(record, apply)
        return self._announce_status(record, metadata if written else None)

    def add_artifact(self, record: TaskRecord, update: ArtifactUpdate) -> TaskArtifactUpdateEvent:
        written = self._change(record, lambda _conn: self._apply_artifact(record, update))
        if not written and record.state.is_terminal:
            self._announce_status(record)  # subscribers here learn how it ended
        return self._announce_artifact(record, update)

    def append_history(self, record: TaskRecord, message: Message) -> None:
        self._change(record, lambda _conn: self._apply_history(record, message))

    def _evict_rows(self, conn: Connection, owner: str) -> list[str]:
        """Delete the owner's and then the agent's oldest tasks beyond the bounds."""
        evicted: list[str] = []
        finished_first = case((A2ATask.state.in_(_TERMINAL), 0), else_=1)
        for scope, limit in (
            ([A2ATask.agent == self.agent, A2ATask.owner == owner], self.max_tasks_per_principal),
            ([A2ATask.agent == self.agent], self.max_tasks),
        ):
            count = self._count(conn, scope)
            if count <= limit:
                continue
            ids = list(
                conn.execute(
                    select(A2ATask.id)
                    .where(*scope)
                    .order_by(finished_first, A2ATask.seq)
                    .limit(count - limit)
                ).scalars()
            )
            self._delete(conn, ids)
            evicted.extend(ids)
        return evicted

    def _let_go(self, task_id: str) -> None:
        """The task is gone from the database: stop its run here and end its streams."""
        record = self._live.pop(task_id, None)
        if record is not None:
            self._stop(record)

    # -- views -------------------------------------------------------------------------------

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
        cursor = decode_cursor(page_token) if page_token else None
        where = [A2ATask.agent == self.agent, A2ATask.owner == owner]
        if context_id is not None:
            where.append(A2ATask.context_id == context_id)
        if state is not None:
            where.append(A2ATask.state == state.value)
        if updated_after is not None:
            # Status timestamps are whole milliseconds: later than `updated_after` is later
            # than its whole milliseconds.
            where.append(A2ATask.status_ms > _ms(updated_after))
        with self.engine.connect() as conn:
            total = self._count(conn, where)
            query = select(A2ATask).where(*where)
            if cursor is not None:
                query = query.where(A2ATask.seq < cursor)
            rows = list(conn.execute(query.order_by(A2ATask.seq.desc()).limit(page_size + 1)))
        records = [self._record(row) for row in rows[:page_size]]
        next_token = encode_cursor(records[-1].seq) if len(rows) > page_size else ""
        return records, next_token, int(total)

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, record: TaskRecord) -> asyncio.Queue[StreamResponse | None]:
        self._live[record.task.id] = record
        return super().subscribe(record)

    def unsubscribe(  # type: ignore[override]  # the memory store's is static
        self, record: TaskRecord, queue: asyncio.Queue[StreamResponse | None]
    ) -> None:
        record.subscribers.discard(queue)
        if not record.subscribers and record.run is None:
            self._live.pop(record.task.id, None)

    # -- recovery, retention, heartbeat ------------------------------------------------------

    def fail_orphans(self) -> int:
        """Mark FAILED the SUBMITTED/WORKING tasks no live process runs; how many."""
        cutoff = self._clock() - self.stale_seconds
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(A2ATask).where(
                        A2ATask.agent == self.agent,
                        A2ATask.state.in_(_ORPHAN_STATES),
                        or_(A2ATask.runner.is_(None), A2ATask.runner_seen < cutoff),
                    )
                )
            )
        failed = 0
        for row in rows:
            if row.id in self._live:
                continue  # run here (its claim is renewed by this process's heartbeat)
            record = self._record(row)
            status = TaskStatus(
                state=TaskState.FAILED,
                message=agent_message(
                    ORPHAN_MESSAGE,
                    message_id=new_id(),
                    context_id=record.task.context_id,
                    task_id=record.task.id,
                ),
            )

            def apply(
                conn: Connection | None, r: TaskRecord = record, s: TaskStatus = status
            ) -> None:
                self._apply_status(r, s, *self._stamp_or_local(conn))

            def orphaned(current: TaskRow) -> bool:
                return current.state in _ORPHAN_STATES and (
                    current.runner is None
                    or current.runner_seen is None
                    or current.runner_seen < cutoff
                )

            if self._change(record, apply, orphaned):
                failed += 1
        if failed:
            log.warning("a2a tasks left unfinished by a stopped process failed", count=failed)
        return failed

    def purge_expired(self) -> int:
        """Delete the finished tasks older than `retention_seconds`; how many."""
        cutoff_ms = int((self._clock() - self.retention_seconds) * 1000)
        with self._write() as conn:
            ids = list(
                conn.execute(
                    select(A2ATask.id).where(
                        A2ATask.agent == self.agent,
                        A2ATask.state.in_(_TERMINAL),
                        A2ATask.status_ms < cutoff_ms,
                    )
                ).scalars()
            )
            self._delete(conn, ids)
        for task_id in ids:
            self._let_go(task_id)
        return len(ids)

    def beat(self) -> None:
        """Renew the claim on the tasks run here, stop the runs of tasks another replica
        finished (canceled), fail orphans and delete expired finished tasks."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(A2ATask)
                .where(A2ATask.agent == self.agent, A2ATask.runner == self.runner)
                .values(runner_seen=self._clock())
            )
            finished = list(
                conn.execute(
                    select(A2ATask).where(
                        A2ATask.agent == self.agent,
                        A2ATask.runner == self.runner,
                        A2ATask.state.in_(_TERMINAL),
                    )
                )
            )
        for row in finished:
            if row.id in self._live:
                self._record(row)  # stops a run whose task was canceled elsewhere
        self.fail_orphans()
        self.purge_expired()

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                self.beat()
            except SQLAlchemyError as exc:
                log.warning("a2a task heartbeat failed", error=type(exc).__name__)

    async def start(self) -> None:
        """Check the tables, fail the tasks a stopped process left, start the heartbeat."""
        try:
            self._ensure_clock()
            self.fail_orphans()
            self.purge_expired()
        except SQLAlchemyError as exc:
            raise TaskTablesMissing(
                "cannot use the A2A task tables of the database "
                f"({type(exc).__name__}): is its schema up to date? `bastion init` creates and "
                "migrates it; or set server.task_store: memory to keep tasks in memory"
            ) from None
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat_forever(), name="a2a-task-heartbeat")

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await super().aclose()

    def _local_records(self) -> list[TaskRecord]:
        return list(self._live.values())


def task_store_for(settings: Settings, agent: str) -> TaskStore:
    """The task store `server.task_store` chooses for `agent`: its tables in `database.url`
    (the default), or memory."""
    if settings.server.task_store == "memory":
        return TaskStore()
    return DatabaseTaskStore(shared_engine(settings.database_url()), agent=agent)

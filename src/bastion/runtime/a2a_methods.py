"""The A2A v1.0 standard methods over an agent-supplied executor, and the task store behind them.

    service = register_a2a_methods(registry, executor)          # TaskStore() by default

registers `SendMessage`, `SendStreamingMessage`, `GetTask`, `ListTasks`, `CancelTask`,
`SubscribeToTask`, the four push-notification config methods (-32003: this runtime does not
push) and `GetExtendedAgentCard` (-32004: no extended card is declared).

**Executor.** An async generator function that turns one incoming message into agent output:

    async def executor(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield ctx.artifact(ctx.message.parts)      # a TaskArtifactUpdateEvent
        yield completed("done")                   # a TaskStatusUpdateEvent (terminal)

It yields `StatusUpdate`s (task state, optional status message), `ArtifactUpdate`s, or a
`Message`. A `Message` yielded before anything else is a direct reply: no task is created and
the call returns (or the stream carries) just that message. Any other first output creates the
task (`TASK_STATE_SUBMITTED`, the user message as history) and then applies. A `Message`
yielded once a task exists completes the task with that message as its status message. When
the executor returns, a task still `SUBMITTED`/`WORKING` is completed; a task in an interrupted
state (`INPUT_REQUIRED`, `AUTH_REQUIRED`) waits for the next message with its `taskId`. A
terminal state ends the run (the generator is closed). An `RpcError` raised before any output
becomes the call's error; any other failure fails the task (details only in the server log).

The executor runs in its own asyncio task: `SendMessage` returns once the task is terminal or
interrupted (or right after the task exists, with `configuration.returnImmediately`), streams
follow it live, and `CancelTask` cancels it.

**TaskStore.** In memory, bounded (oldest tasks evicted first, finished ones before live ones),
one process. A task is visible only to the principal that created it: anyone else gets -32001
exactly as if it did not exist.

**A2A-Version.** Each of these methods first negotiates the version: an absent or empty header
means "0.3", patch numbers are ignored, and anything but the served versions ("1.0") is -32009.
Bastion's own named methods (`echo`, ...) are not versioned.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from bastion.protocol.a2a import (
    DEFAULT_PAGE_SIZE,
    PROTOCOL_VERSION,
    Artifact,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Metadata,
    Part,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    a2a_error,
    agent_message,
    as_parts,
    check_version,
    utc_now,
)
from bastion.protocol.errors import (
    CONTENT_TYPE_NOT_SUPPORTED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    PUSH_NOTIFICATION_NOT_SUPPORTED,
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    UNSUPPORTED_OPERATION,
    RpcError,
)
from bastion.runtime.context import CallContext
from bastion.runtime.methods import MethodRegistry, validation_problems

log = structlog.get_logger("bastion.a2a")

SUPPORTED_VERSIONS: Final = frozenset({PROTOCOL_VERSION})

A2A_METHODS: Final = (
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
)


def new_id() -> str:
    return str(uuid.uuid4())


# -- executor interface ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Move the task to `state`; `message` (text or a Message) becomes its status message."""

    state: TaskState
    message: str | Message | None = None
    metadata: Metadata | None = None


@dataclass(frozen=True, slots=True)
class ArtifactUpdate:
    """Add an artifact, or (with `append`) extend the artifact with the same id."""

    artifact: Artifact
    append: bool = False
    last_chunk: bool = False


AgentOutput = StatusUpdate | ArtifactUpdate | Message


def working(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.WORKING, message)


def completed(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.COMPLETED, message)


def input_required(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.INPUT_REQUIRED, message)


def auth_required(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.AUTH_REQUIRED, message)


def failed(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.FAILED, message)


def rejected(message: str | Message | None = None) -> StatusUpdate:
    return StatusUpdate(TaskState.REJECTED, message)


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What the executor gets for one incoming message.

    `message` already carries the task's `taskId` and `contextId`. `task` is a snapshot of the
    task being continued (None for a new one). `metadata` is the request's metadata.
    """

    message: Message
    task_id: str
    context_id: str
    principal: str
    task: Task | None = None
    configuration: SendMessageConfiguration | None = None
    metadata: Metadata | None = None
    streaming: bool = False

    @property
    def text(self) -> str:
        """The incoming message's text parts, joined with newlines."""
        return self.message.text

    def reply(self, content: str | Part | list[Part]) -> Message:
        """An agent message in this task's context."""
        return agent_message(
            content, message_id=new_id(), context_id=self.context_id, task_id=self.task_id
        )

    def artifact(
        self,
        content: str | Part | Sequence[Part],
        *,
        name: str | None = None,
        artifact_id: str | None = None,
        append: bool = False,
        last_chunk: bool = False,
    ) -> ArtifactUpdate:
        """An artifact update from text, a part or parts (a fresh id unless given)."""
        return ArtifactUpdate(
            Artifact(artifact_id=artifact_id or new_id(), name=name, parts=as_parts(content)),
            append=append,
            last_chunk=last_chunk,
        )


Executor = Callable[[ExecutionContext], AsyncIterator[AgentOutput]]


# -- task store -----------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class TaskRecord:
    """One stored task: its owner, its full state, its live subscribers and its running run."""

    owner: str
    task: Task  # artifacts and history are always lists here
    seq: int  # store-wide counter, bumped on every status change: the list order
    subscribers: set[asyncio.Queue[StreamResponse | None]] = field(default_factory=set)
    run: _Run | None = None

    @property
    def state(self) -> TaskState:
        return self.task.status.state


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{seq}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(token: str) -> int:
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

    def create(self, owner: str, task: Task) -> TaskRecord:
        """Store a new task (its timestamp and order are assigned here)."""
        if task.id in self._records:
            raise ValueError(f"task {task.id} already exists")
        seq, now = self._stamp()
        stored = task.model_copy(
            update={
                "status": task.status.model_copy(update={"timestamp": now}),
                "artifacts": list(task.artifacts or []),
                "history": list(task.history or [])[-self.max_history :],
            }
        )
        record = TaskRecord(owner=owner, task=stored, seq=seq)
        self._records[task.id] = record
        self._by_owner.setdefault(owner, OrderedDict())[task.id] = record
        self._evict(owner)
        return record

    def set_status(
        self, record: TaskRecord, status: TaskStatus, metadata: Metadata | None = None
    ) -> TaskStatusUpdateEvent:
        """Change the task's status (timestamped now) and tell its subscribers."""
        seq, now = self._stamp()
        record.seq = seq
        record.task.status = status.model_copy(update={"timestamp": now})
        if status.message is not None:
            self.append_history(record, status.message)
        self._touch(record)
        event = TaskStatusUpdateEvent(
            task_id=record.task.id,
            context_id=record.task.context_id,
            status=record.task.status,
            metadata=metadata,
        )
        self.publish(record, StreamResponse(status_update=event))
        if status.state.is_terminal:
            self._close_subscribers(record)
        return event

    def add_artifact(self, record: TaskRecord, update: ArtifactUpdate) -> TaskArtifactUpdateEvent:
        """Add (or append to) an artifact and tell the task's subscribers."""
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
        cursor = _decode_cursor(page_token) if page_token else None
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
        next_token = _encode_cursor(page[-1].seq) if len(after) > page_size else ""
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

    async def aclose(self) -> None:
        """Cancel running executors and end every subscription (at shutdown)."""
        runs = [r.run for r in self._records.values() if r.run is not None]
        for run in runs:
            run.cancel()
        for run in runs:
            await run.wait(5.0)
        for record in self._records.values():
            self._close_subscribers(record)


# -- one executor run -----------------------------------------------------------------------


class _End:
    """Marks the end of a run's event queue."""


_END: Final = _End()
_RunItem = StreamResponse | RpcError | _End


class _Run:
    """Drives one executor invocation, applying its outputs to the store in order.

    The caller that started the run (SendMessage or SendStreamingMessage) reads `events` until
    `_END`; once it detaches, the run goes on alone and only the store and subscribers see it.
    """

    def __init__(
        self,
        service: A2AService,
        *,
        owner: str,
        message: Message,
        record: TaskRecord | None,
        context: ExecutionContext,
        correlation_id: str,
    ) -> None:
        self.service = service
        self.store = service.store
        self.owner = owner
        self.message = message
        self.record = record
        self.context = context
        self.correlation_id = correlation_id
        self.events: asyncio.Queue[_RunItem] = asyncio.Queue()
        self.detached = False
        self.replied = False  # a direct Message went out
        self._emitted = False  # anything went to the caller
        self._started = False  # the task exists and the user message is in its history
        self._task: asyncio.Task[None] | None = None
        if record is not None:
            record.run = self

    def start(self) -> None:
        self._task = asyncio.create_task(self._drive(), name=f"a2a-run-{self.context.task_id}")
        self.service.track(self._task)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self, timeout: float) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=timeout)

    def detach(self) -> None:
        self.detached = True
        while not self.events.empty():
            self.events.get_nowait()

    def _emit(self, item: _RunItem) -> None:
        if not isinstance(item, _End):
            self._emitted = True
        if not self.detached:
            self.events.put_nowait(item)

    # -- applying outputs --------------------------------------------------------------------

    def _ensure_task(self) -> TaskRecord:
        """The run's task, created (or, for a continuation, resumed) on first use."""
        if self.record is None:
            task = Task(
                id=self.context.task_id,
                context_id=self.context.context_id,
                status=TaskStatus(state=TaskState.SUBMITTED),
                history=[self.message],
            )
            self.record = self.store.create(self.owner, task)
            self.record.run = self
            self._started = True
            self._emit(StreamResponse(task=self.store.snapshot(self.record)))
        elif not self._started:
            self.store.append_history(self.record, self.message)
            self._started = True
            self._emit(StreamResponse(task=self.store.snapshot(self.record)))
        return self.record

    def _status_message(self, message: str | Message | None) -> Message | None:
        if message is None:
            return None
        if isinstance(message, str):
            return self.context.reply(message)
        return message.model_copy(
            update={
                "context_id": message.context_id or self.context.context_id,
                "task_id": message.task_id or self.context.task_id,
            }
        )

    def _set_status(self, update: StatusUpdate) -> None:
        record = self._ensure_task()
        status = TaskStatus(state=update.state, message=self._status_message(update.message))
        event = self.store.set_status(record, status, update.metadata)
        self._emit(StreamResponse(status_update=event))

    def _apply(self, output: AgentOutput) -> bool:
        """Apply one output; True when the run is over (terminal state or direct reply)."""
        if self.record is not None and self._started and self.record.state.is_terminal:
            log.warning("executor output after a terminal state ignored", task=self.context.task_id)
            return True
        if isinstance(output, Message):
            if self.record is None:
                self.replied = True
                # No task exists, so the reply belongs to none (`ctx.reply` sets the would-be id).
                reply = output.model_copy(
                    update={
                        "context_id": output.context_id or self.context.context_id,
                        "task_id": None,
                    }
                )
                self._emit(StreamResponse(message=reply))
                return True
            self._set_status(StatusUpdate(TaskState.COMPLETED, output))
            return True
        if isinstance(output, ArtifactUpdate):
            record = self._ensure_task()
            event = self.store.add_artifact(record, output)
            self._emit(StreamResponse(artifact_update=event))
            return False
        if isinstance(output, StatusUpdate):
            self._set_status(output)
            return output.state.is_terminal
        raise TypeError(f"executor yielded {type(output).__name__}, not an A2A output")

    def _fail(self, text: str) -> None:
        record = self.record
        if record is None or not self._started:
            record = self._ensure_task()
        if not record.state.is_terminal:
            self._set_status(failed(text))

    async def _drive(self) -> None:
        outputs = self.service.executor(self.context)
        try:
            async for output in outputs:
                if self._apply(output):
                    break
            if not self.replied:
                record = self._ensure_task()
                if record.state in (TaskState.SUBMITTED, TaskState.WORKING):
                    self._set_status(completed())
        except asyncio.CancelledError:
            # CancelTask, eviction or shutdown: the caller still gets a task, ended CANCELED.
            if not self.replied and not self._ensure_task().state.is_terminal:
                self._set_status(StatusUpdate(TaskState.CANCELED))
        except RpcError as err:
            if not self._emitted:
                self._emit(err)
            else:
                self._fail(f"The agent stopped with an error: {err.message}")
        except Exception:
            log.exception(
                "executor failed", task=self.context.task_id, correlation_id=self.correlation_id
            )
            if not self._emitted:
                self._emit(RpcError(INTERNAL_ERROR, data={"correlation_id": self.correlation_id}))
            else:
                self._fail(f"The agent failed (correlation id {self.correlation_id}).")
        finally:
            with contextlib.suppress(Exception):
                await outputs.aclose()  # type: ignore[attr-defined]
            if self.record is not None and self.record.run is self:
                self.record.run = None
            self._emit(_END)


# -- the methods ----------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


class _RawParams(BaseModel):
    """Params are taken as given and validated after the version check."""

    model_config = ConfigDict(extra="allow")

    @property
    def given(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _parse(model: type[M], params: _RawParams) -> M:
    try:
        return model.model_validate(params.given)
    except ValidationError as exc:
        raise RpcError(INVALID_PARAMS, data=validation_problems(exc)) from None


def _media_type_of(part: Part) -> str | None:
    if part.media_type:
        return part.media_type.split(";")[0].strip().lower()
    if part.text is not None:
        return "text/plain"
    if part.data is not None:
        return "application/json"
    return None


def _accepts(modes: Sequence[str], media_type: str) -> bool:
    major = media_type.split("/")[0]
    for mode in modes:
        mode = mode.split(";")[0].strip().lower()
        if mode in (media_type, "*/*", "*", f"{major}/*"):
            return True
    return False


class A2AService:
    """The A2A methods of one agent: an executor, a task store and the version policy."""

    def __init__(
        self,
        executor: Executor,
        store: TaskStore,
        *,
        versions: frozenset[str] = SUPPORTED_VERSIONS,
        input_modes: Sequence[str] | None = None,
        streaming: bool = True,
        subscription_idle_seconds: float = 300.0,
        cancel_grace_seconds: float = 5.0,
    ) -> None:
        self.executor = executor
        self.store = store
        self.versions = versions
        self.input_modes = list(input_modes) if input_modes is not None else None
        self.streaming = streaming
        self.subscription_idle_seconds = subscription_idle_seconds
        self.cancel_grace_seconds = cancel_grace_seconds
        self._background: set[asyncio.Task[None]] = set()

    def track(self, task: asyncio.Task[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Stop every running executor (their tasks end CANCELED) and every subscription."""
        running = list(self._background)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=5.0)
        await self.store.aclose()

    # -- checks ------------------------------------------------------------------------------

    def _version(self, ctx: CallContext) -> None:
        check_version(ctx.headers, self.versions)

    def _check_streaming(self) -> None:
        if not self.streaming:
            raise a2a_error(UNSUPPORTED_OPERATION, "This agent does not stream")

    def _check_media_types(self, message: Message) -> None:
        if self.input_modes is None:
            return
        for part in message.parts:
            media_type = _media_type_of(part)
            if media_type is not None and not _accepts(self.input_modes, media_type):
                raise a2a_error(
                    CONTENT_TYPE_NOT_SUPPORTED,
                    f"Media type {media_type!r} is not accepted; accepted: "
                    + ", ".join(self.input_modes),
                    mediaType=media_type[:255],
                )

    # -- starting a run ----------------------------------------------------------------------

    def _begin(self, request: SendMessageRequest, ctx: CallContext, *, streaming: bool) -> _Run:
        message = request.message
        config = request.configuration
        if config is not None and config.task_push_notification_config is not None:
            raise a2a_error(
                PUSH_NOTIFICATION_NOT_SUPPORTED, "This agent does not send push notifications"
            )
        self._check_media_types(message)
        owner = ctx.principal
        record: TaskRecord | None = None
        if message.task_id is not None:
            record = self.store.get(owner, message.task_id)
            if record.state.is_terminal:
                raise a2a_error(
                    UNSUPPORTED_OPERATION,
                    f"Task {record.task.id} is {record.state.value} and accepts no more messages",
                    taskId=record.task.id,
                )
            if message.context_id is not None and message.context_id != record.task.context_id:
                raise RpcError(
                    INVALID_PARAMS,
                    data=[
                        {
                            "field": "message.contextId",
                            "problem": "does not match the contextId of the task in taskId",
                        }
                    ],
                )
            if record.run is not None:
                raise a2a_error(
                    UNSUPPORTED_OPERATION,
                    f"Task {record.task.id} is still processing the previous message",
                    taskId=record.task.id,
                )
            task_id, context_id = record.task.id, record.task.context_id
        else:
            task_id, context_id = new_id(), message.context_id or new_id()
        message = message.model_copy(update={"task_id": task_id, "context_id": context_id})
        context = ExecutionContext(
            message=message,
            task_id=task_id,
            context_id=context_id,
            principal=owner,
            task=self.store.snapshot(record) if record is not None else None,
            configuration=config,
            metadata=request.metadata,
            streaming=streaming,
        )
        run = _Run(
            self,
            owner=owner,
            message=message,
            record=record,
            context=context,
            correlation_id=ctx.correlation_id,
        )
        run.start()
        return run

    # -- handlers ----------------------------------------------------------------------------

    async def send_message(self, params: _RawParams, ctx: CallContext) -> SendMessageResponse:
        self._version(ctx)
        request = _parse(SendMessageRequest, params)
        config = request.configuration or SendMessageConfiguration()
        wait = config.wait_for_completion
        run = self._begin(request, ctx, streaming=False)
        try:
            while True:
                item = await run.events.get()
                if isinstance(item, _End):
                    break
                if isinstance(item, RpcError):
                    raise item
                if item.message is not None:
                    return SendMessageResponse(message=item.message)
                if not wait:
                    break
                update = item.status_update
                if update is not None and (
                    update.status.state.is_terminal or update.status.state.is_interrupted
                ):
                    break
        finally:
            run.detach()
        if run.record is None:
            raise RpcError(INTERNAL_ERROR, data={"correlation_id": ctx.correlation_id})
        return SendMessageResponse(
            task=self.store.snapshot(run.record, history_length=config.history_length)
        )

    async def send_streaming_message(
        self, params: _RawParams, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        self._version(ctx)
        self._check_streaming()
        request = _parse(SendMessageRequest, params)
        run = self._begin(request, ctx, streaming=True)
        try:
            while True:
                item = await run.events.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, RpcError):
                    raise item
                yield item
                if item.message is not None:
                    return
        finally:
            run.detach()

    async def get_task(self, params: _RawParams, ctx: CallContext) -> Task:
        self._version(ctx)
        request = _parse(GetTaskRequest, params)
        record = self.store.get(ctx.principal, request.id)
        return self.store.snapshot(record, history_length=request.history_length)

    async def list_tasks(self, params: _RawParams, ctx: CallContext) -> ListTasksResponse:
        self._version(ctx)
        request = _parse(ListTasksRequest, params)
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        records, next_token, total = self.store.page(
            ctx.principal,
            context_id=request.context_id or None,
            state=request.status,
            updated_after=request.status_timestamp_after,
            page_size=page_size,
            page_token=request.page_token or None,
        )
        return ListTasksResponse(
            tasks=[
                self.store.snapshot(
                    r,
                    history_length=request.history_length,
                    include_artifacts=bool(request.include_artifacts),
                )
                for r in records
            ],
            next_page_token=next_token,
            page_size=page_size,
            total_size=total,
        )

    async def cancel_task(self, params: _RawParams, ctx: CallContext) -> Task:
        self._version(ctx)
        request = _parse(CancelTaskRequest, params)
        record = self.store.get(ctx.principal, request.id)
        if record.state.is_terminal:
            raise a2a_error(
                TASK_NOT_CANCELABLE,
                f"Task {record.task.id} is {record.state.value} and cannot be canceled",
                taskId=record.task.id,
            )
        run = record.run
        if run is not None:
            run.cancel()
            await run.wait(self.cancel_grace_seconds)
        if not record.state.is_terminal:
            self.store.set_status(record, TaskStatus(state=TaskState.CANCELED))
        elif record.state is not TaskState.CANCELED:
            raise a2a_error(
                TASK_NOT_CANCELABLE,
                f"Task {record.task.id} finished ({record.state.value}) before it could be "
                "canceled",
                taskId=record.task.id,
            )
        return self.store.snapshot(record)

    async def subscribe_to_task(
        self, params: _RawParams, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        self._version(ctx)
        self._check_streaming()
        request = _parse(SubscribeToTaskRequest, params)
        record = self.store.get(ctx.principal, request.id)
        if record.state.is_terminal:
            raise a2a_error(
                UNSUPPORTED_OPERATION,
                f"Task {record.task.id} is {record.state.value}: there is nothing to follow",
                taskId=record.task.id,
            )
        queue = self.store.subscribe(record)
        try:
            yield StreamResponse(task=self.store.snapshot(record))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.subscription_idle_seconds)
                except TimeoutError:
                    return  # idle: the client may subscribe again
                if event is None:
                    return
                yield event
                update = event.status_update
                if update is not None and update.status.state.is_terminal:
                    return
        finally:
            self.store.unsubscribe(record, queue)

    async def push_config(self, params: _RawParams, ctx: CallContext) -> None:
        """All four push-notification config methods: not supported here (-32003)."""
        self._version(ctx)
        model = _PUSH_MODELS.get(ctx.method)
        if model is not None:
            _parse(model, params)
        raise a2a_error(
            PUSH_NOTIFICATION_NOT_SUPPORTED,
            "This agent does not send push notifications (capabilities.pushNotifications is false)",
        )

    async def get_extended_agent_card(self, params: _RawParams, ctx: CallContext) -> None:
        """Not declared in the card (capabilities.extendedAgentCard is false): -32004."""
        self._version(ctx)
        _parse(GetExtendedAgentCardRequest, params)
        raise a2a_error(
            UNSUPPORTED_OPERATION,
            "This agent has no extended agent card (capabilities.extendedAgentCard is false)",
        )


_PUSH_MODELS: dict[str, type[BaseModel]] = {
    "CreateTaskPushNotificationConfig": TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": GetTaskPushNotificationConfigRequest,
    "ListTaskPushNotificationConfigs": ListTaskPushNotificationConfigsRequest,
    "DeleteTaskPushNotificationConfig": DeleteTaskPushNotificationConfigRequest,
}


def register_a2a_methods(
    registry: MethodRegistry,
    executor: Executor,
    store: TaskStore | None = None,
    *,
    versions: frozenset[str] = SUPPORTED_VERSIONS,
    input_modes: Sequence[str] | None = None,
    streaming: bool = True,
) -> A2AService:
    """Register the A2A v1.0 standard methods on `registry`, served by `executor`.

    `store` defaults to a fresh `TaskStore`. `versions` are the A2A-Version values served
    (Major.Minor). `input_modes` restricts the media types accepted in message parts
    (wildcards like `text/*` allowed; None accepts all). `streaming=False` makes the two
    streaming methods answer -32004. Returns the service; call its `aclose()` at shutdown.
    """
    service = A2AService(
        executor,
        store if store is not None else TaskStore(),
        versions=versions,
        input_modes=input_modes,
        streaming=streaming,
    )

    async def send_message(params: _RawParams, ctx: CallContext) -> SendMessageResponse:
        """A2A SendMessage: start or continue a task; returns the task or a direct reply."""
        return await service.send_message(params, ctx)

    async def send_streaming_message(
        params: _RawParams, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        """A2A SendStreamingMessage: the task (or reply), then its updates, as SSE."""
        async for event in service.send_streaming_message(params, ctx):
            yield event

    async def get_task(params: _RawParams, ctx: CallContext) -> Task:
        """A2A GetTask: the current state of one of the caller's tasks."""
        return await service.get_task(params, ctx)

    async def list_tasks(params: _RawParams, ctx: CallContext) -> ListTasksResponse:
        """A2A ListTasks: the caller's tasks, most recently updated first, paginated."""
        return await service.list_tasks(params, ctx)

    async def cancel_task(params: _RawParams, ctx: CallContext) -> Task:
        """A2A CancelTask: cancel one of the caller's unfinished tasks."""
        return await service.cancel_task(params, ctx)

    async def subscribe_to_task(
        params: _RawParams, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        """A2A SubscribeToTask: the task, then its updates until it finishes, as SSE."""
        async for event in service.subscribe_to_task(params, ctx):
            yield event

    async def push_config(params: _RawParams, ctx: CallContext) -> None:
        """A2A push-notification configuration: not supported by this runtime."""
        await service.push_config(params, ctx)

    async def get_extended_agent_card(params: _RawParams, ctx: CallContext) -> None:
        """A2A GetExtendedAgentCard: not offered by this runtime."""
        await service.get_extended_agent_card(params, ctx)

    handlers: list[tuple[str, Callable[..., Any], bool]] = [
        ("SendMessage", send_message, False),
        ("SendStreamingMessage", send_streaming_message, True),
        ("GetTask", get_task, False),
        ("ListTasks", list_tasks, False),
        ("CancelTask", cancel_task, False),
        ("SubscribeToTask", subscribe_to_task, True),
        *((name, push_config, False) for name in _PUSH_MODELS),
        ("GetExtendedAgentCard", get_extended_agent_card, False),
    ]
    for name, fn, is_streaming in handlers:
        registry.add(name, fn, streaming=is_streaming)
    return service


__all__ = [
    "A2A_METHODS",
    "SUPPORTED_VERSIONS",
    "A2AService",
    "AgentOutput",
    "ArtifactUpdate",
    "ExecutionContext",
    "Executor",
    "StatusUpdate",
    "TaskRecord",
    "TaskStore",
    "auth_required",
    "completed",
    "failed",
    "input_required",
    "new_id",
    "register_a2a_methods",
    "rejected",
    "working",
]

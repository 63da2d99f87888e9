"""The A2A v1.0 standard methods over an agent-supplied executor.

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

The executor interface lives in `a2a_executor`, the task store in `task_store` (in memory) and
`task_store_db` (in the database, shared by replicas: `server.task_store`); the first two are
re-exported here.

**A2A-Version.** Each of these methods first negotiates the version: an absent or empty header
means "0.3", patch numbers are ignored, and anything but the served versions ("1.0") is -32009.
Bastion's own named methods (`echo`, ...) are not versioned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from bastion.core.context import CallContext
from bastion.protocol.a2a import (
    DEFAULT_PAGE_SIZE,
    PROTOCOL_VERSION,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    a2a_error,
    check_version,
)
from bastion.protocol.errors import (
    CONTENT_TYPE_NOT_SUPPORTED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    PUSH_NOTIFICATION_NOT_SUPPORTED,
    TASK_NOT_CANCELABLE,
    UNSUPPORTED_OPERATION,
    RpcError,
)
from bastion.runtime.a2a_executor import (
    AgentOutput,
    ArtifactUpdate,
    ExecutionContext,
    Executor,
    StatusUpdate,
    auth_required,
    completed,
    failed,
    input_required,
    new_id,
    rejected,
    working,
)
from bastion.runtime.methods import MethodRegistry, validation_problems
from bastion.runtime.task_store import TaskRecord, TaskStore, busy_error

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
            service.store.attach_run(record, self)

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
            self.record = self.store.create(self.owner, task, run=self)
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
            if self.record is not None:
                with contextlib.suppress(Exception):
                    self.store.detach_run(self.record, self)
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

    async def start(self) -> None:
        """Prepare the task store (the durable one fails the tasks a dead process left)."""
        await self.store.start()

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
            if record.running:
                raise busy_error(record.task.id)
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
        if record.elsewhere:
            raise a2a_error(
                UNSUPPORTED_OPERATION,
                f"Task {record.task.id} is running in another replica of this agent, and live "
                "updates are only streamed by the replica that runs it: poll it with GetTask",
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
    streaming methods answer -32004. Returns the service; call its `start()` at start-up and
    its `aclose()` at shutdown.
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

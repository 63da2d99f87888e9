"""The A2A v1.0 data model (ProtoJSON shapes) as pydantic models, and A2A error/version helpers.

Field names are snake_case in Python and camelCase on the wire; input accepts both spellings
(ProtoJSON parsers do) and ignores unknown fields (forward compatibility, spec 5.7). Enums are
their proto names (`ROLE_USER`, `TASK_STATE_COMPLETED`); the proto numbers are accepted on input.
Timestamps are UTC ISO 8601 with millisecond precision and a `Z` suffix.

Validation is strict where the spec marks a field REQUIRED (a message needs a `messageId`, a
`role` and at least one part; a part carries exactly one of `text`/`raw`/`url`/`data`), so a
malformed request fails with -32602 before any agent code runs.

A2A errors (-32001..-32009) carry a `google.rpc.ErrorInfo` entry in `error.data`
(spec 9.5); build them with `a2a_error`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bastion.protocol.errors import (
    CONTENT_TYPE_NOT_SUPPORTED,
    EXTENDED_CARD_NOT_CONFIGURED,
    EXTENSION_SUPPORT_REQUIRED,
    INVALID_AGENT_RESPONSE,
    PUSH_NOTIFICATION_NOT_SUPPORTED,
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    UNSUPPORTED_OPERATION,
    VERSION_NOT_SUPPORTED,
    RpcError,
)

# -- versions -------------------------------------------------------------------------------

PROTOCOL_VERSION = "1.0"
VERSION_HEADER = "a2a-version"  # request headers are lower-cased by the server
DEFAULT_VERSION = "0.3"  # what an absent or empty A2A-Version header means (spec 3.6.2)

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?$")


def requested_version(headers: Mapping[str, str]) -> str:
    """The `Major.Minor` a request asks for; absent/empty means 0.3, patch is ignored.

    A value that is not `Major.Minor[.Patch]` is returned as sent (and is then unsupported).
    """
    raw = (headers.get(VERSION_HEADER) or "").strip()
    if not raw:
        return DEFAULT_VERSION
    match = _VERSION_RE.match(raw)
    if match is None:
        return raw
    return f"{int(match.group(1))}.{int(match.group(2))}"


def check_version(headers: Mapping[str, str], supported: frozenset[str]) -> str:
    """The negotiated version, or -32009 VersionNotSupportedError."""
    version = requested_version(headers)
    if version not in supported:
        offered = ", ".join(sorted(supported))
        raise a2a_error(
            VERSION_NOT_SUPPORTED,
            f"A2A version {version!r} is not supported; send the header A2A-Version: {offered}",
            requested=version[:32],
            supported=offered,
        )
    return version


# -- errors ---------------------------------------------------------------------------------

ERROR_DOMAIN = "a2a-protocol.org"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

ERROR_REASONS: dict[int, str] = {
    TASK_NOT_FOUND: "TASK_NOT_FOUND",
    TASK_NOT_CANCELABLE: "TASK_NOT_CANCELABLE",
    PUSH_NOTIFICATION_NOT_SUPPORTED: "PUSH_NOTIFICATION_NOT_SUPPORTED",
    UNSUPPORTED_OPERATION: "UNSUPPORTED_OPERATION",
    CONTENT_TYPE_NOT_SUPPORTED: "CONTENT_TYPE_NOT_SUPPORTED",
    INVALID_AGENT_RESPONSE: "INVALID_AGENT_RESPONSE",
    EXTENDED_CARD_NOT_CONFIGURED: "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    EXTENSION_SUPPORT_REQUIRED: "EXTENSION_SUPPORT_REQUIRED",
    VERSION_NOT_SUPPORTED: "VERSION_NOT_SUPPORTED",
}


def error_info(code: int, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `google.rpc.ErrorInfo` detail (ProtoJSON `Any`) for an A2A error code."""
    return {
        "@type": ERROR_INFO_TYPE,
        "reason": ERROR_REASONS[code],
        "domain": ERROR_DOMAIN,
        "metadata": dict(metadata or {}),
    }


def a2a_error(code: int, message: str | None = None, **metadata: str) -> RpcError:
    """An A2A error (-32001..-32009) whose `data` is `[ErrorInfo]`, as spec 9.5 requires.

    `metadata` values end up in `ErrorInfo.metadata` (a string map): never put secrets there.
    """
    return RpcError(code, message, data=[error_info(code, metadata)])


# -- base -----------------------------------------------------------------------------------


class A2AModel(BaseModel):
    """camelCase on the wire, either spelling accepted, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )

    def dump(self) -> dict[str, Any]:
        """The ProtoJSON form: camelCase keys, unset (None) fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _format_timestamp(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


Timestamp = Annotated[
    AwareDatetime, PlainSerializer(_format_timestamp, return_type=str, when_used="json")
]
"""A timezone-aware instant; serialized as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""

Metadata = dict[str, JsonValue]
Identifier = Annotated[str, Field(min_length=1, max_length=256)]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- enums ----------------------------------------------------------------------------------


class Role(StrEnum):
    USER = "ROLE_USER"
    AGENT = "ROLE_AGENT"


class TaskState(StrEnum):
    SUBMITTED = "TASK_STATE_SUBMITTED"
    WORKING = "TASK_STATE_WORKING"
    COMPLETED = "TASK_STATE_COMPLETED"
    FAILED = "TASK_STATE_FAILED"
    CANCELED = "TASK_STATE_CANCELED"
    INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
    REJECTED = "TASK_STATE_REJECTED"
    AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_interrupted(self) -> bool:
        return self in INTERRUPTED_STATES


TERMINAL_STATES = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED}
)
INTERRUPTED_STATES = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})

# Proto enum numbers, accepted on input as ProtoJSON parsers do.
_ROLE_NUMBERS = {1: Role.USER, 2: Role.AGENT}
_STATE_NUMBERS = {
    1: TaskState.SUBMITTED,
    2: TaskState.WORKING,
    3: TaskState.COMPLETED,
    4: TaskState.FAILED,
    5: TaskState.CANCELED,
    6: TaskState.INPUT_REQUIRED,
    7: TaskState.REJECTED,
    8: TaskState.AUTH_REQUIRED,
}


def _enum_number(value: Any, table: Mapping[int, Any]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return table.get(value, value)
    return value


# -- core objects ---------------------------------------------------------------------------

_PART_CONTENT = ("text", "raw", "url", "data")


def _is_base64(value: str) -> bool:
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class Part(A2AModel):
    """One piece of content: exactly one of `text`, `raw` (base64), `url` or `data`."""

    text: str | None = None
    raw: str | None = None
    url: Annotated[str, Field(min_length=1, max_length=8192)] | None = None
    data: JsonValue = None
    metadata: Metadata | None = None
    filename: Annotated[str, Field(max_length=1024)] | None = None
    media_type: Annotated[str, Field(max_length=255)] | None = None

    @field_validator("raw")
    @classmethod
    def _raw_is_base64(cls, value: str | None) -> str | None:
        if value is not None and not _is_base64(value):
            raise ValueError("raw must be base64-encoded bytes")
        return value

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Self:
        present = [name for name in _PART_CONTENT if getattr(self, name) is not None]
        if len(present) != 1:
            raise ValueError(
                "a part must carry exactly one of text, raw, url or data"
                + (f" (got {', '.join(present)})" if present else "")
            )
        return self

    @property
    def kind(self) -> str:
        """Which content field is set: `text`, `raw`, `url` or `data`."""
        return next(name for name in _PART_CONTENT if getattr(self, name) is not None)

    @classmethod
    def of_text(cls, text: str, **kw: Any) -> Part:
        return cls(text=text, **kw)

    @classmethod
    def of_data(cls, data: JsonValue, **kw: Any) -> Part:
        return cls(data=data, **kw)

    @classmethod
    def of_bytes(cls, content: bytes, **kw: Any) -> Part:
        return cls(raw=base64.b64encode(content).decode("ascii"), **kw)


class Message(A2AModel):
    """One turn of communication between a client (`ROLE_USER`) and an agent (`ROLE_AGENT`)."""

    message_id: Identifier
    role: Role
    parts: list[Part] = Field(min_length=1, max_length=1000)
    context_id: Identifier | None = None
    task_id: Identifier | None = None
    metadata: Metadata | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[Identifier] | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _role_number(cls, value: Any) -> Any:
        return _enum_number(value, _ROLE_NUMBERS)

    @property
    def text(self) -> str:
        """The text parts joined with newlines ("" when there are none)."""
        return "\n".join(p.text for p in self.parts if p.text is not None)


class TaskStatus(A2AModel):
    state: TaskState
    message: Message | None = None
    timestamp: Timestamp | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _state_number(cls, value: Any) -> Any:
        return _enum_number(value, _STATE_NUMBERS)


class Artifact(A2AModel):
    """An output of a task."""

    artifact_id: Identifier
    parts: list[Part] = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    metadata: Metadata | None = None
    extensions: list[str] | None = None


class Task(A2AModel):
    """A stateful unit of work. `artifacts`/`history` are omitted (None) when not requested."""

    id: Identifier
    context_id: Identifier
    status: TaskStatus
    artifacts: list[Artifact] | None = None
    history: list[Message] | None = None
    metadata: Metadata | None = None


# -- streaming events -----------------------------------------------------------------------


class TaskStatusUpdateEvent(A2AModel):
    task_id: Identifier
    context_id: Identifier
    status: TaskStatus
    metadata: Metadata | None = None


class TaskArtifactUpdateEvent(A2AModel):
    task_id: Identifier
    context_id: Identifier
    artifact: Artifact
    append: bool | None = None
    last_chunk: bool | None = None
    metadata: Metadata | None = None


class _OneOf(A2AModel):
    """A ProtoJSON oneof wrapper: exactly one field is set."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        present = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(present) != 1:
            raise ValueError(f"exactly one of {', '.join(type(self).model_fields)} must be set")
        return self


class StreamResponse(_OneOf):
    """One event of a stream: the task, a message, a status update or an artifact update."""

    task: Task | None = None
    message: Message | None = None
    status_update: TaskStatusUpdateEvent | None = None
    artifact_update: TaskArtifactUpdateEvent | None = None


class SendMessageResponse(_OneOf):
    task: Task | None = None
    message: Message | None = None


# -- requests -------------------------------------------------------------------------------

HistoryLength = Annotated[int, Field(ge=0, le=10_000)]
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50


class AuthenticationInfo(A2AModel):
    scheme: str = ""
    credentials: str | None = None


class TaskPushNotificationConfig(A2AModel):
    """A webhook for task updates (accepted for validation; this runtime does not push)."""

    url: Annotated[str, Field(min_length=1, max_length=8192)]
    id: str | None = None
    task_id: str | None = None
    token: str | None = None
    authentication: AuthenticationInfo | None = None
    tenant: str | None = None


class SendMessageConfiguration(A2AModel):
    accepted_output_modes: list[str] | None = None
    task_push_notification_config: TaskPushNotificationConfig | None = None
    history_length: HistoryLength | None = None
    return_immediately: bool | None = None
    # Pre-1.0 drafts spelled the execution mode as `blocking` (the inverse).
    blocking: bool | None = None

    @property
    def wait_for_completion(self) -> bool:
        """True unless the caller asked to return as soon as the task exists."""
        if self.return_immediately is not None:
            return not self.return_immediately
        return self.blocking is not False


class SendMessageRequest(A2AModel):
    message: Message
    configuration: SendMessageConfiguration | None = None
    metadata: Metadata | None = None
    tenant: str | None = None


class GetTaskRequest(A2AModel):
    id: Identifier
    history_length: HistoryLength | None = None
    tenant: str | None = None


class ListTasksRequest(A2AModel):
    context_id: str | None = None
    status: TaskState | None = None
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] | None = None
    page_token: str | None = None
    history_length: HistoryLength | None = None
    status_timestamp_after: Timestamp | None = None
    include_artifacts: bool | None = None
    tenant: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _state_number(cls, value: Any) -> Any:
        if value in (0, "TASK_STATE_UNSPECIFIED", ""):
            return None
        return _enum_number(value, _STATE_NUMBERS)


class ListTasksResponse(A2AModel):
    tasks: list[Task]
    next_page_token: str  # always present; "" on the last page
    page_size: int
    total_size: int


class CancelTaskRequest(A2AModel):
    id: Identifier
    metadata: Metadata | None = None
    tenant: str | None = None


class SubscribeToTaskRequest(A2AModel):
    id: Identifier
    tenant: str | None = None


class GetTaskPushNotificationConfigRequest(A2AModel):
    task_id: str | None = None
    id: str | None = None
    tenant: str | None = None


class ListTaskPushNotificationConfigsRequest(A2AModel):
    task_id: str | None = None
    page_size: int | None = None
    page_token: str | None = None
    tenant: str | None = None


class DeleteTaskPushNotificationConfigRequest(A2AModel):
    task_id: str | None = None
    id: str | None = None
    tenant: str | None = None


class GetExtendedAgentCardRequest(A2AModel):
    tenant: str | None = None


# -- constructors ---------------------------------------------------------------------------


def as_parts(content: str | Part | Sequence[Part]) -> list[Part]:
    """Message or artifact parts from text, one part, or several parts."""
    if isinstance(content, str):
        return [Part(text=content)]
    if isinstance(content, Part):
        return [content]
    return list(content)


def agent_message(
    content: str | Part | list[Part],
    *,
    message_id: str,
    context_id: str | None = None,
    task_id: str | None = None,
) -> Message:
    """An agent message from text, a part or a list of parts."""
    parts = as_parts(content)
    return Message(
        message_id=message_id,
        role=Role.AGENT,
        parts=parts,
        context_id=context_id,
        task_id=task_id,
    )

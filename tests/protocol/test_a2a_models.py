"""The A2A v1.0 data model: wire shapes, validation, versions, errors and the agent card.

Where it matters the JSON is checked against the official protobuf definitions shipped with the
A2A SDK (`a2a.types.a2a_pb2`), parsed strictly (unknown fields are an error).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from a2a.types import a2a_pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from pydantic import ValidationError

from bastion.protocol.a2a import (
    ERROR_INFO_TYPE,
    Artifact,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    a2a_error,
    check_version,
    requested_version,
)
from bastion.protocol.agent_card import build_agent_card
from bastion.protocol.errors import (
    TASK_NOT_FOUND,
    VERSION_NOT_SUPPORTED,
    RpcError,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def strict_proto(doc: dict[str, Any], message: Any) -> Any:
    """Parse JSON into an official A2A proto message; unknown fields fail."""
    return ParseDict(doc, message, ignore_unknown_fields=False)


def user_message(**extra: Any) -> dict[str, Any]:
    return {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}], **extra}


# -- messages and parts ---------------------------------------------------------------------


def test_message_accepts_camel_and_snake_case_and_ignores_unknown_fields() -> None:
    camel = Message.model_validate(user_message(contextId="c-1", tckUnknownField=1))
    snake = Message.model_validate(
        {"message_id": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}], "context_id": "c-1"}
    )
    assert camel == snake
    assert camel.dump() == {
        "messageId": "m-1",
        "role": "ROLE_USER",
        "parts": [{"text": "hi"}],
        "contextId": "c-1",
    }


@pytest.mark.parametrize(
    "broken",
    [
        {"role": "ROLE_USER", "parts": [{"text": "x"}]},  # no messageId
        {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "x"}]},
        {"messageId": "m", "parts": [{"text": "x"}]},  # no role
        {"messageId": "m", "role": "ROLE_BOSS", "parts": [{"text": "x"}]},
        {"messageId": "m", "role": "ROLE_USER", "parts": []},
        {"messageId": "m", "role": "ROLE_USER", "parts": [{}]},
        {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "https://x"}]},
        {"messageId": "m", "role": "ROLE_USER", "parts": [{"raw": "not base64!"}]},
        {"messageId": 7, "role": "ROLE_USER", "parts": [{"text": "x"}]},
    ],
)
def test_invalid_messages_are_rejected(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Message.model_validate(broken)


def test_parts_of_every_kind_match_the_proto() -> None:
    parts = [
        Part.of_text("hello"),
        Part.of_bytes(b"tck", media_type="text/plain", filename="output.txt"),
        Part(url="https://example.com/output.txt", media_type="text/plain"),
        Part.of_data({"key": "value", "count": 42}),
    ]
    assert [p.kind for p in parts] == ["text", "raw", "url", "data"]
    message = Message(message_id="m", role=Role.AGENT, parts=parts)
    proto = strict_proto(message.dump(), a2a_pb2.Message())
    assert proto.parts[1].raw == b"tck"
    assert proto.parts[3].data.struct_value["count"] == 42
    # And what the SDK produces parses back into the same model.
    assert Message.model_validate(MessageToDict(proto)) == message


def test_url_safe_and_unpadded_base64_are_accepted() -> None:
    assert Part(raw="-_8").raw == "-_8"


def test_enum_numbers_are_accepted_on_input() -> None:
    assert Message.model_validate({**user_message(), "role": 2}).role is Role.AGENT
    assert TaskStatus.model_validate({"state": 6}).state is TaskState.INPUT_REQUIRED
    assert ListTasksRequest.model_validate({"status": "TASK_STATE_UNSPECIFIED"}).status is None


# -- tasks and events -----------------------------------------------------------------------


def make_task() -> Task:
    msg = Message.model_validate(user_message(contextId="c-1", taskId="t-1"))
    return Task(
        id="t-1",
        context_id="c-1",
        status=TaskStatus(
            state=TaskState.COMPLETED,
            timestamp=datetime(2025, 10, 28, 10, 30, 0, 123456, tzinfo=UTC),
        ),
        artifacts=[Artifact(artifact_id="a-1", name="echo", parts=[Part(text="hi")])],
        history=[msg],
    )


def test_task_serializes_as_protojson() -> None:
    doc = make_task().dump()
    assert doc["status"] == {
        "state": "TASK_STATE_COMPLETED",
        "timestamp": "2025-10-28T10:30:00.123Z",
    }
    proto = strict_proto(doc, a2a_pb2.Task())
    assert proto.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
    assert proto.artifacts[0].parts[0].text == "hi"


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    status = TaskStatus.model_validate(
        {"state": "TASK_STATE_WORKING", "timestamp": "2025-01-02T03:04:05+02:00"}
    )
    assert TIMESTAMP.match(status.dump()["timestamp"])
    assert status.dump()["timestamp"] == "2025-01-02T01:04:05.000Z"
    with pytest.raises(ValidationError):
        TaskStatus.model_validate({"state": "TASK_STATE_WORKING", "timestamp": "2025-01-02T03:04"})


def test_stream_response_is_a_oneof() -> None:
    task = make_task()
    status_event = TaskStatusUpdateEvent(task_id="t-1", context_id="c-1", status=task.status)
    artifact_event = TaskArtifactUpdateEvent(
        task_id="t-1",
        context_id="c-1",
        artifact=Artifact(artifact_id="a", parts=[Part(text="x")]),
        append=True,
        last_chunk=True,
    )
    for event in (
        StreamResponse(task=task),
        StreamResponse(status_update=status_event),
        StreamResponse(artifact_update=artifact_event),
    ):
        strict_proto(event.dump(), a2a_pb2.StreamResponse())
    assert "statusUpdate" in StreamResponse(status_update=status_event).dump()
    with pytest.raises(ValidationError):
        StreamResponse()
    with pytest.raises(ValidationError):
        StreamResponse(task=task, status_update=status_event)
    with pytest.raises(ValidationError):
        SendMessageResponse()


def test_list_tasks_response_always_carries_next_page_token() -> None:
    doc = ListTasksResponse(tasks=[], next_page_token="", page_size=50, total_size=0).dump()
    assert doc == {"tasks": [], "nextPageToken": "", "pageSize": 50, "totalSize": 0}
    strict_proto(doc, a2a_pb2.ListTasksResponse())


# -- requests -------------------------------------------------------------------------------


def test_send_message_request_as_the_sdk_sends_it() -> None:
    proto = a2a_pb2.SendMessageRequest(
        message=a2a_pb2.Message(
            message_id="m", role=a2a_pb2.Role.ROLE_USER, parts=[a2a_pb2.Part(text="x")]
        ),
        configuration=a2a_pb2.SendMessageConfiguration(
            accepted_output_modes=["text/plain"], history_length=3, return_immediately=True
        ),
    )
    request = SendMessageRequest.model_validate(MessageToDict(proto))
    assert request.message.text == "x"
    assert request.configuration is not None
    assert request.configuration.history_length == 3
    assert request.configuration.wait_for_completion is False


def test_execution_mode() -> None:
    assert SendMessageConfiguration().wait_for_completion
    assert SendMessageConfiguration(return_immediately=False).wait_for_completion
    assert not SendMessageConfiguration(return_immediately=True).wait_for_completion
    # Pre-1.0 spelling.
    assert not SendMessageConfiguration.model_validate({"blocking": False}).wait_for_completion
    assert SendMessageConfiguration.model_validate(
        {"blocking": False, "returnImmediately": False}
    ).wait_for_completion


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": 0},
        {"pageSize": 101},
        {"historyLength": -1},
        {"status": "TASK_STATE_RUNNING"},
        {"statusTimestampAfter": "yesterday"},
    ],
)
def test_invalid_list_tasks_requests(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ListTasksRequest.model_validate(params)


def test_list_tasks_request_snake_case_and_int64_strings() -> None:
    request = ListTasksRequest.model_validate(
        {"context_id": "c", "page_size": "2", "include_artifacts": False}
    )
    assert (request.context_id, request.page_size, request.include_artifacts) == ("c", 2, False)


# -- versions and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, "0.3"),
        ("", "0.3"),
        ("  ", "0.3"),
        ("1.0", "1.0"),
        ("1.0.7", "1.0"),
        ("01.00", "1.0"),
        ("9.9", "9.9"),
        ("latest", "latest"),
    ],
)
def test_requested_version(header: str | None, version: str) -> None:
    headers = {} if header is None else {"a2a-version": header}
    assert requested_version(headers) == version


def test_check_version() -> None:
    served = frozenset({"1.0"})
    assert check_version({"a2a-version": "1.0.2"}, served) == "1.0"
    for header in ({}, {"a2a-version": ""}, {"a2a-version": "9.9"}, {"a2a-version": "1.1"}):
        with pytest.raises(RpcError) as exc:
            check_version(header, served)
        assert exc.value.code == VERSION_NOT_SUPPORTED


def test_a2a_errors_carry_error_info() -> None:
    err = a2a_error(TASK_NOT_FOUND, "Task not found: x", taskId="x")
    assert err.to_error() == {
        "code": -32001,
        "message": "Task not found: x",
        "data": [
            {
                "@type": ERROR_INFO_TYPE,
                "reason": "TASK_NOT_FOUND",
                "domain": "a2a-protocol.org",
                "metadata": {"taskId": "x"},
            }
        ],
    }


# -- agent card -----------------------------------------------------------------------------


def test_agent_card_is_a_valid_v1_card() -> None:
    card = build_agent_card(
        name="echo",
        description="Echoes.",
        version="0.1.0",
        url="https://agents.example.com/message",
        skills=[{"id": "echo", "name": "Echo", "description": "Echoes.", "tags": ["echo"]}],
    )
    proto = strict_proto(card, a2a_pb2.AgentCard())
    (interface,) = proto.supported_interfaces
    assert (interface.url, interface.protocol_binding, interface.protocol_version) == (
        "https://agents.example.com/message",
        "JSONRPC",
        "1.0",
    )
    assert proto.capabilities.streaming and not proto.capabilities.push_notifications
    assert proto.provider.url == "https://agents.example.com"
    schemes = card["securitySchemes"]
    assert schemes["apiKey"]["apiKeySecurityScheme"] == {
        "location": "header",
        "name": "X-API-Key",
        "description": schemes["apiKey"]["apiKeySecurityScheme"]["description"],
    }
    assert schemes["bearer"]["httpAuthSecurityScheme"]["bearerFormat"] == "JWT"
    assert [list(r["schemes"]) for r in card["securityRequirements"]] == [["apiKey"], ["bearer"]]
    for field in ("defaultInputModes", "defaultOutputModes", "skills", "capabilities"):
        assert card[field]


def test_agent_card_rejects_incomplete_skills() -> None:
    with pytest.raises(ValidationError):
        build_agent_card(
            name="x", description="x", version="1", url="http://h/message", skills=[{"id": "s"}]
        )

"""The A2A v1.0 standard methods: over real HTTP on the fully assembled echo agent (security
stack included), and in-process against scripted executors for the finer task semantics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.agents.tck import tck_definition
from bastion.config import Settings, load_settings
from bastion.core.context import CallContext, Identity, RequestContext
from bastion.project import init_project
from bastion.protocol.a2a import Message, Part, TaskState
from bastion.protocol.errors import (
    CONTENT_TYPE_NOT_SUPPORTED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    PUSH_NOTIFICATION_NOT_SUPPORTED,
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    UNSUPPORTED_OPERATION,
    VERSION_NOT_SUPPORTED,
    RpcError,
)
from bastion.runtime.a2a_methods import (
    AgentOutput,
    ExecutionContext,
    Executor,
    TaskStore,
    completed,
    input_required,
    register_a2a_methods,
    working,
)
from bastion.runtime.agent import AgentApp
from bastion.runtime.methods import MethodRegistry
from bastion.runtime.task_store_db import task_store_for
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread

V1 = {"A2A-Version": "1.0"}
TERMINAL = {
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
}


def user_message(text: str = "hello", message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}], **extra}


# -- over HTTP ------------------------------------------------------------------------------


@dataclass
class A2AAgent:
    url: str
    settings: Settings
    admin_key: str

    def rpc(
        self,
        method: str,
        params: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = V1,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            body["params"] = params
        response = httpx.post(
            self.url + "/message",
            json=body,
            headers={"X-API-Key": key or self.admin_key, **(headers or {})},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        doc: dict[str, Any] = response.json()
        return doc

    def stream(
        self, method: str, params: Any, *, key: str | None = None
    ) -> tuple[httpx.Headers, list[dict[str, Any]]]:
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        headers = {"X-API-Key": key or self.admin_key, "Accept": "text/event-stream", **V1}
        events: list[dict[str, Any]] = []
        with httpx.stream(
            "POST", self.url + "/message", json=body, headers=headers, timeout=15
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
            return response.headers, events

    def key(self, principal: str) -> str:
        return build_api_key_store(self.settings).create(principal)

    def set_policy(self, doc: dict[str, Any]) -> None:
        self.settings.path(self.settings.policy.file).write_text(json.dumps(doc))


@pytest.fixture(params=["memory", "database"])
def a2a_agent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[A2AAgent]:
    """The echo agent with its conformance behaviours, behind the full security stack, its
    tasks in memory or in the project's database."""
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.auth.api_key_cache_seconds = 0
    settings.policy.reload_check_seconds = 0
    settings.rate_limit.default = "10000/minute"
    settings.server.task_store = request.param
    definition = tck_definition(store=task_store_for(settings, "echo"))
    with serve_in_thread(AgentApp(definition, settings)) as srv:
        yield A2AAgent(srv.url, settings, res.admin_key)


def error_of(doc: dict[str, Any]) -> dict[str, Any]:
    assert "error" in doc, doc
    error: dict[str, Any] = doc["error"]
    return error


def assert_a2a_error(doc: dict[str, Any], code: int, reason: str) -> None:
    error = error_of(doc)
    assert error["code"] == code, error
    (info,) = error["data"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["domain"], info["reason"]) == ("a2a-protocol.org", reason)


def test_send_message_round_trip(a2a_agent: A2AAgent) -> None:
    doc = a2a_agent.rpc("SendMessage", {"message": user_message("hello bastion")})
    task = doc["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "hello bastion"}]
    assert task["history"][0]["messageId"] == "m-1"
    assert task["history"][0]["taskId"] == task["id"]
    assert task["contextId"]

    again = a2a_agent.rpc("GetTask", {"id": task["id"]})["result"]
    assert (again["id"], again["contextId"], again["status"]["state"]) == (
        task["id"],
        task["contextId"],
        "TASK_STATE_COMPLETED",
    )


def test_direct_message_reply(a2a_agent: A2AAgent) -> None:
    doc = a2a_agent.rpc(
        "SendMessage", {"message": user_message(message_id="tck-message-response-1")}
    )
    message = doc["result"]["message"]
    assert message["role"] == "ROLE_AGENT"
    assert message["parts"] == [{"text": "Direct message response"}]
    assert message["contextId"]
    assert "taskId" not in message


def test_tasks_are_visible_only_to_their_creator(a2a_agent: A2AAgent) -> None:
    other = a2a_agent.key("other")
    a2a_agent.set_policy({"allow": {"admin": ["*"], "other": ["*"]}})

    admin_task = a2a_agent.rpc(
        "SendMessage", {"message": user_message(message_id="tck-input-required-1")}
    )["result"]["task"]
    other_task = a2a_agent.rpc("SendMessage", {"message": user_message()}, key=other)["result"][
        "task"
    ]

    for method, params in [
        ("GetTask", {"id": admin_task["id"]}),
        ("CancelTask", {"id": admin_task["id"]}),
        ("SendMessage", {"message": user_message(taskId=admin_task["id"])}),
    ]:
        assert_a2a_error(a2a_agent.rpc(method, params, key=other), TASK_NOT_FOUND, "TASK_NOT_FOUND")

    listed = a2a_agent.rpc("ListTasks", {}, key=other)["result"]
    assert [t["id"] for t in listed["tasks"]] == [other_task["id"]]
    assert listed["totalSize"] == 1
    admin_listed = a2a_agent.rpc("ListTasks", {})["result"]
    assert [t["id"] for t in admin_listed["tasks"]] == [admin_task["id"]]
    # The admin's task is untouched by the other principal's attempts.
    state = a2a_agent.rpc("GetTask", {"id": admin_task["id"]})["result"]["status"]["state"]
    assert state == "TASK_STATE_INPUT_REQUIRED"


def test_unknown_task_is_not_found(a2a_agent: A2AAgent) -> None:
    for method in ("GetTask", "CancelTask"):
        assert_a2a_error(
            a2a_agent.rpc(method, {"id": "no-such-task"}), TASK_NOT_FOUND, "TASK_NOT_FOUND"
        )


def test_cancel(a2a_agent: A2AAgent) -> None:
    done = a2a_agent.rpc("SendMessage", {"message": user_message()})["result"]["task"]
    assert_a2a_error(
        a2a_agent.rpc("CancelTask", {"id": done["id"]}), TASK_NOT_CANCELABLE, "TASK_NOT_CANCELABLE"
    )

    waiting = a2a_agent.rpc(
        "SendMessage", {"message": user_message(message_id="tck-input-required-2")}
    )["result"]["task"]
    canceled = a2a_agent.rpc("CancelTask", {"id": waiting["id"]})["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    assert_a2a_error(
        a2a_agent.rpc("CancelTask", {"id": waiting["id"]}),
        TASK_NOT_CANCELABLE,
        "TASK_NOT_CANCELABLE",
    )


def test_return_immediately_then_cancel_the_running_task(a2a_agent: A2AAgent) -> None:
    # This scenario works for 4 seconds before completing.
    doc = a2a_agent.rpc(
        "SendMessage",
        {
            "message": user_message(message_id="test-resubscribe-message-id-1"),
            "configuration": {"returnImmediately": True},
        },
    )
    task = doc["result"]["task"]
    assert task["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    canceled = a2a_agent.rpc("CancelTask", {"id": task["id"]})["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"


def test_send_to_a_finished_task_is_unsupported(a2a_agent: A2AAgent) -> None:
    done = a2a_agent.rpc("SendMessage", {"message": user_message()})["result"]["task"]
    doc = a2a_agent.rpc("SendMessage", {"message": user_message(taskId=done["id"])})
    assert_a2a_error(doc, UNSUPPORTED_OPERATION, "UNSUPPORTED_OPERATION")


def test_streaming_ends_in_a_terminal_state(a2a_agent: A2AAgent) -> None:
    headers, events = a2a_agent.stream(
        "SendStreamingMessage", {"message": user_message("s", message_id="tck-stream-001-1")}
    )
    assert headers["content-type"].startswith("text/event-stream")
    assert all(e["jsonrpc"] == "2.0" and e["id"] == 7 for e in events)
    results = [e["result"] for e in events]
    assert [next(iter(r)) for r in results] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
    task_id = results[0]["task"]["id"]
    assert results[0]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert results[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    assert results[2]["artifactUpdate"]["artifact"]["parts"] == [{"text": "Stream hello from TCK"}]
    assert results[3]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert {
        r.get("statusUpdate", r.get("artifactUpdate", {})).get("taskId", task_id) for r in results
    } == {task_id}


def test_streaming_echo(a2a_agent: A2AAgent) -> None:
    _, events = a2a_agent.stream("SendStreamingMessage", {"message": user_message("plain")})
    last = events[-1]["result"]["statusUpdate"]["status"]["state"]
    assert last in TERMINAL
    artifacts = [e["result"]["artifactUpdate"] for e in events if "artifactUpdate" in e["result"]]
    assert artifacts[0]["artifact"]["parts"] == [{"text": "plain"}]


async def test_subscribe_follows_a_task_to_its_end(a2a_agent: A2AAgent) -> None:
    task = a2a_agent.rpc(
        "SendMessage", {"message": user_message(message_id="tck-input-required-3")}
    )["result"]["task"]
    headers = {"X-API-Key": a2a_agent.admin_key, **V1}
    body = {"jsonrpc": "2.0", "id": 3, "method": "SubscribeToTask", "params": {"id": task["id"]}}
    events: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=15) as client,
        client.stream("POST", a2a_agent.url + "/message", json=body, headers=headers) as r,
    ):
        lines = r.aiter_lines()
        async for line in lines:
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                break
        follow_up = {"message": user_message("done", message_id="m-2", taskId=task["id"])}
        sent = await client.post(
            a2a_agent.url + "/message",
            json={"jsonrpc": "2.0", "id": 4, "method": "SendMessage", "params": follow_up},
            headers=headers,
        )
        assert sent.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        async for line in lines:
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    first = events[0]["result"]["task"]
    assert (first["id"], first["status"]["state"]) == (task["id"], "TASK_STATE_INPUT_REQUIRED")
    assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_list_tasks_pagination(a2a_agent: A2AAgent) -> None:
    ids = [
        a2a_agent.rpc("SendMessage", {"message": user_message(str(i), contextId="ctx-p")})[
            "result"
        ]["task"]["id"]
        for i in range(3)
    ]
    a2a_agent.rpc("SendMessage", {"message": user_message("elsewhere", contextId="ctx-q")})

    first = a2a_agent.rpc("ListTasks", {"contextId": "ctx-p", "pageSize": 2})["result"]
    assert [t["id"] for t in first["tasks"]] == ids[::-1][:2]  # most recently updated first
    assert (first["pageSize"], first["totalSize"]) == (2, 3)
    assert first["nextPageToken"]
    assert all("artifacts" not in t for t in first["tasks"])

    second = a2a_agent.rpc(
        "ListTasks",
        {
            "contextId": "ctx-p",
            "pageSize": 2,
            "pageToken": first["nextPageToken"],
            "includeArtifacts": True,
            "historyLength": 0,
        },
    )["result"]
    assert [t["id"] for t in second["tasks"]] == ids[:1]
    assert second["nextPageToken"] == ""
    assert second["tasks"][0]["artifacts"][0]["parts"] == [{"text": "0"}]
    assert "history" not in second["tasks"][0]

    doc = a2a_agent.rpc("ListTasks", {"pageToken": "not-a-token"})
    assert error_of(doc)["code"] == INVALID_PARAMS


@pytest.mark.parametrize(
    ("version", "ok"),
    [("1.0", True), ("1.0.3", True), ("", False), (None, False), ("9.9", False), ("0.3", False)],
)
def test_a2a_version_header(a2a_agent: A2AAgent, version: str | None, ok: bool) -> None:
    headers = {} if version is None else {"A2A-Version": version}
    doc = a2a_agent.rpc("SendMessage", {"message": user_message()}, headers=headers)
    if ok:
        assert "task" in doc["result"]
    else:
        assert_a2a_error(doc, VERSION_NOT_SUPPORTED, "VERSION_NOT_SUPPORTED")


def test_named_methods_are_not_versioned(a2a_agent: A2AAgent) -> None:
    doc = a2a_agent.rpc("echo", {"message": "hi"}, headers={})
    assert doc["result"]["message"] == "hi"


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("SendMessage", {}),
        ("SendMessage", {"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}}),
        ("SendMessage", {"message": user_message() | {"parts": [{"text": "a", "data": {}}]}}),
        ("SendMessage", {"message": user_message(), "configuration": {"historyLength": -1}}),
        ("SendMessage", ["positional"]),
        ("GetTask", {}),
        ("GetTask", {"id": 42}),
        ("ListTasks", {"pageSize": 1000}),
        ("ListTasks", {"status": "TASK_STATE_RUNNING"}),
        ("CancelTask", {"id": ""}),
    ],
)
def test_invalid_params(a2a_agent: A2AAgent, method: str, params: Any) -> None:
    error = error_of(a2a_agent.rpc(method, params))
    assert error["code"] == INVALID_PARAMS
    assert isinstance(error["data"], list) and error["data"]


def test_mismatching_context_is_rejected(a2a_agent: A2AAgent) -> None:
    task = a2a_agent.rpc(
        "SendMessage", {"message": user_message(message_id="tck-input-required-4")}
    )["result"]["task"]
    doc = a2a_agent.rpc(
        "SendMessage", {"message": user_message(taskId=task["id"], contextId="another-context")}
    )
    assert error_of(doc)["code"] == INVALID_PARAMS


def test_unsupported_capabilities(a2a_agent: A2AAgent) -> None:
    doc = a2a_agent.rpc("CreateTaskPushNotificationConfig", {"taskId": "t", "url": "https://x"})
    assert_a2a_error(doc, PUSH_NOTIFICATION_NOT_SUPPORTED, "PUSH_NOTIFICATION_NOT_SUPPORTED")
    doc = a2a_agent.rpc("GetExtendedAgentCard")
    assert_a2a_error(doc, UNSUPPORTED_OPERATION, "UNSUPPORTED_OPERATION")


def test_agent_card(a2a_agent: A2AAgent) -> None:
    response = httpx.get(a2a_agent.url + "/.well-known/agent-card.json")
    assert response.status_code == 200
    card = response.json()
    for field in (
        "name",
        "description",
        "version",
        "supportedInterfaces",
        "capabilities",
        "defaultInputModes",
        "defaultOutputModes",
        "skills",
        "securitySchemes",
        "securityRequirements",
        "provider",
    ):
        assert card[field], field
    (interface,) = card["supportedInterfaces"]
    assert interface == {
        "url": a2a_agent.url + "/message",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "1.0",
    }
    assert card["capabilities"]["streaming"] is True
    assert card["capabilities"]["pushNotifications"] is False

    etag = response.headers["etag"]
    assert "max-age" in response.headers["cache-control"]
    cached = httpx.get(
        a2a_agent.url + "/.well-known/agent-card.json", headers={"If-None-Match": etag}
    )
    assert cached.status_code == 304
    assert cached.headers["etag"] == etag


# -- in process, with scripted executors ----------------------------------------------------


def call_context(
    principal: str = "alice", method: str = "SendMessage", version: str = "1.0"
) -> CallContext:
    request = RequestContext(
        agent="test",
        correlation_id="corr-0123456789",
        client="-",
        headers={"a2a-version": version},
        identity=Identity(principal=principal, auth_method="api_key"),
    )
    return CallContext(request=request, method=method)


class Agent:
    """A registry serving the A2A methods with one executor, called like the server does."""

    def __init__(self, executor: Executor, store: TaskStore | None = None, **kw: Any) -> None:
        self.registry = MethodRegistry()
        self.service = register_a2a_methods(self.registry, executor, store, **kw)

    async def call(self, method: str, params: Any = None, principal: str = "alice") -> Any:
        spec = self.registry.get(method)
        assert spec is not None
        bound = self.registry.bind(spec, params)
        result = self.registry.invoke(spec, bound, call_context(principal, method))
        if spec.streaming:
            return [event.dump() async for event in result]
        value = await result
        return value.dump() if value is not None else None

    async def send(self, params: dict[str, Any], principal: str = "alice") -> dict[str, Any]:
        result: dict[str, Any] = await self.call("SendMessage", params, principal)
        return result


async def multi_turn(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    """Asks once for more input, then completes with a summary of what it was told."""
    if ctx.task is None:
        yield working()
        yield input_required("What else?")
    else:
        yield completed(f"Got: {ctx.text}")


async def test_multi_turn_history_and_history_length() -> None:
    agent = Agent(multi_turn)
    first = (await agent.send({"message": user_message("one")}))["task"]
    assert first["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert first["status"]["message"]["parts"] == [{"text": "What else?"}]

    # Only the taskId: the context is inferred from the task.
    second = (
        await agent.send(
            {
                "message": user_message("two", message_id="m-2", taskId=first["id"]),
                "configuration": {"historyLength": 2},
            }
        )
    )["task"]
    assert second["contextId"] == first["contextId"]
    assert second["status"]["state"] == "TASK_STATE_COMPLETED"
    assert second["status"]["message"]["parts"] == [{"text": "Got: two"}]
    assert [m["parts"][0]["text"] for m in second["history"]] == ["two", "Got: two"]

    full = await agent.call("GetTask", {"id": first["id"]})
    assert [m["parts"][0]["text"] for m in full["history"]] == [
        "one",
        "What else?",
        "two",
        "Got: two",
    ]
    assert "history" not in await agent.call("GetTask", {"id": first["id"], "historyLength": 0})


async def test_a_message_before_anything_else_is_a_direct_reply() -> None:
    async def reply(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield ctx.reply("just a reply")

    agent = Agent(reply)
    result = await agent.send({"message": user_message(contextId="ctx-1")})
    assert set(result) == {"message"}
    assert result["message"]["contextId"] == "ctx-1"
    assert (await agent.call("ListTasks", {}))["tasks"] == []
    events = await agent.call("SendStreamingMessage", {"message": user_message()})
    assert len(events) == 1 and "message" in events[0]


async def test_a_message_on_a_task_completes_it() -> None:
    async def late_reply(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        yield ctx.reply("finished")
        yield working()  # ignored: the task is already terminal

    task = (await Agent(late_reply).send({"message": user_message()}))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["message"]["parts"] == [{"text": "finished"}]


async def test_executor_errors() -> None:
    async def refuses(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        raise RpcError(CONTENT_TYPE_NOT_SUPPORTED, "no thanks")
        yield completed()  # pragma: no cover

    async def breaks_midway(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        raise RuntimeError("secret detail")

    async def breaks_at_once(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        raise RuntimeError("secret detail")
        yield completed()  # pragma: no cover

    with pytest.raises(RpcError) as exc:
        await Agent(refuses).send({"message": user_message()})
    assert exc.value.code == CONTENT_TYPE_NOT_SUPPORTED

    task = (await Agent(breaks_midway).send({"message": user_message()}))["task"]
    assert task["status"]["state"] == "TASK_STATE_FAILED"
    assert "secret" not in json.dumps(task)

    with pytest.raises(RpcError) as exc:
        await Agent(breaks_at_once).send({"message": user_message()})
    assert exc.value.code == INTERNAL_ERROR


async def test_executor_that_yields_nothing_completes_the_task() -> None:
    async def silent(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        return
        yield completed()  # pragma: no cover

    task = (await Agent(silent).send({"message": user_message()}))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_input_modes_restrict_part_media_types() -> None:
    async def echo(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield completed()

    agent = Agent(echo, input_modes=["text/*"])
    await agent.send({"message": user_message()})
    raw = Part.of_bytes(b"x", media_type="application/x-unsupported").dump()
    with pytest.raises(RpcError) as exc:
        await agent.send({"message": user_message() | {"parts": [raw]}})
    assert exc.value.code == CONTENT_TYPE_NOT_SUPPORTED


async def test_streaming_can_be_switched_off() -> None:
    async def echo(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield completed()

    with pytest.raises(RpcError) as exc:
        await Agent(echo, streaming=False).call("SendStreamingMessage", {"message": user_message()})
    assert exc.value.code == UNSUPPORTED_OPERATION


async def test_subscribe_to_a_finished_task_is_unsupported() -> None:
    async def echo(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield completed()

    agent = Agent(echo)
    task = (await agent.send({"message": user_message()}))["task"]
    with pytest.raises(RpcError) as exc:
        await agent.call("SubscribeToTask", {"id": task["id"]})
    assert exc.value.code == UNSUPPORTED_OPERATION
    with pytest.raises(RpcError) as exc:
        await agent.call("SubscribeToTask", {"id": task["id"]}, principal="mallory")
    assert exc.value.code == TASK_NOT_FOUND


async def test_cancel_stops_a_running_executor_and_shutdown_stops_the_rest() -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    async def slow(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.append(ctx.task_id)
        yield completed()  # pragma: no cover

    agent = Agent(slow)
    params = {"message": user_message(), "configuration": {"returnImmediately": True}}
    first = (await agent.send(params))["task"]
    await started.wait()
    canceled = await agent.call("CancelTask", {"id": first["id"]})
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    assert stopped == [first["id"]]

    started.clear()
    second = (await agent.send(params))["task"]
    await started.wait()
    await agent.service.aclose()
    assert stopped == [first["id"], second["id"]]
    state = (await agent.call("GetTask", {"id": second["id"]}))["status"]["state"]
    assert state == "TASK_STATE_CANCELED"


async def test_a_busy_task_refuses_a_second_message() -> None:
    release = asyncio.Event()

    async def waits(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield input_required()
        await release.wait()

    agent = Agent(waits)
    task = (await agent.send({"message": user_message()}))["task"]
    with pytest.raises(RpcError) as exc:
        await agent.send({"message": user_message(taskId=task["id"])})
    assert exc.value.code == UNSUPPORTED_OPERATION
    release.set()


async def test_task_store_bounds() -> None:
    async def echo(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield completed()

    store = TaskStore(max_tasks=5, max_tasks_per_principal=3)
    agent = Agent(echo, store)
    alice = [(await agent.send({"message": user_message()}))["task"]["id"] for _ in range(4)]
    bob = [
        (await agent.send({"message": user_message()}, principal="bob"))["task"]["id"]
        for _ in range(3)
    ]
    # Alice is held to her own 3 (her oldest went first); the store holds 5 in all.
    assert len(store) == 5
    assert store.find("alice", alice[0]) is None
    assert store.find("alice", alice[1]) is None
    assert [store.find("alice", t) is not None for t in alice[2:]] == [True, True]
    assert all(store.find("bob", t) is not None for t in bob)
    assert store.find("bob", alice[3]) is None  # visibility is per principal


async def test_list_filters() -> None:
    async def by_text(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield input_required() if ctx.text == "wait" else completed()

    agent = Agent(by_text)
    waiting = (await agent.send({"message": user_message("wait")}))["task"]
    done = (await agent.send({"message": user_message("go")}))["task"]
    listed = await agent.call("ListTasks", {"status": "TASK_STATE_INPUT_REQUIRED"})
    assert [t["id"] for t in listed["tasks"]] == [waiting["id"]]
    after = await agent.call("ListTasks", {"statusTimestampAfter": waiting["status"]["timestamp"]})
    assert [t["id"] for t in after["tasks"]] == [done["id"]]


def test_message_model_round_trip_through_outputs() -> None:
    ctx = ExecutionContext(
        message=Message.model_validate(user_message(taskId="t", contextId="c")),
        task_id="t",
        context_id="c",
        principal="p",
    )
    reply = ctx.reply("x")
    assert (reply.task_id, reply.context_id, reply.role.value) == ("t", "c", "ROLE_AGENT")
    update = ctx.artifact("chunk", artifact_id="a", append=True, last_chunk=True)
    assert (update.artifact.artifact_id, update.append, update.last_chunk) == ("a", True, True)
    assert completed().state is TaskState.COMPLETED


async def test_evicting_a_running_task_cancels_its_executor() -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    async def slow(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.append(ctx.task_id)
        yield completed()  # pragma: no cover

    store = TaskStore(max_tasks=1)
    agent = Agent(slow, store)
    params = {"message": user_message(), "configuration": {"returnImmediately": True}}
    first = (await agent.send(params))["task"]
    await started.wait()
    started.clear()
    second = (await agent.send(params))["task"]
    await started.wait()
    await asyncio.sleep(0.05)
    assert stopped == [first["id"]]
    assert store.find("alice", first["id"]) is None
    assert len(store) == 1
    await agent.service.aclose()
    assert stopped == [first["id"], second["id"]]


async def test_shutdown_stops_executors_that_have_not_answered_yet() -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    async def thinking(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.append(ctx.task_id)
        yield completed()  # pragma: no cover

    agent = Agent(thinking)
    pending = asyncio.create_task(agent.send({"message": user_message()}))
    await started.wait()
    await agent.service.aclose()
    assert len(stopped) == 1
    task = (await pending)["task"]  # the run ends; the caller gets the canceled task
    assert task["status"]["state"] == "TASK_STATE_CANCELED"

"""The durable A2A task store: tasks in the database, seen by a second store instance (another
replica, or the same agent after a restart), on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.agents.registry import definition_for
from bastion.config import load_settings
from bastion.project import init_project
from bastion.protocol.errors import TASK_NOT_FOUND, UNSUPPORTED_OPERATION, RpcError
from bastion.runtime import a2a_methods
from bastion.runtime.a2a_methods import (
    AgentOutput,
    ExecutionContext,
    completed,
    working,
)
from bastion.runtime.agent import AgentApp
from bastion.runtime.task_store_db import (
    ORPHAN_MESSAGE,
    DatabaseTaskStore,
    TaskTablesMissing,
    task_store_for,
)
from bastion.storage import make_engine, shared_engine
from bastion.testing import serve_in_thread
from tests.runtime import test_a2a_methods as memory_tests
from tests.runtime.test_a2a_methods import V1, Agent, user_message

StoreFactory = Callable[..., DatabaseTaskStore]


@pytest.fixture
def new_store(db_url: str) -> StoreFactory:
    """Store instances of one agent (a fresh agent name per test) on the test database."""
    agent = f"agent-{uuid.uuid4().hex[:8]}"

    def make(**kw: Any) -> DatabaseTaskStore:
        return DatabaseTaskStore(shared_engine(db_url), agent=agent, **kw)

    return make


async def done(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
    yield ctx.artifact(ctx.message.parts, name="echo")
    yield completed()


class Slow:
    """An executor that works until canceled, telling when it started and when it stopped."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()

    async def __call__(self, ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.stopped.set()
        yield completed()  # pragma: no cover


RETURN_AT_ONCE = {"configuration": {"returnImmediately": True}}


# -- two instances, one database ----------------------------------------------------------


async def test_a_second_instance_sees_the_tasks_and_keeps_them_per_owner(
    new_store: StoreFactory,
) -> None:
    first, second = Agent(done, new_store()), Agent(done, new_store())
    task = (await first.send({"message": user_message("hello")}))["task"]
    seen = await second.call("GetTask", {"id": task["id"]})
    assert seen["status"]["state"] == "TASK_STATE_COMPLETED"
    assert seen["artifacts"][0]["parts"] == [{"text": "hello"}]
    assert [m["role"] for m in seen["history"]] == ["ROLE_USER"]
    assert seen["status"]["timestamp"] == task["status"]["timestamp"]
    for method in ("GetTask", "CancelTask"):
        with pytest.raises(RpcError) as exc:
            await second.call(method, {"id": task["id"]}, principal="mallory")
        assert exc.value.code == TASK_NOT_FOUND
    assert (await second.call("ListTasks", {}, principal="mallory"))["tasks"] == []
    # The finished task accepts no more messages on either instance.
    with pytest.raises(RpcError) as exc:
        await second.send({"message": user_message(taskId=task["id"])})
    assert exc.value.code == UNSUPPORTED_OPERATION


async def test_a_conversation_goes_on_in_the_other_instance(new_store: StoreFactory) -> None:
    first = Agent(memory_tests.multi_turn, new_store())
    second = Agent(memory_tests.multi_turn, new_store())
    task = (await first.send({"message": user_message("one")}))["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    reply = await second.send({"message": user_message("two", "m-2", taskId=task["id"])})
    assert reply["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    history = (await first.call("GetTask", {"id": task["id"]}))["history"]
    texts = [m["parts"][0]["text"] for m in history]
    assert texts == ["one", "What else?", "two", "Got: two"]


async def test_list_pages_across_instances(new_store: StoreFactory) -> None:
    first, second = Agent(done, new_store()), Agent(done, new_store())
    ids = []
    for i in range(5):
        agent = first if i % 2 else second
        ids.append((await agent.send({"message": user_message(f"t{i}")}))["task"]["id"])
    await first.send({"message": user_message("bob's")}, principal="bob")
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        agent = (first, second)[pages % 2]
        page = await agent.call("ListTasks", {"pageSize": 2, "pageToken": token})
        assert page["totalSize"] == 5
        seen += [t["id"] for t in page["tasks"]]
        pages += 1
        token = page["nextPageToken"]
        if not token:
            break
    assert (seen, pages) == (ids[::-1], 3)
    one = ids[2]
    context = (await first.call("GetTask", {"id": one}))["contextId"]
    by_context = await second.call("ListTasks", {"contextId": context})
    assert [t["id"] for t in by_context["tasks"]] == [one]
    with pytest.raises(RpcError):
        await second.call("ListTasks", {"pageToken": "not-a-token"})


async def test_a_task_running_elsewhere_is_busy_cancelable_and_not_streamed(
    new_store: StoreFactory,
) -> None:
    slow = Slow()
    runner, other = Agent(slow, new_store()), Agent(slow, new_store())
    task = (await runner.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    await slow.started.wait()
    with pytest.raises(RpcError) as exc:
        await other.send({"message": user_message(taskId=task["id"])})
    assert exc.value.code == UNSUPPORTED_OPERATION
    assert "still processing" in exc.value.message
    with pytest.raises(RpcError) as exc:
        await other.call("SubscribeToTask", {"id": task["id"]})
    assert exc.value.code == UNSUPPORTED_OPERATION
    assert "GetTask" in exc.value.message

    canceled = await other.call("CancelTask", {"id": task["id"]})
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    # The running replica stops its executor at its next heartbeat.
    assert not slow.stopped.is_set()
    runner.service.store.beat()  # type: ignore[attr-defined]
    await slow.stopped.wait()
    final = await runner.call("GetTask", {"id": task["id"]})
    assert final["status"]["state"] == "TASK_STATE_CANCELED"
    await runner.service.aclose()
    await other.service.aclose()


async def test_a_remote_cancel_seen_by_the_running_replica_stops_its_run(
    new_store: StoreFactory,
) -> None:
    slow = Slow()
    runner, other = Agent(slow, new_store()), Agent(slow, new_store())
    task = (await runner.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    await slow.started.wait()
    await other.call("CancelTask", {"id": task["id"]})
    seen = await runner.call("GetTask", {"id": task["id"]})  # reads the row: canceled
    assert seen["status"]["state"] == "TASK_STATE_CANCELED"
    await slow.stopped.wait()
    await runner.service.aclose()


async def test_a_remote_cancel_stops_the_run_at_its_next_output(new_store: StoreFactory) -> None:
    go_on, stopped = asyncio.Event(), asyncio.Event()

    async def steps(ctx: ExecutionContext) -> AsyncIterator[AgentOutput]:
        yield working()
        await go_on.wait()
        try:
            yield ctx.artifact("late")
            await asyncio.Event().wait()  # only a cancellation ends this
        finally:
            stopped.set()
        yield completed()  # pragma: no cover

    runner, other = Agent(steps, new_store()), Agent(steps, new_store())
    task = (await runner.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    await other.call("CancelTask", {"id": task["id"]})
    go_on.set()
    await stopped.wait()
    final = await other.call("GetTask", {"id": task["id"]})
    assert final["status"]["state"] == "TASK_STATE_CANCELED"
    assert final.get("artifacts", []) == []  # the late artifact was not written
    await runner.service.aclose()


# -- a restart ------------------------------------------------------------------------------


async def test_start_fails_the_tasks_a_stopped_process_left(new_store: StoreFactory) -> None:
    slow = Slow()
    dead = Agent(slow, new_store())
    running = (await dead.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    await slow.started.wait()
    waiting = (await Agent(memory_tests.multi_turn, new_store()).send({"message": user_message()}))[
        "task"
    ]

    # A replica starting while the runner is alive leaves its task alone.
    alive = new_store()
    await alive.start()
    assert alive.get("alice", running["id"]).state.value == "TASK_STATE_WORKING"
    assert alive.get("alice", running["id"]).running
    await alive.aclose()

    # Once the runner has missed its heartbeats (it died), a start-up fails its task.
    later = time.time() + 1000
    restarted = new_store(clock=lambda: later)
    await restarted.start()
    record = restarted.get("alice", running["id"])
    assert record.state.value == "TASK_STATE_FAILED"
    assert record.task.status.message is not None
    assert record.task.status.message.parts[0].text == ORPHAN_MESSAGE
    assert not record.running
    # An interrupted task waits for its next message: it is no orphan.
    assert restarted.get("alice", waiting["id"]).state.value == "TASK_STATE_INPUT_REQUIRED"
    await restarted.aclose()
    await dead.service.aclose()


async def test_the_heartbeat_keeps_its_own_runs_and_fails_a_dead_replicas(
    new_store: StoreFactory,
) -> None:
    later = time.time() + 1000
    slow_here, slow_dead = Slow(), Slow()
    here = Agent(slow_here, new_store(clock=lambda: later))
    dead = Agent(slow_dead, new_store())
    mine = (await here.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    theirs = (await dead.send({"message": user_message(), **RETURN_AT_ONCE}))["task"]
    await slow_here.started.wait()
    here.service.store.beat()  # type: ignore[attr-defined]
    assert (await here.call("GetTask", {"id": mine["id"]}))["status"]["state"] == (
        "TASK_STATE_WORKING"
    )
    assert (await here.call("GetTask", {"id": theirs["id"]}))["status"]["state"] == (
        "TASK_STATE_FAILED"
    )
    assert not slow_here.stopped.is_set()
    await here.service.aclose()
    await dead.service.aclose()


async def test_a_database_without_the_task_tables_fails_start_up(tmp_path: Path) -> None:
    store = DatabaseTaskStore(make_engine(f"sqlite:///{tmp_path / 'old.db'}"), agent="echo")
    with pytest.raises(TaskTablesMissing, match="bastion init"):
        await store.start()


# -- bounds -----------------------------------------------------------------------------------


async def test_bounds_per_owner_and_per_agent(new_store: StoreFactory) -> None:
    store = new_store(max_tasks=5, max_tasks_per_principal=3)
    agent = Agent(done, store)
    alice = [(await agent.send({"message": user_message()}))["task"]["id"] for _ in range(4)]
    bob = [
        (await agent.send({"message": user_message()}, principal="bob"))["task"]["id"]
        for _ in range(3)
    ]
    assert len(store) == 5
    assert [store.find("alice", t) is not None for t in alice] == [False, False, True, True]
    assert all(store.find("bob", t) is not None for t in bob)
    assert len(new_store()) == 5  # what another instance sees


async def test_finished_tasks_expire(new_store: StoreFactory) -> None:
    store = new_store(retention_seconds=60)
    agent = Agent(memory_tests.multi_turn, store)
    waiting = (await agent.send({"message": user_message()}))["task"]
    finished = (await Agent(done, store).send({"message": user_message()}))["task"]
    later = time.time() + 120
    assert new_store(retention_seconds=60, clock=lambda: later).purge_expired() == 1
    assert store.find("alice", finished["id"]) is None
    assert store.find("alice", waiting["id"]) is not None


def test_limits_must_be_positive(db_url: str) -> None:
    with pytest.raises(ValueError):
        DatabaseTaskStore(shared_engine(db_url), agent="a", heartbeat_seconds=0)


# -- the A2A method tests, on the database store ------------------------------------------


@pytest.fixture
def database_default_store(
    new_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """`register_a2a_methods` without a store gets a database store."""
    monkeypatch.setattr(a2a_methods, "TaskStore", new_store)
    yield


_REUSED = [
    "test_multi_turn_history_and_history_length",
    "test_a_message_before_anything_else_is_a_direct_reply",
    "test_a_message_on_a_task_completes_it",
    "test_executor_errors",
    "test_executor_that_yields_nothing_completes_the_task",
    "test_subscribe_to_a_finished_task_is_unsupported",
    "test_cancel_stops_a_running_executor_and_shutdown_stops_the_rest",
    "test_a_busy_task_refuses_a_second_message",
    "test_list_filters",
    "test_shutdown_stops_executors_that_have_not_answered_yet",
]


def _on_the_database(test: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """`test` (the memory store's) run again with a database store; the original is left
    unmarked, so the memory run stays as it is."""

    @pytest.mark.usefixtures("database_default_store")
    async def run() -> None:
        await test()

    return run


for _name in _REUSED:
    globals()[f"{_name}_on_the_database"] = _on_the_database(getattr(memory_tests, _name))


# -- through two agent servers --------------------------------------------------------------


def test_a_task_sent_to_one_server_is_read_from_another(tmp_path: Path) -> None:
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.auth.api_key_cache_seconds = 0
    settings.rate_limit.default = "10000/minute"
    assert settings.server.task_store == "database"
    assert isinstance(task_store_for(settings, "echo"), DatabaseTaskStore)
    headers = {"X-API-Key": res.admin_key, **V1}

    def rpc(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        doc: dict[str, Any] = httpx.post(
            url + "/message", json=body, headers=headers, timeout=10
        ).json()
        return doc

    with (
        serve_in_thread(AgentApp(definition_for("echo", settings), settings)) as one,
        serve_in_thread(AgentApp(definition_for("echo", settings), settings)) as two,
    ):
        task = rpc(one.url, "SendMessage", {"message": user_message("durable")})["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        got = rpc(two.url, "GetTask", {"id": task["id"]})["result"]
        assert got["artifacts"] == task["artifacts"]
    # Both servers are gone (a restart): a new one on the same database knows the task.
    with serve_in_thread(AgentApp(definition_for("echo", settings), settings)) as three:
        listed = rpc(three.url, "ListTasks", {})["result"]
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]


def test_the_memory_store_is_a_setting(tmp_path: Path) -> None:
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.server.task_store = "memory"
    store = task_store_for(settings, "echo")
    assert not isinstance(store, DatabaseTaskStore)

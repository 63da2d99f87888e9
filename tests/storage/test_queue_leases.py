"""Consumer leases on every queue backend (`backend_url` params): the heartbeat, reclaiming from
real processes that are gone (or alive); and SQLite queue files written before leases existed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.storage.queue import Consumer, ConsumerLease, Queue, SQLiteQueue, open_queue
from bastion.storage.queue.identity import process_gone, this_node

# A queue file as schema version 1 wrote it.
_V1_SCHEMA = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT UNIQUE,
    last_error TEXT,
    dead_at REAL
);
CREATE INDEX ix_messages_ready ON messages (queue, visible_at, seq) WHERE dead_at IS NULL;
PRAGMA user_version = 1;
"""

# A consumer in its own process: registers, takes one message, says so, then waits to be killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from bastion.storage.queue import open_queue
    queue = open_queue(sys.argv[1])
    consumer = queue.register_consumer(600)
    [message] = queue.receive(visibility_timeout=600, consumer=consumer)
    print(message.id, flush=True)
    time.sleep(600)
    """
)


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(params=["sqlite", "sqs"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    if request.param == "sqs":
        return str(request.getfixturevalue("sqs_queue_url"))
    raise AssertionError(request.param)


@pytest.fixture
def queue(backend_url: str) -> Iterator[Queue]:
    q = open_queue(backend_url)
    try:
        yield q
    finally:
        q.close()


@pytest.fixture
def holder(backend_url: str) -> Iterator[Callable[[], tuple[subprocess.Popen[str], str]]]:
    """Start processes that each hold one message of the queue; they are killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, backend_url], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None
        return process, process.stdout.readline().strip()

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_a_dead_process_is_reclaimed_at_once_a_live_one_never(
    queue: Queue, holder: Callable[[], tuple[subprocess.Popen[str], str]]
) -> None:
    queue.send({"document_id": "held-by-the-dead"})
    queue.send({"document_id": "held-by-the-living"})
    dead, dead_message = holder()
    alive, alive_message = holder()
    dead.send_signal(signal.SIGKILL)
    dead.wait(10)
    lease = ConsumerLease(queue, 600)
    try:
        # Both leases (600 s) are live: only the dead process's message comes back.
        assert lease.start() == 1
        [m] = queue.receive(visibility_timeout=600, consumer=lease.consumer_id)
        assert (m.id, m.receive_count) == (dead_message, 2)
        assert [c.pid for c in queue.consumers() if c.id != lease.consumer_id] == [alive.pid]
        assert lease.reclaim() == 0
        [held] = [f for f in queue.in_flight() if f.id == alive_message]
        assert held.consumer is not None and held.consumer.pid == alive.pid
    finally:
        lease.stop()


def test_heartbeat_renews_the_lease_and_stop_hands_back_what_is_held(
    queue: Queue,
) -> None:
    queue.send({"n": 1})
    lease = ConsumerLease(queue, 0.6, renew_every=0.05)
    assert lease.start() == 0
    try:
        [first] = queue.consumers()
        assert first.id == lease.consumer_id and first.pid == os.getpid()
        # Renewed past several of its own lease times: it never lapses while renewed.
        _wait_until(
            lambda: queue.consumers()[0].lease_expires_at > first.lease_expires_at + 1.5,
            "the lease to be renewed",
        )
        queue.receive(visibility_timeout=600, consumer=lease.consumer_id)
        assert queue.reclaim() == 0
        assert [f.consumer_id for f in queue.in_flight()] == [first.id]
    finally:
        assert lease.stop() == 1
    assert queue.consumers() == []
    [m] = queue.receive()
    assert m.receive_count == 2


def test_a_stopped_heartbeat_lets_the_lease_run_out(queue: Queue) -> None:
    queue.send({"n": 1})
    stalled = queue.register_consumer(0.3)  # a live process that stopped renewing
    queue.receive(visibility_timeout=600, consumer=stalled)
    lease = ConsumerLease(queue, 600, renew_every=0.05)
    lease.start()
    try:
        _wait_until(lambda: lease.reclaimed == 1, "the heartbeat to reclaim the message")
        [m] = queue.receive(visibility_timeout=600)
        assert m.receive_count == 2
    finally:
        lease.stop()


def test_lease_settings_are_checked(queue: Queue) -> None:
    with pytest.raises(ValueError):
        ConsumerLease(queue, 0)
    with pytest.raises(ValueError):
        ConsumerLease(queue, 1, renew_every=1)


def test_process_gone_only_for_a_dead_pid_on_this_node() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def consumer(pid: int, node: str) -> Consumer:
        return Consumer("c", pid, "host", node, time.time(), time.time() + 600)

    try:
        assert this_node()
        assert not process_gone(consumer(child.pid, this_node()))
        assert not process_gone(consumer(os.getpid(), this_node()))
        child.kill()
        # Killed but not yet collected by its parent (a zombie): gone all the same.
        _wait_until(lambda: process_gone(consumer(child.pid, this_node())), "the child to die")
        # Elsewhere (another host, container or boot) a pid says nothing.
        assert not process_gone(consumer(child.pid, "another-boot/pidns:1"))
        assert not process_gone(consumer(child.pid, ""))
    finally:
        child.kill()
        child.wait(10)
    assert process_gone(consumer(child.pid, this_node()))


def test_a_version_1_queue_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    old = sqlite3.connect(path)
    old.executescript(_V1_SCHEMA)
    now = time.time()
    old.execute(
        "INSERT INTO messages (id, queue, body, sent_at, enqueued_at, visible_at,"
        " receive_count, receipt) VALUES"
        " ('waiting', 'default', '{\"n\": 1}', ?, ?, ?, 0, NULL),"
        " ('in-flight', 'default', '{\"n\": 2}', ?, ?, ?, 1, 'r.in-flight')",
        (now, now, now, now, now, now + 600),
    )
    old.commit()
    old.close()

    queue = SQLiteQueue(path)
    try:
        (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
        assert version == 2
        [flight] = queue.in_flight()
        assert (flight.id, flight.consumer_id, flight.received_at) == ("in-flight", None, None)
        lease = ConsumerLease(queue, 600)
        assert lease.start() == 0  # received before leases: it waits out its visibility timeout
        try:
            [m] = queue.receive(visibility_timeout=600, consumer=lease.consumer_id)
            assert m.id == "waiting"
            assert {f.id: f.consumer_id for f in queue.in_flight()} == {
                "waiting": lease.consumer_id,
                "in-flight": None,
            }
            assert queue.delete("r.in-flight")
        finally:
            lease.stop()
    finally:
        queue.close()
    SQLiteQueue(path).close()  # opening an up-to-date file again changes nothing

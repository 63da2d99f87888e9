"""Nothing looks stuck after a crash: worker processes hold consumer leases on the queue.

A worker SIGKILLed mid-document has its message reclaimed as soon as a worker starts, long
before the (here 600 s) visibility timeout; a worker starting beside a live one never takes the
live one's messages; a worker that stops renewing without dying (SIGSTOP) loses its messages once
its lease runs out. Workers run as real processes (`bastion serve worker`) from one
`bastion.yaml`; for the last two the orchestrator is a socket that takes calls and never answers,
so the first worker holds its message for as long as the test needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.config import load_settings
from bastion.pipeline.synthetic import synthetic_invoice
from bastion.project import init_project
from bastion.storage.queue import InFlight, queue_path
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.cli.runner import process_stdout
from tests.e2e.test_crash_safety import Worker
from tests.e2e.test_pipeline_agents import Flow

VISIBILITY = 600  # far beyond every deadline below: only a reclaim can explain a redelivery


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _project(tmp_path: Path, lease: float, concurrency: int = 2) -> Path:
    config = init_project(tmp_path / "p").config
    assign_ports(
        config,
        pipeline={
            "visibility_timeout_seconds": VISIBILITY,
            "consumer_lease_seconds": lease,
            "max_receive_count": 50,
            "worker_concurrency": concurrency,
        },
        client={"timeout_seconds": VISIBILITY},
    )
    return config


class Workers:
    """Worker processes started from one config; all killed at the end."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.started: list[Worker] = []

    def start(self) -> Worker:
        worker = Worker(self.config, self.logs / f"worker-{len(self.started)}.log")
        worker.start()
        self.started.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.process is not None and worker.process.poll() is None:
                worker.kill()


def _pid(worker: Worker) -> int:
    assert worker.process is not None
    return worker.process.pid


def _held(flow: Flow) -> list[InFlight]:
    return flow.queue.in_flight()


def _held_by(flow: Flow, worker: Worker, receive_count: int) -> bool:
    messages = _held(flow)
    return (
        len(messages) == 1
        and messages[0].consumer is not None
        and messages[0].consumer.pid == _pid(worker)
        and messages[0].receive_count == receive_count
    )


def _status(config: Path, *args: str) -> str:
    """`bastion status` as a user runs it: a process of its own."""
    return process_stdout("status", "--config", str(config), *args, env={"COLUMNS": "250"})


# -- a worker killed mid-document ----------------------------------------------------------------


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[Flow, Workers]]:
    # A lease far longer than the wait below: only seeing that the process is gone explains a
    # reclaim in time.
    config = _project(tmp_path, lease=300)
    with pipeline_in_threads(config, gateway=False, worker=False) as settings:
        workers = Workers(config, tmp_path)
        try:
            yield Flow(settings, "unused"), workers
        finally:
            workers.kill_all()


@pytest.mark.timeout(300)  # several processes on cores shared with the other test worker
def test_sigkilled_worker_messages_are_reclaimed_at_once_by_a_restarted_worker(
    pipeline: tuple[Flow, Workers],
) -> None:
    flow, workers = pipeline
    doc_id, _ = flow.submit(synthetic_invoice(1, extra_pages=150))  # takes a while to extract
    first = workers.start()
    _wait(lambda: flow.repo.get_document(doc_id)["status"] == "processing", 60, "processing")  # type: ignore[index]
    first.kill()
    [held] = _held(flow)
    assert held.consumer is not None and held.consumer.pid == _pid(first)
    assert held.receive_count == 1
    assert held.visible_at > time.time() + VISIBILITY - 120  # nowhere near visible by itself

    # `bastion status` says what holds it and why it is not moving.
    [row] = json.loads(_status(flow.config, "--json"))["in_flight"]
    assert (row["id"], row["document_id"], row["receive_count"]) == (held.id, doc_id, 1)
    assert (row["consumer_pid"], row["consumer_state"]) == (_pid(first), "process gone")
    text = _status(flow.config)
    assert held.id in text and doc_id in text and "process gone" in text
    assert "go back to the queue as soon as a worker runs" in text

    workers.start()
    _wait(lambda: flow.queue.depth() == 0, 90, "the restarted worker to archive the document")
    doc = flow.repo.get_document(doc_id)
    assert doc is not None and doc["status"] == "archived"
    assert sum(h["event"] == "processing" for h in doc["history"]) == 2
    assert flow.queue.dlq_depth() == 0


# -- a worker that holds its message: an orchestrator that never answers -----------------------


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[Callable[[float], tuple[Flow, Workers]]]:
    """A project whose orchestrator takes calls and never answers; `lease` seconds per worker.
    The archivist is real: the workers record their attempts through it."""
    hold = socket.create_server(("127.0.0.1", 0), backlog=64)  # connections wait, unanswered
    started: list[Workers] = []
    archivists = contextlib.ExitStack()

    def make(lease: float) -> tuple[Flow, Workers]:
        # One document at a time: holding it, the worker does not poll the queue.
        config = _project(tmp_path, lease, concurrency=1)
        doc: dict[str, Any] = yaml.safe_load(config.read_text(encoding="utf-8"))
        doc["agents"]["orchestrator"]["url"] = f"http://127.0.0.1:{hold.getsockname()[1]}"
        config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        archivists.enter_context(
            pipeline_in_threads(config, worker=False, gateway=False, only=("archivist",))
        )
        workers = Workers(config, tmp_path)
        started.append(workers)
        return Flow(load_settings(config), "unused"), workers

    try:
        yield make
    finally:
        for workers in started:
            workers.kill_all()
        archivists.close()
        hold.close()


@pytest.mark.timeout(300)  # several processes on cores shared with the other test worker
def test_a_starting_worker_never_takes_a_live_workers_messages(
    stalled: Callable[[float], tuple[Flow, Workers]],
) -> None:
    lease = 3.0
    flow, workers = stalled(lease)
    doc_id, _ = flow.submit(synthetic_invoice(1))
    first = workers.start()
    _wait(lambda: _held_by(flow, first, 1), 60, "the first worker to hold the message")
    second = workers.start()

    def second_lease() -> float | None:
        mine = [c for c in flow.queue.consumers() if c.pid == _pid(second)]
        return mine[0].lease_expires_at if mine else None

    _wait(lambda: second_lease() is not None, 60, "the second worker to register")
    registered = second_lease()
    assert registered is not None
    # The second worker reclaims on start and on every renewal (every lease / 3): over two
    # whole lease times, the first worker's lease would have run out had it not renewed it.
    _wait(
        lambda: (second_lease() or 0) > registered + 2 * lease,
        60,
        "the second worker to renew its lease over two lease times",
    )
    assert _held_by(flow, first, 1), _held(flow)
    doc = flow.repo.get_document(doc_id)
    assert doc is not None and doc["status"] == "processing"
    assert sum(h["event"] == "processing" for h in doc["history"]) == 1
    assert first.process is not None and first.process.poll() is None


@pytest.mark.timeout(300)  # several processes on cores shared with the other test worker
def test_a_worker_that_stops_renewing_loses_its_messages_when_its_lease_runs_out(
    stalled: Callable[[float], tuple[Flow, Workers]],
) -> None:
    flow, workers = stalled(2.0)
    doc_id, _ = flow.submit(synthetic_invoice(1))
    first = workers.start()
    _wait(lambda: _held_by(flow, first, 1), 60, "the first worker to hold the message")
    # Its attempt is on the record: it now waits on the orchestrator, holding no database lock.
    _wait(lambda: _attempts(flow, doc_id) == ["attempt 1"], 30, "the first attempt recorded")
    _pause_outside_queue_writes(_pid(first), flow)  # alive, but neither working nor renewing
    second = workers.start()
    _wait(lambda: _held_by(flow, second, 2), 60, "the second worker to reclaim the message")
    _wait(
        lambda: _attempts(flow, doc_id) == ["attempt 1", "attempt 2"],
        30,
        "the second attempt recorded",
    )
    assert first.process is not None and first.process.poll() is None  # never died


def _attempts(flow: Flow, doc_id: str) -> list[str]:
    """The `processing` entries of the document's history (`attempt N`), in order."""
    doc = flow.repo.get_document(doc_id)
    assert doc is not None
    return [str(h.get("detail")) for h in doc["history"] if h["event"] == "processing"]


def _pause_outside_queue_writes(pid: int, flow: Flow) -> None:
    """SIGSTOP `pid` at a moment it does not hold the queue file's write lock (a process
    stopped inside a transaction would block every other one)."""
    p = flow.settings.pipeline
    lock = str(queue_path(p.queue_url, flow.settings.base_dir)) + ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        for _ in range(100):
            os.kill(pid, signal.SIGSTOP)
            _wait(lambda: _state(pid) == "T", 10, "the worker to stop")
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.01)
        raise AssertionError("the worker never let go of the queue's write lock")
    finally:
        os.close(fd)


def _state(pid: int) -> str:
    """The process's state letter in /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]

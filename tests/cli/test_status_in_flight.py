"""`bastion status` lists the messages in flight: ids whole, age, receive count, and who holds
each (a live lease, a consumer that is gone, or nobody while a retry waits). Run as a real
process against a project's queue file."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.cli.status_cmd import format_age
from bastion.config import load_settings
from bastion.pipeline.stores import open_pipeline_queue
from bastion.project import init_project
from bastion.storage.queue import Queue
from tests.cli.runner import process_stdout


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Queue]]:
    config = init_project(tmp_path / "proj").config
    queue = open_pipeline_queue(load_settings(config))
    try:
        yield config, queue
    finally:
        queue.close()


def _status(config: Path, *args: str) -> str:
    return process_stdout("status", "--config", str(config), *args, env={"COLUMNS": "250"})


def test_status_lists_messages_in_flight_with_age_receive_count_and_holder(
    project: tuple[Path, Queue],
) -> None:
    config, queue = project
    # Opaque document ids of any shape are shown whole.
    docs = [f"doc_{secrets.token_urlsafe(30)}" for _ in range(4)]
    ids = [queue.send({"document_id": d}) for d in docs]
    live = queue.register_consumer(600)
    lapsed = queue.register_consumer(0.05)
    [held] = queue.receive(visibility_timeout=600, consumer=live)
    [retry] = queue.receive(visibility_timeout=600, consumer=live)
    assert queue.change_visibility(retry.receipt_handle, 300, reason="dependency_unavailable")
    for first_try in queue.receive(2, visibility_timeout=600, consumer=lapsed):
        assert queue.change_visibility(first_try.receipt_handle, 0)  # in send order
    [lost] = queue.receive(visibility_timeout=600, consumer=lapsed)
    assert (held.id, retry.id, lost.id) == tuple(ids[:3])
    [lease] = [c.lease_expires_at for c in queue.consumers() if c.id == lapsed]
    deadline = time.monotonic() + 10
    while time.time() <= lease:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    doc = json.loads(_status(config, "--json"))
    assert doc["queue"]["in_flight"] == 3 and doc["queue"]["visible"] == 1
    rows = doc["in_flight"]
    assert [(r["id"], r["document_id"]) for r in rows] == list(zip(ids[:3], docs[:3], strict=True))
    assert [r["receive_count"] for r in rows] == [1, 1, 2]
    assert [r["consumer_state"] for r in rows] == [
        "held",
        "none (waiting to retry)",
        "lease expired",
    ]
    assert [r["consumer"] for r in rows] == [live, None, lapsed]
    assert rows[0]["consumer_pid"] == os.getpid()
    assert rows[0]["consumer_host"] == socket.gethostname()
    assert rows[1]["last_error"] == "dependency_unavailable"
    for row in rows:
        assert row["age_seconds"] >= row["held_seconds"] >= 0
        assert row["visible_in_seconds"] > 0

    text = _status(config)
    assert "in flight" in text and "receive count" in text
    lines = {m: next(line for line in text.splitlines() if m in line) for m in ids[:3]}
    assert ids[3] not in text  # visible, not in flight
    for message_id, document_id in zip(ids[:3], docs[:3], strict=True):
        assert document_id in lines[message_id]
    assert f"pid {os.getpid()} on {socket.gethostname()} (held)" in lines[held.id]
    assert "none (waiting to retry)" in lines[retry.id]
    assert "(lease expired)" in lines[lost.id] and re.search(r"│\s*2\s*│", lines[lost.id])
    assert re.search(r"│\s*\d+s\s*│", lines[held.id])  # the age
    assert "go back to the queue as soon as a worker runs" in text


def test_status_with_nothing_in_flight_has_no_in_flight_table(
    project: tuple[Path, Queue],
) -> None:
    config, queue = project
    queue.send({"document_id": "waiting"})
    assert json.loads(_status(config, "--json"))["in_flight"] == []
    text = _status(config)
    assert "receive count" not in text and "go back to the queue" not in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0s"), (59.9, "59s"), (65, "1m 05s"), (3600 * 2 + 61, "2h 01m"), (-3, "0s")],
)
def test_ages_read_as_a_person_would(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown

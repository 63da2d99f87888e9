"""The PostgreSQL queue beyond the contract: receives never share a message and never wait for
each other (SKIP LOCKED), long polls woken by a NOTIFY or bounded by the next delayed message,
its tables and their version, URLs and errors without the password, `pipeline.queue_url`."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from bastion.config import ConfigError, load_settings
from bastion.project import init_project
from bastion.storage.queue import Queue, open_queue
from bastion.storage.queue.postgres import PostgresQueue, PostgresQueueError, display_url
from bastion.testing.ports import closed_port_url
from tests.cli.test_cli import run

Opened = Callable[..., PostgresQueue]


@pytest.fixture
def opened(postgres_queue_url: str) -> Iterator[Opened]:
    """Open queues in the test's own schema (`url=` another URL); closed at the end."""
    queues: list[PostgresQueue] = []

    def make(url: str = postgres_queue_url, **kw: Any) -> PostgresQueue:
        q = open_queue(url, **kw)
        assert isinstance(q, PostgresQueue)
        queues.append(q)
        return q

    yield make
    for q in queues:
        q.close()


def _schema(url: str) -> str:
    return url.rpartition("csearch_path%3D")[2]


# -- SKIP LOCKED ---------------------------------------------------------------------------------


def _take_one_at_a_time(url: str, out: str, barrier: Any) -> None:
    queue = open_queue(url)
    barrier.wait()
    got: list[list[Any]] = []
    while messages := queue.receive(1, visibility_timeout=600):
        got.append([messages[0].id, messages[0].receive_count])
    queue.close()
    Path(out).write_text(json.dumps(got))


@pytest.mark.postgres
def test_two_processes_receiving_at_once_never_get_the_same_message(
    postgres_queue_url: str, opened: Opened, tmp_path: Path
) -> None:
    queue = opened()
    sent = {queue.send({"i": i}) for i in range(150)}
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"receiver-{n}.json" for n in range(2)]
    procs = [
        ctx.Process(target=_take_one_at_a_time, args=(postgres_queue_url, str(out), barrier))
        for out in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    first, second = (json.loads(out.read_text()) for out in outs)
    assert first and second  # both took part
    assert not {m for m, _ in first} & {m for m, _ in second}
    assert {m for m, _ in first} | {m for m, _ in second} == sent
    assert all(count == 1 for _, count in first + second)  # never handed out twice
    assert queue.stats().in_flight == 150


@pytest.mark.postgres
def test_a_receive_skips_rows_another_transaction_holds_instead_of_waiting(
    postgres_queue_url: str, opened: Opened
) -> None:
    # Waiting for a row lock longer than this fails the receive instead of hanging the test.
    queue = opened(postgres_queue_url + "%20-clock_timeout%3D5000")
    held = queue.send({"n": 1})
    free = queue.send({"n": 2})
    with psycopg.connect(postgres_queue_url) as other:  # a receive in progress elsewhere
        other.execute("SELECT 1 FROM queue_messages WHERE id = %s FOR UPDATE", (held,))
        assert [m.id for m in queue.receive(2)] == [free]
    assert [m.id for m in queue.receive(2)] == [held]


# -- long polls ----------------------------------------------------------------------------------


class _Waits:
    """Records each wait of a queue's long poll: its timeout and whether a NOTIFY ended it."""

    def __init__(self, queue: PostgresQueue, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self.timeouts: list[float] = []
        self.notified: list[bool] = []
        original = queue._await_notification

        def wait(conn: psycopg.Connection[Any], timeout: float) -> bool:
            self.timeouts.append(timeout)
            self.started.set()
            notified = original(conn, timeout)
            self.notified.append(notified)
            return notified

        monkeypatch.setattr(queue, "_await_notification", wait)


def _hold(queue: Queue) -> tuple[str, str]:
    """Send a message and receive it as a new consumer: (consumer, receipt)."""
    queue.send({"held": True})
    consumer = queue.register_consumer(600)
    [message] = queue.receive(visibility_timeout=600, consumer=consumer)
    return consumer, message.receipt_handle


def _send(queue: Queue) -> Callable[[], object]:
    return lambda: queue.send({"late": True})


def _release(queue: Queue) -> Callable[[], object]:
    _, receipt = _hold(queue)
    return lambda: queue.change_visibility(receipt, 0)


def _unregister(queue: Queue) -> Callable[[], object]:
    consumer, _ = _hold(queue)
    return lambda: queue.unregister_consumer(consumer)


def _reclaim(queue: Queue) -> Callable[[], object]:
    consumer, _ = _hold(queue)
    return lambda: queue.reclaim(gone=[consumer])


# What another thread does while a long poll waits (set up before the poll starts).
WAKERS = {
    "send": _send,
    "change_visibility_0": _release,
    "unregister": _unregister,
    "reclaim_gone": _reclaim,
}


@pytest.mark.postgres
@pytest.mark.parametrize("waker", WAKERS)
def test_a_long_poll_is_woken_by_another_thread(
    waker: str, opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = opened()
    wake = WAKERS[waker](other)
    consumer = opened()
    waits = _Waits(consumer, monkeypatch)

    def act() -> None:
        assert waits.started.wait(30)
        wake()

    thread = threading.Thread(target=act)
    thread.start()
    try:
        got = consumer.receive(wait_seconds=60)
    finally:
        thread.join()
    assert len(got) == 1
    assert waits.notified == [True]  # the NOTIFY ended the wait, not its timeout


@pytest.mark.postgres
def test_a_long_poll_waits_only_until_the_next_delayed_message(
    opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = opened()
    waits = _Waits(queue, monkeypatch)
    later = queue.send({"later": True}, delay_seconds=0.3)
    assert [m.id for m in queue.receive(wait_seconds=60)] == [later]
    assert waits.notified[0] is False  # no NOTIFY came: the message's time did
    assert waits.timeouts[0] <= 0.3  # the wait was for the message, not for the 60 s


# -- tables --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_tables_are_created_once_even_by_processes_opening_at_once(
    postgres_queue_url: str, opened: Opened
) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            opened().close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(postgres_queue_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (_schema(postgres_queue_url),),
        ).fetchall()
        versions = conn.execute("SELECT version FROM queue_schema").fetchall()
    assert {t for (t,) in tables} == {
        "queue_schema",
        "queue_messages",
        "queue_dead_letters",
        "queue_consumers",
    }
    assert versions == [(1,)]


@pytest.mark.postgres
def test_tables_of_a_newer_version_are_refused(postgres_queue_url: str, opened: Opened) -> None:
    opened().close()
    with psycopg.connect(postgres_queue_url, autocommit=True) as conn:
        conn.execute("INSERT INTO queue_schema (version) VALUES (99)")
    with pytest.raises(PostgresQueueError, match=r"newer schema \(99\).*upgrade Bastion"):
        opened()


@pytest.mark.postgres
def test_every_spelling_of_the_url_opens_the_same_queue(
    postgres_queue_url: str, opened: Opened
) -> None:
    rest = postgres_queue_url.partition("://")[2]
    sent = opened(f"postgres://{rest}").send({"n": 1})
    [m] = opened(f"postgresql+psycopg://{rest}").receive()
    assert m.id == sent


# -- URLs, errors and settings -------------------------------------------------------------------


def test_errors_name_the_server_never_the_password() -> None:
    down = closed_port_url(scheme="postgresql").replace("://", "://bastion:s3cret@") + "/queue"
    assert display_url(down) == down.replace("bastion:s3cret@", "")
    with pytest.raises(ConnectionError, match="cannot reach the PostgreSQL queue") as info:
        open_queue(down + "?connect_timeout=5")
    assert "s3cret" not in str(info.value) and display_url(down) in str(info.value)
    with pytest.raises(ValueError, match="invalid PostgreSQL queue URL") as bad:
        open_queue(down + "?no_such_option=s3cret")
    assert "s3cret" not in str(bad.value)


def test_pipeline_queue_url_takes_postgresql_and_names_only_the_scheme_it_refuses(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bastion.yaml"
    url = "postgresql://bastion:s3cret@db.internal:5432/bastion"
    config.write_text(yaml.safe_dump({"pipeline": {"queue_url": url}}))
    assert load_settings(config).pipeline.queue_url == url
    config.write_text(yaml.safe_dump({"pipeline": {"queue_url": "mysql://u:s3cret@db/q"}}))
    with pytest.raises(ConfigError, match="scheme mysql:// is not a queue backend") as info:
        load_settings(config)
    assert "s3cret" not in str(info.value)


@pytest.mark.postgres
def test_dlq_and_status_commands_read_a_postgresql_queue(
    postgres_queue_url: str, opened: Opened, tmp_path: Path
) -> None:
    config = init_project(tmp_path / "proj").config
    raw = yaml.safe_load(config.read_text())
    raw.setdefault("pipeline", {})["queue_url"] = postgres_queue_url
    config.write_text(yaml.safe_dump(raw))
    queue = opened()
    queue.send({"document_id": "doc-1", "filename": "a.pdf"})
    [m] = queue.receive()
    assert queue.dead_letter(m.receipt_handle, "not_pdf")
    listed = run("dlq", "list", "--json", "--config", str(config))
    assert listed.exit_code == 0, listed.stderr
    [letter] = json.loads(listed.stdout)
    assert (letter["id"], letter["reason"], letter["filename"]) == (m.id, "not_pdf", "a.pdf")
    status = run("status", "--json", "--config", str(config))
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["queue"] == {
        "visible": 0,
        "in_flight": 0,
        "delayed": 0,
        "dead": 1,
    }

"""The queue contract: every backend (`backend_url` params) must pass these tests."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.storage.queue import REASON_MAX_RECEIVES, Queue, open_queue
from tests.conftest import QUEUE_BACKENDS

MakeQueue = Callable[..., Queue]


@pytest.fixture(params=QUEUE_BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    for mark in request.node.iter_markers("not_on"):
        if request.param in mark.args:
            pytest.skip(f"not applicable on {request.param}: {mark.kwargs['reason']}")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_queue_url"))
    if request.param == "redis":
        return str(request.getfixturevalue("redis_queue_url"))
    if request.param == "sqs":
        return str(request.getfixturevalue("sqs_queue_url"))
    raise AssertionError(request.param)


# SQS counts visibility timeouts and delays in whole seconds (tests/storage/test_sqs_queue.py
# checks these points with whole seconds).
_WHOLE_SECONDS = "SQS visibility timeouts and delays are whole seconds"


@pytest.fixture
def make_queue(backend_url: str) -> Iterator[MakeQueue]:
    opened: list[Queue] = []

    def make(**kw: Any) -> Queue:
        q = open_queue(backend_url, **kw)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


@pytest.fixture
def queue(make_queue: MakeQueue) -> Queue:
    return make_queue()


def test_send_receive_delete(queue: Queue) -> None:
    mid = queue.send({"document_id": "a" * 64, "n": 1})
    assert queue.depth() == 1
    [msg] = queue.receive()
    assert msg.id == mid
    assert msg.body == {"document_id": "a" * 64, "n": 1}
    assert msg.receive_count == 1
    assert abs(msg.sent_at - time.time()) < 5
    assert queue.delete(msg.receipt_handle)
    assert queue.depth() == 0
    assert queue.receive() == []
    assert not queue.delete(msg.receipt_handle)


def test_receive_batches_in_send_order(queue: Queue) -> None:
    ids = [queue.send({"i": i}) for i in range(5)]
    got = queue.receive(3)
    assert [m.id for m in got] == ids[:3]
    assert len({m.receipt_handle for m in got}) == 3
    assert [m.id for m in queue.receive(10)] == ids[3:]


def test_body_must_be_a_json_dict(queue: Queue) -> None:
    with pytest.raises(TypeError):
        queue.send(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queue.send({"x": float("nan")})
    assert queue.depth() == 0


@pytest.mark.not_on("sqs", reason=_WHOLE_SECONDS)
def test_delay_seconds(queue: Queue) -> None:
    queue.send({"later": True}, delay_seconds=0.3)
    assert queue.receive() == []
    assert queue.stats().delayed == 1 and queue.depth() == 1
    time.sleep(0.35)
    assert [m.body for m in queue.receive()] == [{"later": True}]


@pytest.mark.not_on("sqs", reason=_WHOLE_SECONDS)
def test_invisible_while_claimed_visible_after_timeout(queue: Queue) -> None:
    queue.send({"x": 1})
    [first] = queue.receive(visibility_timeout=0.3)
    assert queue.receive() == []
    assert queue.stats().in_flight == 1
    time.sleep(0.35)
    [second] = queue.receive(visibility_timeout=30)
    assert second.id == first.id
    assert second.receipt_handle != first.receipt_handle
    assert second.receive_count == 2
    # The first consumer's claim expired and someone else holds the message now.
    assert not queue.delete(first.receipt_handle)
    assert not queue.change_visibility(first.receipt_handle, 0)
    assert not queue.dead_letter(first.receipt_handle, "late")
    assert queue.depth() == 1
    assert queue.delete(second.receipt_handle)


def test_receive_count_increments(queue: Queue) -> None:
    queue.send({"x": 1})
    counts = []
    for _ in range(3):
        [m] = queue.receive(visibility_timeout=30)
        counts.append(m.receive_count)
        assert queue.change_visibility(m.receipt_handle, 0)
    assert counts == [1, 2, 3]


def test_change_visibility_extends_and_releases(queue: Queue) -> None:
    queue.send({"x": 1})
    [m] = queue.receive(visibility_timeout=0.2)
    assert queue.change_visibility(m.receipt_handle, 30)
    time.sleep(0.25)
    assert queue.receive() == []  # extended past the original timeout
    assert queue.change_visibility(m.receipt_handle, 0)
    [again] = queue.receive()
    assert again.id == m.id
    with pytest.raises(ValueError):
        queue.change_visibility(again.receipt_handle, -1)


def test_dead_letter_after_max_receive_count_with_last_reason(make_queue: MakeQueue) -> None:
    queue = make_queue(max_receive_count=3)
    mid = queue.send({"doc": "x"})
    for attempt in range(3):
        [m] = queue.receive()
        assert m.receive_count == attempt + 1
        assert queue.change_visibility(m.receipt_handle, 0, reason=f"timeout #{attempt + 1}")
    assert queue.receive() == []
    assert queue.depth() == 0
    assert queue.dlq_depth() == 1
    [dead] = queue.dlq_list()
    assert dead.id == mid
    assert dead.body == {"doc": "x"}
    assert dead.receive_count == 3
    assert dead.reason == "timeout #3"


@pytest.mark.not_on("sqs", reason=_WHOLE_SECONDS)
def test_dead_letter_after_expiry_without_reason(make_queue: MakeQueue) -> None:
    queue = make_queue(max_receive_count=1)
    queue.send({"doc": "x"})
    [m] = queue.receive(visibility_timeout=0.1)
    time.sleep(0.15)
    assert queue.receive() == []
    [dead] = queue.dlq_list()
    assert dead.reason == REASON_MAX_RECEIVES
    assert not queue.delete(m.receipt_handle)


def test_dead_letter_poison_message(queue: Queue) -> None:
    queue.send({"ok": True})
    poison = queue.send({"bad": True})
    msgs = queue.receive(2)
    bad = next(m for m in msgs if m.id == poison)
    assert queue.dead_letter(bad.receipt_handle, "not_pdf")
    assert not queue.delete(bad.receipt_handle)
    assert queue.dlq_depth() == 1 and queue.depth() == 1
    [dead] = queue.dlq_list()
    assert (dead.id, dead.reason, dead.receive_count) == (poison, "not_pdf", 1)


def test_redrive_moves_back_with_fresh_count(make_queue: MakeQueue) -> None:
    queue = make_queue(max_receive_count=2)
    ids = [queue.send({"i": i}) for i in range(3)]
    for m in queue.receive(3):
        queue.dead_letter(m.receipt_handle, "boom")
    assert queue.dlq_depth() == 3 and queue.depth() == 0
    assert queue.redrive([ids[0], "no-such-id"]) == 1
    assert queue.dlq_depth() == 2
    [m] = queue.receive(5)
    assert (m.id, m.receive_count) == (ids[0], 1)
    assert queue.redrive() == 2
    assert queue.dlq_depth() == 0
    assert sorted(x.id for x in queue.receive(5)) == sorted(ids[1:])
    assert queue.redrive() == 0


@pytest.mark.not_on("sqs", reason="SQS keeps messages 60 s at least and purges them itself")
def test_retention_purges_expired_messages(make_queue: MakeQueue) -> None:
    queue = make_queue(retention_seconds=0.3)
    queue.send({"old": True})
    queue.send({"dead": True})
    [m] = queue.receive()
    queue.dead_letter(m.receipt_handle, "x")
    assert queue.depth() == 1 and queue.dlq_depth() == 1
    time.sleep(0.35)
    fresh = queue.send({"new": True})
    assert queue.depth() == 1 and queue.dlq_depth() == 0
    assert [x.id for x in queue.receive(5)] == [fresh]


def test_queues_in_one_backend_are_separate(make_queue: MakeQueue) -> None:
    a = make_queue(name="a")
    b = make_queue(name="b")
    a.send({"q": "a"})
    assert b.receive() == [] and b.depth() == 0
    assert [m.body for m in a.receive()] == [{"q": "a"}]


def test_messages_survive_reopening(make_queue: MakeQueue) -> None:
    q1 = make_queue()
    mid = q1.send({"durable": True})
    q1.close()
    assert [m.id for m in make_queue().receive()] == [mid]


def test_long_poll_returns_early_when_a_message_arrives(make_queue: MakeQueue) -> None:
    consumer = make_queue()
    producer = make_queue()
    timer = threading.Timer(0.3, lambda: producer.send({"late": True}))
    started = time.monotonic()
    timer.start()
    try:
        got = consumer.receive(wait_seconds=5)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert [m.body for m in got] == [{"late": True}]
    assert 0.25 <= elapsed < 2


def test_long_poll_waits_then_returns_empty(queue: Queue) -> None:
    started = time.monotonic()
    assert queue.receive(wait_seconds=0.3) == []
    assert 0.29 <= time.monotonic() - started < 1.5


def _consume(url: str, out: str, barrier: Any) -> None:
    queue = open_queue(url)
    barrier.wait()
    got: list[list[Any]] = []
    while True:
        msgs = queue.receive(10, visibility_timeout=60, wait_seconds=0.3)
        if not msgs:
            break
        time.sleep(0.002)  # "process" the batch, as a real worker would, off the write lock
        for m in msgs:
            got.append([m.id, m.receive_count, queue.delete(m.receipt_handle)])
    queue.close()
    Path(out).write_text(json.dumps(got))


@pytest.mark.timeout(360)  # 4 processes on shared cores; on SQS, through moto
def test_concurrent_consumers_get_each_message_exactly_once(
    backend_url: str, make_queue: MakeQueue, tmp_path: Path
) -> None:
    queue = make_queue()
    sent = {queue.send({"i": i}) for i in range(500)}
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    outs = [tmp_path / f"consumer-{n}.json" for n in range(4)]
    procs = [ctx.Process(target=_consume, args=(backend_url, str(out), barrier)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)  # a hang guard only: the consumers stop once the queue is empty
        assert p.exitcode == 0
    per_consumer = [json.loads(out.read_text()) for out in outs]
    delivered = [row for rows in per_consumer for row in rows]
    ids = [row[0] for row in delivered]
    assert len(ids) == len(set(ids)) == 500  # no duplicates
    assert set(ids) == sent  # none lost
    assert all(count == 1 and deleted for _, count, deleted in delivered)  # none timed out
    assert sum(1 for rows in per_consumer if rows) >= 2  # the work was actually shared
    assert queue.depth() == 0 and queue.dlq_depth() == 0


# -- consumers and leases ------------------------------------------------------------------------


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _lapse(queue: Queue, consumer_id: str) -> None:
    """Wait (bounded) until `consumer_id`'s short lease is over."""
    [lease] = [c.lease_expires_at for c in queue.consumers() if c.id == consumer_id]
    _wait_until(lambda: time.time() > lease, "the lease to run out")


def test_receive_records_its_consumer_and_in_flight_lists_it(queue: Queue) -> None:
    consumer = queue.register_consumer(600)
    held = queue.send({"document_id": "doc-1"})
    waiting = queue.send({"document_id": "doc-2"})
    [m] = queue.receive(visibility_timeout=600, consumer=consumer)
    assert m.id == held
    [flight] = queue.in_flight()
    assert (flight.id, flight.body, flight.receive_count) == (held, {"document_id": "doc-1"}, 1)
    assert flight.consumer_id == consumer
    assert flight.consumer is not None and flight.consumer.id == consumer
    assert flight.consumer.pid == os.getpid()
    assert flight.received_at is not None and flight.sent_at <= flight.received_at <= time.time()
    assert flight.visible_at > time.time() + 500
    assert waiting not in {f.id for f in queue.in_flight()}  # visible, not in flight
    [registered] = queue.consumers()
    assert registered.id == consumer and registered.lease_expires_at > time.time() + 500


def test_reclaim_releases_an_expired_lease_at_once_never_a_live_one(queue: Queue) -> None:
    live = queue.register_consumer(600)
    lapsed = queue.register_consumer(0.05)
    anonymous = queue.send({"n": 0})
    kept = queue.send({"n": 1})
    lost = queue.send({"n": 2})
    assert [m.id for m in queue.receive(visibility_timeout=600)] == [anonymous]
    [k] = queue.receive(visibility_timeout=600, consumer=live)
    [first] = queue.receive(visibility_timeout=600, consumer=lapsed)
    assert (k.id, first.id) == (kept, lost)
    _lapse(queue, lapsed)

    assert queue.reclaim() == 1
    # Visible again now, long before its 600 s visibility timeout, with its receive count kept.
    [again] = queue.receive(visibility_timeout=600, consumer=live)
    assert (again.id, again.receive_count) == (lost, 2)
    assert not queue.delete(first.receipt_handle)  # the lapsed consumer's receipt is stale
    assert {c.id for c in queue.consumers()} == {live}
    # The live lease's message and the one received without a consumer stay in flight.
    held = {f.id: f.consumer_id for f in queue.in_flight()}
    assert held == {anonymous: None, kept: live, lost: live}
    assert queue.reclaim() == 0
    assert queue.delete(k.receipt_handle) and queue.delete(again.receipt_handle)


def test_reclaim_releases_consumers_known_gone_and_unregistered_ones(queue: Queue) -> None:
    dead = queue.register_consumer(600)
    alive = queue.register_consumer(600)
    for n in range(3):
        queue.send({"n": n})
    [d] = queue.receive(visibility_timeout=600, consumer=dead)
    [a] = queue.receive(visibility_timeout=600, consumer=alive)
    [u] = queue.receive(visibility_timeout=600, consumer="never-registered")
    assert queue.reclaim(gone=[dead]) == 2  # `dead` (said gone) and the unregistered one
    assert sorted(m.id for m in queue.receive(5)) == sorted([d.id, u.id])
    assert [c.id for c in queue.consumers()] == [alive]
    assert [f.consumer_id for f in queue.in_flight() if f.id == a.id] == [alive]


def test_renew_lease_extends_it_and_tells_when_it_had_lapsed(queue: Queue) -> None:
    consumer = queue.register_consumer(0.05)
    [before] = queue.consumers()
    assert queue.renew_lease(consumer, 600)
    [after] = queue.consumers()
    assert after.lease_expires_at > before.lease_expires_at + 500
    assert queue.renew_lease(consumer, 0.05)
    queue.send({"x": 1})
    queue.receive(visibility_timeout=600, consumer=consumer)
    _lapse(queue, consumer)
    assert queue.reclaim() == 1
    assert queue.consumers() == []
    assert not queue.renew_lease(consumer, 600)  # it had been reclaimed: registered again
    assert [c.id for c in queue.consumers()] == [consumer]
    with pytest.raises(ValueError):
        queue.renew_lease(consumer, 0)
    with pytest.raises(ValueError):
        queue.register_consumer(-1)


def test_unregister_hands_back_what_the_consumer_holds(queue: Queue) -> None:
    consumer = queue.register_consumer(600)
    other = queue.register_consumer(600)
    mine = queue.send({"n": 1})
    theirs = queue.send({"n": 2})
    queue.receive(visibility_timeout=600, consumer=consumer)
    queue.receive(visibility_timeout=600, consumer=other)
    assert queue.unregister_consumer(consumer) == 1
    assert [c.id for c in queue.consumers()] == [other]
    [m] = queue.receive(visibility_timeout=600)
    assert (m.id, m.receive_count) == (mine, 2)
    assert [f.consumer_id for f in queue.in_flight() if f.id == theirs] == [other]


def test_a_message_waiting_to_retry_has_no_holder_to_reclaim_it(queue: Queue) -> None:
    consumer = queue.register_consumer(600)
    queue.send({"n": 1})
    [m] = queue.receive(visibility_timeout=600, consumer=consumer)
    assert queue.change_visibility(m.receipt_handle, 600, reason="dependency_unavailable")
    [flight] = queue.in_flight()
    assert (flight.consumer_id, flight.consumer, flight.last_error) == (
        None,
        None,
        "dependency_unavailable",
    )
    assert queue.reclaim(gone=[consumer]) == 0  # the backoff is kept
    assert queue.receive() == []
    assert queue.stats().in_flight == 1


# The clocks of the test and of the backend (the database or Redis server, on this host) read
# to the millisecond at worst.
_CLOCK_SLACK = 0.01


@pytest.mark.not_on("sqs", reason="SQS tells the age of its oldest message only to CloudWatch")
def test_oldest_age_is_how_long_the_longest_waiting_message_has_been_receivable(
    queue: Queue,
) -> None:
    assert queue.oldest_age_seconds() == 0  # empty
    sent = time.time()
    queue.send({"n": 1})
    time.sleep(0.1)  # let it wait
    age = queue.oldest_age_seconds()
    assert age is not None
    assert 0.1 - _CLOCK_SLACK <= age <= time.time() - sent + _CLOCK_SLACK

    [m] = queue.receive(visibility_timeout=600)
    assert queue.oldest_age_seconds() == 0  # in flight: not waiting
    queue.send({"n": 2}, delay_seconds=600)
    assert queue.oldest_age_seconds() == 0  # delayed, not due: not waiting

    released = time.time()
    assert queue.change_visibility(m.receipt_handle, 0)
    again = queue.oldest_age_seconds()
    assert again is not None
    assert 0 <= again <= time.time() - released + _CLOCK_SLACK  # waiting since handed back
    [m] = queue.receive()
    assert queue.delete(m.receipt_handle)
    assert queue.oldest_age_seconds() == 0


@pytest.mark.not_on("sqs", reason=_WHOLE_SECONDS)
def test_a_delayed_message_waits_from_when_it_came_due(queue: Queue) -> None:
    sent = time.time()
    queue.send({"later": True}, delay_seconds=0.1)
    time.sleep(0.2)  # due for 0.1 s at least, and not moved anywhere by a receive
    age = queue.oldest_age_seconds()
    assert age is not None
    assert 0.1 - _CLOCK_SLACK <= age <= time.time() - sent - 0.1 + _CLOCK_SLACK

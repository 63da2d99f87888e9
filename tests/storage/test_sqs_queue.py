"""The SQS queue on moto's SQS, beyond the shared contract: the contract's points SQS can only
keep in whole seconds, its DLQ and redrive policy, the ledger's part (stale receipts refused,
duplicate deliveries dropped, reasons of SQS's own redrive) and the ledger on every database."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from bastion.storage import shared_engine
from bastion.storage.queue import REASON_MAX_RECEIVES, open_queue
from bastion.storage.queue.sqs import SQSQueue
from bastion.storage.queue.sqs_ledger import SQSLedger, create_schema
from tests.conftest import MOTO_ACCOUNT

MakeQueue = Callable[..., SQSQueue]


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def sqs(moto_endpoint: str, aws_env: None) -> Any:
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def make_queue(sqs_queue_url: str) -> Iterator[MakeQueue]:
    opened: list[SQSQueue] = []

    def make(**kw: Any) -> SQSQueue:
        queue = open_queue(sqs_queue_url, **kw)
        assert isinstance(queue, SQSQueue)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()


@pytest.fixture
def queue(make_queue: MakeQueue) -> SQSQueue:
    return make_queue()


def test_visibility_expires_in_whole_seconds_and_a_stale_receipt_is_refused(
    queue: SQSQueue, sqs: Any
) -> None:
    queue.send({"x": 1})
    [first] = queue.receive(visibility_timeout=0.5)  # one second on SQS
    assert queue.receive() == []
    assert queue.stats().in_flight == 1
    [second] = queue.receive(visibility_timeout=30, wait_seconds=5)  # waits out the second
    assert (second.id, second.receive_count) == (first.id, 2)
    # SQS itself accepts a handle the message once had; the ledger refuses it.
    sqs.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=first.receipt_handle, VisibilityTimeout=30
    )
    assert not queue.delete(first.receipt_handle)
    assert not queue.change_visibility(first.receipt_handle, 0)
    assert not queue.dead_letter(first.receipt_handle, "late")
    assert queue.depth() == 1
    assert queue.delete(second.receipt_handle)
    assert queue.depth() == 0


def test_delay_in_whole_seconds(queue: SQSQueue) -> None:
    queue.send({"later": True}, delay_seconds=1)
    assert queue.receive() == []
    assert queue.stats().delayed == 1 and queue.depth() == 1
    assert [m.body for m in queue.receive(wait_seconds=5)] == [{"later": True}]
    with pytest.raises(ValueError, match="900"):
        queue.send({"x": 1}, delay_seconds=901)
    with pytest.raises(ValueError):
        queue.receive(visibility_timeout=-1)


def test_dead_letter_after_expiry_without_reason(make_queue: MakeQueue) -> None:
    queue = make_queue(max_receive_count=1)
    mid = queue.send({"doc": "x"})
    [m] = queue.receive(visibility_timeout=1)
    _wait_until(lambda: queue.receive() == [] and queue.dlq_depth() == 1, "the dead letter")
    [dead] = queue.dlq_list()
    assert (dead.id, dead.reason, dead.receive_count) == (mid, REASON_MAX_RECEIVES, 1)
    assert not queue.delete(m.receipt_handle)
    assert queue.depth() == 0


def test_queues_dlq_redrive_policy_and_retention(
    make_queue: MakeQueue, sqs: Any, sqs_queue_url: str
) -> None:
    queue = make_queue(max_receive_count=3, retention_seconds=1)
    name = urlsplit(sqs_queue_url).path.rsplit("/", 1)[1]
    assert queue.url.endswith(f"/{name}") and queue.dlq_url.endswith(f"/{name}-dlq")
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=queue.dlq_url, AttributeNames=["QueueArn"])
    assert policy == {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": 4,  # one past ours: SQS's redrive is the backstop
    }
    assert attributes["Attributes"]["MessageRetentionPeriod"] == "60"  # SQS's least
    other = make_queue(name="b")
    assert other.url.endswith(f"/{name}-b") and other.dlq_url.endswith(f"/{name}-b-dlq")
    # Our dead letters carry their reason, count and time as message attributes.
    queue.send({"doc": 1})
    [m] = queue.receive()
    assert queue.dead_letter(m.receipt_handle, "not_pdf")
    [raw] = sqs.receive_message(QueueUrl=queue.dlq_url, MessageAttributeNames=["All"])["Messages"]
    attrs = {k: v["StringValue"] for k, v in raw["MessageAttributes"].items()}
    assert attrs["bastion-reason"] == "not_pdf" and attrs["bastion-id"] == m.id
    assert float(attrs["bastion-receive-count"]) == 1
    assert json.loads(raw["Body"]) == {"doc": 1}


def test_a_given_redrive_policy_names_the_dlq(sqs: Any, sqs_queue_url: str) -> None:
    name = urlsplit(sqs_queue_url).path.rsplit("/", 1)[1]
    dlq_url = sqs.create_queue(QueueName=f"{name}-poison")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 10}
    sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(policy)})
    queue = open_queue(sqs_queue_url)
    assert isinstance(queue, SQSQueue) and queue.dlq_url == dlq_url
    queue.send({"doc": 1})
    [m] = queue.receive()
    assert queue.dead_letter(m.receipt_handle, "not_pdf")
    assert [d.reason for d in queue.dlq_list()] == ["not_pdf"]


def test_sqs_own_redrive_keeps_the_reason_the_ledger_recorded(
    make_queue: MakeQueue, sqs: Any
) -> None:
    queue = make_queue(max_receive_count=1)  # SQS moves it at its 2nd receive
    mid = queue.send({"doc": "x"})
    [m] = queue.receive()
    assert queue.change_visibility(m.receipt_handle, 0, reason="ocr_failed")
    # Another client receives it (a move to the DLQ that failed halfway); SQS then moves it.
    sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=queue.url).get("Messages", []) == []
    [dead] = queue.dlq_list()
    assert (dead.id, dead.reason, dead.receive_count, dead.body) == (
        mid,
        "ocr_failed",
        1,
        {"doc": "x"},
    )
    assert queue.redrive() == 1
    [again] = queue.receive()
    assert (again.id, again.receive_count) == (mid, 1)


def test_dlq_list_leaves_the_dead_letters_in_place(queue: SQSQueue) -> None:
    ids = [queue.send({"i": i}) for i in range(12)]
    for m in queue.receive(12):
        assert queue.dead_letter(m.receipt_handle, f"reason {m.body['i']}")
    first = queue.dlq_list()
    assert [d.id for d in first] == ids  # oldest dead first
    assert [d.id for d in queue.dlq_list(5)] == ids[:5]
    assert queue.dlq_depth() == 12 and queue.stats().dead == 12
    assert queue.redrive(ids[3:5]) == 2
    assert sorted(m.id for m in queue.receive(10)) == sorted(ids[3:5])


def test_a_message_not_ours_is_dead_lettered(queue: SQSQueue, sqs: Any) -> None:
    sqs.send_message(QueueUrl=queue.url, MessageBody="not json")
    ok = queue.send({"ok": True})
    assert [m.id for m in queue.receive(5)] == [ok]
    [dead] = queue.dlq_list()
    assert (dead.reason, dead.body) == ("malformed_message", {"raw": "not json"})


def test_the_ledger_drops_an_older_delivery_of_a_message(tmp_path: Any) -> None:
    engine = shared_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(engine)
    ledger = SQSLedger(engine, "https://sqs.example/1/q")

    def record(sqs_id: str, receipt: str, count: int) -> bool:
        return ledger.record(
            id="m",
            sqs_id=sqs_id,
            receipt=receipt,
            receive_count=count,
            body="{}",
            sent_at=time.time(),
            visible_at=time.time() + 30,
            consumer=None,
        )

    assert record("sqs-1", "r2", 2)
    assert not record("sqs-1", "r1", 1)  # a duplicate delivery older than the one recorded
    assert not ledger.forget("r1")
    assert record("sqs-2", "r3", 1)  # redriven: a new SQS message, counting from 1 again
    assert ledger.forget("r3")


def test_the_ledger_on_every_database(db_url: str, moto_endpoint: str, aws_env: None) -> None:
    """The platform database (SQLite, or PostgreSQL when configured) holds the ledger."""
    url = f"{moto_endpoint}/{MOTO_ACCOUNT}/t-{uuid.uuid4().hex[:16]}"
    queue = open_queue(url, ledger_url=db_url)
    live, lapsed = queue.register_consumer(600), queue.register_consumer(0.05)
    kept, lost = queue.send({"n": 1}), queue.send({"n": 2})
    [k] = queue.receive(visibility_timeout=600, consumer=live)
    [first] = queue.receive(visibility_timeout=600, consumer=lapsed)
    assert (k.id, first.id) == (kept, lost)
    _wait_until(lambda: queue.reclaim() == 1, "the lapsed lease to be reclaimed")
    [again] = queue.receive(visibility_timeout=600, consumer=live)
    assert (again.id, again.receive_count) == (lost, 2)
    assert {f.id: f.consumer_id for f in queue.in_flight()} == {kept: live, lost: live}
    assert queue.unregister_consumer(live) == 2
    assert queue.consumers() == []
    assert not queue.delete(first.receipt_handle)
    assert queue.purge_expired() == 0


def test_the_age_of_the_oldest_message_is_not_known(queue: SQSQueue) -> None:
    assert queue.oldest_age_seconds() is None
    queue.send({"x": 1})
    assert queue.oldest_age_seconds() is None  # CloudWatch's ApproximateAgeOfOldestMessage

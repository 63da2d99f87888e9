"""The SQS queue backend: the pipeline's queue on Amazon SQS (or any SQS endpoint), via boto3.

`SQSQueue(url, ledger_url=...)` uses the standard queue at `url`
(`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`), created if missing; a logical queue `name`
other than "default" is the queue `NAME-name` beside it. Messages carry our id and send time as
message attributes; receives long-poll (`WaitTimeSeconds`, at most 20 s per call, as SQS
allows) and hide messages for `VisibilityTimeout`; receipt handles are SQS's.

Dead letters. The DLQ is the queue named by the main queue's redrive policy, or `NAME-dlq`,
created with a redrive policy of `maxReceiveCount = max_receive_count + 1`. We dead-letter
ourselves, so that every dead letter carries its reason: `dead_letter()` sends the message to
the DLQ with its reason, receive count and time as attributes and deletes it from the queue,
and a receive that gets a message already received `max_receive_count` times does the same
(reason: its last recorded error, or `max_receive_count_exceeded`) instead of returning it.
SQS's own redrive, one receive later, is only the backstop if that move failed halfway; such a
dead letter's reason and count come from the ledger. `dlq_list` and `redrive` read the DLQ by
receiving from it (for 30 s at most) and releasing what they leave: two of them at once see
each other's messages hidden.

The ledger (`sqs_ledger`, a SQL database: the platform database by default, or a SQLite file
named with `?ledger=sqlite:///...` on the queue URL) holds what SQS cannot: the consumers and
their leases, each received message's current receipt handle (so a stale handle is refused:
SQS itself accepts any handle a message ever had), holder, visibility deadline and last error.
`reclaim()` hands a lapsed consumer's messages back with ChangeMessageVisibility 0.

Where SQS differs from the contract: visibility timeouts and delays are whole seconds (rounded
up) and at most 12 h and 15 min; retention is SQS's MessageRetentionPeriod (60 s to 14 days,
set on the queues we create) and SQS purges by itself; `stats` are SQS's approximate counts;
`oldest_age_seconds` is None (SQS tells it only to CloudWatch); a standard queue keeps send
order only roughly and may deliver a message twice (the ledger drops a delivery older than one
it has recorded). Credentials come from boto3's usual chain (environment, shared files, an
instance or task role), never from Bastion's configuration.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Collection, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.exceptions import BotoCoreError, ClientError

from bastion.storage.database import shared_engine
from bastion.storage.queue.base import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT,
    REASON_MAX_RECEIVES,
    Consumer,
    DeadLetter,
    InFlight,
    Message,
    QueueStats,
)
from bastion.storage.queue.sqs_ledger import Receipt, SQSLedger, create_schema

MAX_BATCH = 100
_SQS_BATCH = 10  # messages per SQS call
_MAX_WAIT = 20  # seconds: SQS's longest poll
_MAX_VISIBILITY = 43200  # seconds: 12 h
_MAX_DELAY = 900  # seconds: 15 min
_RETENTION_RANGE = (60, 1209600)
_LIST_VISIBILITY = 30  # seconds a DLQ listing hides what it reads
_SHORT_POLL = 0.05  # seconds between polls in a wait shorter than a second
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
_AWS_HOST_RE = re.compile(r"^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$")

# Message attributes.
_ID = "bastion-id"
_SENT_AT = "bastion-sent-at"
_DEAD_AT = "bastion-dead-at"
_REASON = "bastion-reason"
_COUNT = "bastion-receive-count"
_REASON_MALFORMED = "malformed_message"
# Error codes of a queue that does not exist (query and JSON protocols).
_NO_QUEUE = ("NonExistentQueue", "QueueDoesNotExist")


def _seconds(value: float, maximum: int, what: str) -> int:
    """`value` rounded up to whole seconds (SQS's unit), checked against SQS's limit."""
    if value < 0:
        raise ValueError(f"{what} must not be negative")
    if value > maximum:
        raise ValueError(f"{what} is at most {maximum} s on SQS")
    return math.ceil(value)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _number(value: float) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": repr(float(value))}


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def split_queue_url(url: str) -> tuple[str, str | None]:
    """(the SQS queue URL, the ledger URL of its `?ledger=` parameter if any)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    unknown = set(query) - {"ledger"}
    if unknown:
        raise ValueError(f"an SQS queue URL takes only ?ledger=..., not {sorted(unknown)}")
    ledger = query.get("ledger", [None])[-1]
    if ledger is not None and urlsplit(ledger).password is not None:
        raise ValueError(
            "the queue URL is shown in messages and logs: name a ledger database that needs a "
            "password in pipeline.sqs_ledger_url, not in the queue URL"
        )
    return urlunsplit(parts._replace(query="", fragment="")), ledger


class SQSQueue:
    """A `Queue` on the SQS queue at `url`, with its DLQ and its ledger at `ledger_url`."""

    def __init__(
        self,
        url: str,
        *,
        ledger_url: str,
        name: str = "default",
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        if retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive")
        self.max_receive_count = max_receive_count
        self.retention_seconds = float(retention_seconds)
        self.name = name
        parts = urlsplit(url)
        path = parts.path.strip("/").split("/")
        if parts.scheme not in ("http", "https") or len(path) != 2 or not all(path):
            raise ValueError(
                "an SQS queue URL looks like https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"
            )
        base_name = path[1] if name == "default" else f"{path[1]}-{name}"
        if not _NAME_RE.fullmatch(base_name):
            raise ValueError(f"SQS queue name {base_name!r}: up to 80 letters, digits, '-' or '_'")
        aws = _AWS_HOST_RE.match(parts.hostname or "")
        if region is None and aws is not None:
            region = aws.group(1) or aws.group(2)
        if endpoint_url is None and aws is None:
            endpoint_url = f"{parts.scheme}://{parts.netloc}"
        if client is None:
            import boto3

            client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
        self._sqs = client
        try:
            self.url = self._queue(base_name, create_attributes={})
            self.dlq_url = self._dead_letter_queue(base_name)
        except (BotoCoreError, ClientError) as exc:  # no credentials, no access, unreachable
            raise ConnectionError(
                f"cannot open the SQS queue {base_name} at {url}: {exc} (credentials come from "
                "the environment, the AWS profile or the instance role)"
            ) from exc
        engine = shared_engine(ledger_url)
        create_schema(engine)
        self._ledger = SQSLedger(engine, self.url)

    # -- queues -------------------------------------------------------------------------------

    def _retention(self) -> str:
        low, high = _RETENTION_RANGE
        return str(min(max(math.ceil(self.retention_seconds), low), high))

    def _queue(self, queue_name: str, *, create_attributes: dict[str, str]) -> str:
        """The URL of the queue `queue_name`, created (with these attributes) if missing."""
        try:
            return str(self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        except Exception as exc:
            if not any(code in _error_code(exc) for code in _NO_QUEUE):
                raise
        attributes = {"MessageRetentionPeriod": self._retention(), **create_attributes}
        return str(self._sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"])

    def _attributes(self, url: str, *names: str) -> dict[str, str]:
        response = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
        return dict(response.get("Attributes", {}))

    def _dead_letter_queue(self, queue_name: str) -> str:
        """The DLQ named by the queue's redrive policy; without one, `NAME-dlq`, made the
        queue's redrive target."""
        policy = self._attributes(self.url, "RedrivePolicy").get("RedrivePolicy")
        if policy:
            arn = str(json.loads(policy)["deadLetterTargetArn"])
            account, dlq_name = arn.split(":")[4], arn.split(":")[5]
            response = self._sqs.get_queue_url(QueueName=dlq_name, QueueOwnerAWSAccountId=account)
            return str(response["QueueUrl"])
        dlq_url = self._queue(f"{queue_name[:76]}-dlq", create_attributes={})
        arn = self._attributes(dlq_url, "QueueArn")["QueueArn"]
        redrive = {"deadLetterTargetArn": arn, "maxReceiveCount": self.max_receive_count + 1}
        self._sqs.set_queue_attributes(
            QueueUrl=self.url, Attributes={"RedrivePolicy": json.dumps(redrive)}
        )
        return dlq_url

    def close(self) -> None:
        """Nothing to release: the client and the ledger's engine are shared."""

    def __enter__(self) -> SQSQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producer -----------------------------------------------------------------------------

    def _send(self, url: str, body: str, attributes: dict[str, Any], delay: int = 0) -> None:
        self._sqs.send_message(
            QueueUrl=url, MessageBody=body, DelaySeconds=delay, MessageAttributes=attributes
        )

    def send(self, body: dict[str, Any], *, delay_seconds: float = 0) -> str:
        if not isinstance(body, dict):
            raise TypeError("a message body is a dict")
        delay = _seconds(delay_seconds, _MAX_DELAY, "delay_seconds")
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False)
        msg_id = uuid.uuid4().hex
        self._send(self.url, payload, {_ID: _string(msg_id), _SENT_AT: _number(time.time())}, delay)
        return msg_id

    # -- consumer -----------------------------------------------------------------------------

    def _receive_raw(
        self, url: str, count: int, visibility: int, wait: int
    ) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=wait,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _claim(
        self, max_messages: int, visibility: int, wait: int, consumer: str | None
    ) -> list[Message]:
        """One round of receives: up to `max_messages`, the first call waiting `wait` s."""
        messages: list[Message] = []
        while len(messages) < max_messages:
            want = min(_SQS_BATCH, max_messages - len(messages))
            raw = self._receive_raw(self.url, want, visibility, wait)
            wait = 0
            if not raw:
                break
            for item in raw:
                message = self._accept(item, visibility, consumer)
                if message is not None:
                    messages.append(message)
            if len(raw) < want and messages:
                break
        return messages

    def _accept(
        self, item: dict[str, Any], visibility: int, consumer: str | None
    ) -> Message | None:
        """The `Message` of a received SQS message; None if it was dead-lettered instead (out
        of receives, or not ours) or is a duplicate delivery."""
        attrs = item.get("MessageAttributes", {})
        count = int(item["Attributes"]["ApproximateReceiveCount"])
        msg_id = attrs.get(_ID, {}).get("StringValue") or item["MessageId"]
        sent_at = float(
            attrs.get(_SENT_AT, {}).get("StringValue") or int(item["Attributes"]["SentTimestamp"])
        )
        try:
            body = json.loads(item["Body"])
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._to_dlq(item, msg_id, sent_at, count, _REASON_MALFORMED)
            return None
        if count > self.max_receive_count:
            row = self._ledger.take(id=msg_id)
            reason = (row.last_error if row else None) or REASON_MAX_RECEIVES
            self._to_dlq(item, msg_id, sent_at, count - 1, reason)
            return None
        recorded = self._ledger.record(
            id=msg_id,
            sqs_id=item["MessageId"],
            receipt=item["ReceiptHandle"],
            receive_count=count,
            body=item["Body"],
            sent_at=sent_at,
            visible_at=time.time() + visibility,
            consumer=consumer,
        )
        if not recorded:
            return None
        return Message(
            id=msg_id,
            receipt_handle=item["ReceiptHandle"],
            body=body,
            receive_count=count,
            sent_at=sent_at,
        )

    def _to_dlq(
        self, item: dict[str, Any], msg_id: str, sent_at: float, count: int, reason: str
    ) -> None:
        """Send a received message to the DLQ with its reason; delete it from the queue."""
        attributes = {
            _ID: _string(msg_id),
            _SENT_AT: _number(sent_at),
            _COUNT: _number(count),
            _DEAD_AT: _number(time.time()),
            _REASON: _string(reason),
        }
        self._send(self.dlq_url, item["Body"], attributes)
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=item["ReceiptHandle"])

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        wait_seconds: float = 0,
        consumer: str | None = None,
    ) -> list[Message]:
        if not 1 <= max_messages <= MAX_BATCH:
            raise ValueError(f"max_messages must be between 1 and {MAX_BATCH}")
        if wait_seconds < 0:
            raise ValueError("timeouts must not be negative")
        visibility = _seconds(visibility_timeout, _MAX_VISIBILITY, "visibility_timeout")
        deadline = time.monotonic() + wait_seconds
        while True:
            remaining = deadline - time.monotonic()
            wait = min(_MAX_WAIT, int(remaining)) if remaining >= 1 else 0
            messages = self._claim(max_messages, visibility, wait, consumer)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            if wait == 0:  # less than a second left: SQS waits whole seconds, so poll
                time.sleep(min(_SHORT_POLL, remaining))

    def delete(self, receipt_handle: str) -> bool:
        if not self._ledger.forget(receipt_handle):
            return False
        try:
            self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)
        except Exception as exc:
            if "ReceiptHandleIsInvalid" in _error_code(exc):
                return False
            raise
        return True

    def _set_visibility(self, receipt_handle: str, seconds: int) -> bool:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as exc:
            code = _error_code(exc)
            if "MessageNotInflight" in code:
                return seconds == 0  # visible already
            if "ReceiptHandleIsInvalid" in code:
                return False
            raise
        return True

    def change_visibility(
        self, receipt_handle: str, timeout: float, *, reason: str | None = None
    ) -> bool:
        seconds = _seconds(timeout, _MAX_VISIBILITY, "timeout")
        if not self._ledger.hide(receipt_handle, time.time() + seconds, reason):
            return False
        return self._set_visibility(receipt_handle, seconds)

    def dead_letter(self, receipt_handle: str, reason: str) -> bool:
        row = self._ledger.take(receipt=receipt_handle)
        if row is None:
            return False
        item = {"Body": row.body, "ReceiptHandle": receipt_handle}
        self._to_dlq(item, row.id, row.sent_at, row.receive_count, reason[:2000])
        return True

    # -- dead-letter queue --------------------------------------------------------------------

    def _read_dlq(self) -> Iterator[dict[str, Any]]:
        """Receive every visible DLQ message (hidden for a while: release what is not taken)."""
        expected = int(
            self._attributes(self.dlq_url, "ApproximateNumberOfMessages").get(
                "ApproximateNumberOfMessages", 0
            )
        )
        seen = 0
        while seen < expected:
            raw = self._receive_raw(self.dlq_url, _SQS_BATCH, _LIST_VISIBILITY, 0)
            if not raw:
                return
            seen += len(raw)
            yield from raw

    def _release_dlq(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), _SQS_BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": item["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, item in enumerate(items[start : start + _SQS_BATCH])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)

    def _dead_letter_of(self, item: dict[str, Any], rows: dict[str, Receipt]) -> DeadLetter:
        attrs = item.get("MessageAttributes", {})

        def attr(name: str) -> str | None:
            value = attrs.get(name, {}).get("StringValue")
            return None if value is None else str(value)

        msg_id = attr(_ID) or str(item["MessageId"])
        sent_at = float(attr(_SENT_AT) or int(item["Attributes"]["SentTimestamp"]) / 1000)
        row = rows.get(msg_id)
        if attr(_REASON) is not None:  # dead-lettered by us
            reason, count, dead_at = attr(_REASON), float(attr(_COUNT) or 0), attr(_DEAD_AT)
        else:  # moved by SQS's redrive policy: what the ledger knows
            reason = row.last_error if row else None
            count = row.receive_count if row else 0
            dead_at = None if row is None else str(row.visible_at)
        try:
            body = json.loads(item["Body"])
        except ValueError:
            body = {"raw": item["Body"]}
        return DeadLetter(
            id=msg_id,
            body=body if isinstance(body, dict) else {"raw": body},
            receive_count=int(count),
            sent_at=sent_at,
            dead_at=float(dead_at) if dead_at else sent_at,
            reason=reason or REASON_MAX_RECEIVES,
        )

    def _dlq_entries(self) -> list[tuple[dict[str, Any], DeadLetter]]:
        items = list(self._read_dlq())
        ids = [
            item.get("MessageAttributes", {}).get(_ID, {}).get("StringValue") or item["MessageId"]
            for item in items
            if _REASON not in item.get("MessageAttributes", {})
        ]
        rows = self._ledger.peek(ids) if ids else {}
        return [(item, self._dead_letter_of(item, rows)) for item in items]

    def dlq_list(self, limit: int = 100) -> list[DeadLetter]:
        entries = self._dlq_entries()
        self._release_dlq([item for item, _ in entries])
        letters = sorted((letter for _, letter in entries), key=lambda d: d.dead_at)
        return letters[:limit]

    def redrive(self, ids: list[str] | None = None) -> int:
        wanted = None if ids is None else set(ids)
        keep: list[dict[str, Any]] = []
        moved: list[str] = []
        for item, letter in self._dlq_entries():
            if wanted is not None and letter.id not in wanted:
                keep.append(item)
                continue
            attributes = {_ID: _string(letter.id), _SENT_AT: _number(letter.sent_at)}
            self._send(self.url, item["Body"], attributes)
            self._sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=item["ReceiptHandle"])
            moved.append(letter.id)
        self._release_dlq(keep)
        self._ledger.forget_ids(moved)
        return len(moved)

    # -- introspection ------------------------------------------------------------------------

    def _counts(self, url: str) -> tuple[int, int, int]:
        names = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        attrs = self._attributes(url, *names)
        visible, hidden, delayed = (int(attrs.get(name, 0)) for name in names)
        return visible, hidden, delayed

    def stats(self) -> QueueStats:
        visible, in_flight, delayed = self._counts(self.url)
        dead = sum(self._counts(self.dlq_url))
        return QueueStats(visible=visible, in_flight=in_flight, delayed=delayed, dead=dead)

    def oldest_age_seconds(self) -> None:
        """Not known: SQS tells the age of its oldest message only as the CloudWatch metric
        ApproximateAgeOfOldestMessage (read it there), and a message cannot be looked at without
        receiving it, which would count towards its receives and its redrive to the DLQ."""
        return None

    def depth(self) -> int:
        return sum(self._counts(self.url))

    def dlq_depth(self) -> int:
        return sum(self._counts(self.dlq_url))

    def purge_expired(self) -> int:
        """SQS drops messages past MessageRetentionPeriod by itself (so: 0); this forgets the
        ledger rows of messages received before the retention period."""
        self._ledger.purge_before(time.time() - self.retention_seconds)
        return 0

    # -- consumers and leases -----------------------------------------------------------------

    def register_consumer(self, lease_seconds: float) -> str:
        _check_lease(lease_seconds)
        consumer_id = uuid.uuid4().hex
        self._ledger.register(consumer_id, lease_seconds)
        return consumer_id

    def renew_lease(self, consumer_id: str, lease_seconds: float) -> bool:
        _check_lease(lease_seconds)
        return self._ledger.renew(consumer_id, lease_seconds)

    def _make_visible(self, receipts: list[str]) -> int:
        return sum(1 for receipt in receipts if self._set_visibility(receipt, 0))

    def unregister_consumer(self, consumer_id: str) -> int:
        return self._make_visible(self._ledger.release(consumer=consumer_id))

    def reclaim(self, gone: Collection[str] = ()) -> int:
        return self._make_visible(self._ledger.release(gone=list(gone)))

    def consumers(self) -> list[Consumer]:
        return self._ledger.consumers()

    def in_flight(self, limit: int = 100) -> list[InFlight]:
        return self._ledger.in_flight(limit)


def _check_lease(lease_seconds: float) -> None:
    if not lease_seconds > 0:
        raise ValueError("lease_seconds must be positive")

"""The SQS queue's ledger: what SQS does not tell, kept in a SQL database beside the queue.

SQS has no consumers, cannot list the messages in flight, keeps no error with a message and
accepts any receipt handle a message ever had. The ledger records, per received message, its
current receipt handle, receive count, holder (consumer), visibility deadline and last error,
and the registered consumers with their leases. A row is written on each receive and removed
when the message is deleted or dead-lettered.

It lives in any database `bastion.storage.database` opens: SQLite for a single host, PostgreSQL
(by default the platform database, which every worker reaches anyway) for several. Its two
tables (`sqs_ledger_messages`, `sqs_ledger_consumers`) are created when a queue is opened; rows
are keyed by the SQS queue URL, so queues share them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from bastion.storage.database import write_transaction
from bastion.storage.queue.base import Consumer, InFlight, in_flight_from_row
from bastion.storage.queue.identity import this_host, this_node

_MAX_REASON = 2000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sqs_ledger_messages ("
    " queue TEXT NOT NULL, id TEXT NOT NULL, sqs_id TEXT NOT NULL, receipt TEXT NOT NULL,"
    " receive_count INTEGER NOT NULL, body TEXT NOT NULL, sent_at DOUBLE PRECISION NOT NULL,"
    " received_at DOUBLE PRECISION NOT NULL, visible_at DOUBLE PRECISION NOT NULL,"
    " consumer TEXT, last_error TEXT, PRIMARY KEY (queue, id))",
    "CREATE INDEX IF NOT EXISTS ix_sqs_ledger_receipt ON sqs_ledger_messages (queue, receipt)",
    "CREATE INDEX IF NOT EXISTS ix_sqs_ledger_consumer ON sqs_ledger_messages (queue, consumer)",
    "CREATE TABLE IF NOT EXISTS sqs_ledger_consumers ("
    " queue TEXT NOT NULL, id TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,"
    " node TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,"
    " lease_expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (queue, id))",
)
_ROW = (
    "SELECT id, receipt, receive_count, sent_at, visible_at, last_error, body"
    " FROM sqs_ledger_messages WHERE queue = :queue"
)
_SELECT_BY_ID = _ROW + " AND id = :id"
_SELECT_BY_RECEIPT = _ROW + " AND receipt = :receipt"
# Hand back (make visible, without holder) the messages in flight held by one consumer, or held
# by consumers not registered: select their receipts, then update them.
_HELD_BY = (
    "SELECT receipt FROM sqs_ledger_messages"
    " WHERE queue = :queue AND visible_at > :now AND consumer = :consumer",
    "UPDATE sqs_ledger_messages SET visible_at = :now, consumer = NULL"
    " WHERE queue = :queue AND visible_at > :now AND consumer = :consumer",
)
_HELD_BY_NOBODY = (
    "SELECT receipt FROM sqs_ledger_messages"
    " WHERE queue = :queue AND visible_at > :now AND consumer IS NOT NULL"
    " AND consumer NOT IN (SELECT id FROM sqs_ledger_consumers WHERE queue = :queue)",
    "UPDATE sqs_ledger_messages SET visible_at = :now, consumer = NULL"
    " WHERE queue = :queue AND visible_at > :now AND consumer IS NOT NULL"
    " AND consumer NOT IN (SELECT id FROM sqs_ledger_consumers WHERE queue = :queue)",
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A message's ledger row, as far as dead-lettering needs it."""

    id: str
    receipt: str
    receive_count: int
    sent_at: float
    visible_at: float
    last_error: str | None
    body: str


def create_schema(engine: Engine) -> None:
    """Create the ledger's tables if missing (two processes may race to: the loser retries)."""
    for attempt in range(3):
        try:
            with write_transaction(engine) as conn:
                for statement in _SCHEMA:
                    conn.execute(text(statement))
            return
        except DBAPIError:  # PostgreSQL: a concurrent CREATE ... IF NOT EXISTS
            if attempt == 2:
                raise


class SQSLedger:
    """The ledger rows of one SQS queue (`queue`: its URL) in `engine`'s database."""

    def __init__(self, engine: Engine, queue: str) -> None:
        self.engine = engine
        self.queue = queue

    def _write(self, sql: str, **params: Any) -> int:
        with write_transaction(self.engine) as conn:
            return conn.execute(text(sql), {"queue": self.queue, **params}).rowcount

    # -- messages -----------------------------------------------------------------------------

    def record(
        self,
        *,
        id: str,
        sqs_id: str,
        receipt: str,
        receive_count: int,
        body: str,
        sent_at: float,
        visible_at: float,
        consumer: str | None,
    ) -> bool:
        """Record a receive; False if the ledger already holds a later receive of this very SQS
        message (a duplicate delivery: the other receiver holds it)."""
        return bool(
            self._write(
                "INSERT INTO sqs_ledger_messages (queue, id, sqs_id, receipt, receive_count,"
                " body, sent_at, received_at, visible_at, consumer)"
                " VALUES (:queue, :id, :sqs_id, :receipt, :count, :body, :sent_at, :now,"
                " :visible_at, :consumer)"
                " ON CONFLICT (queue, id) DO UPDATE SET sqs_id = excluded.sqs_id,"
                " receipt = excluded.receipt, receive_count = excluded.receive_count,"
                " body = excluded.body, received_at = excluded.received_at,"
                " visible_at = excluded.visible_at, consumer = excluded.consumer"
                " WHERE sqs_ledger_messages.sqs_id <> excluded.sqs_id"
                " OR sqs_ledger_messages.receive_count < excluded.receive_count",
                id=id,
                sqs_id=sqs_id,
                receipt=receipt,
                count=receive_count,
                body=body,
                sent_at=sent_at,
                now=time.time(),
                visible_at=visible_at,
                consumer=consumer,
            )
        )

    def forget(self, receipt: str) -> bool:
        """Remove the message whose current receipt is `receipt`; False if none is."""
        return bool(
            self._write(
                "DELETE FROM sqs_ledger_messages WHERE queue = :queue AND receipt = :receipt",
                receipt=receipt,
            )
        )

    def forget_ids(self, ids: list[str]) -> None:
        with write_transaction(self.engine) as conn:
            for message_id in ids:
                conn.execute(
                    text("DELETE FROM sqs_ledger_messages WHERE queue = :queue AND id = :id"),
                    {"queue": self.queue, "id": message_id},
                )

    def hide(self, receipt: str, visible_at: float, reason: str | None) -> bool:
        """The message no longer has a holder and waits until `visible_at`; `reason` (if any)
        is its last error. False if `receipt` is not its current receipt."""
        return bool(
            self._write(
                "UPDATE sqs_ledger_messages SET visible_at = :visible_at, consumer = NULL,"
                " last_error = COALESCE(:reason, last_error)"
                " WHERE queue = :queue AND receipt = :receipt",
                visible_at=visible_at,
                reason=None if reason is None else reason[:_MAX_REASON],
                receipt=receipt,
            )
        )

    def take(self, *, receipt: str | None = None, id: str | None = None) -> Receipt | None:
        """Remove and return the row of the message with this current receipt (or this id)."""
        with write_transaction(self.engine) as conn:
            params = {"queue": self.queue, "receipt": receipt, "id": id}
            row = conn.execute(
                text(_SELECT_BY_RECEIPT if receipt is not None else _SELECT_BY_ID), params
            ).first()
            if row is None:
                return None
            conn.execute(
                text("DELETE FROM sqs_ledger_messages WHERE queue = :queue AND id = :id"),
                {"queue": self.queue, "id": row[0]},
            )
            return Receipt(*row)

    def peek(self, ids: list[str]) -> dict[str, Receipt]:
        """The rows of these messages (those the ledger has)."""
        found: dict[str, Receipt] = {}
        with self.engine.connect() as conn:
            for message_id in ids:
                row = conn.execute(
                    text(_SELECT_BY_ID), {"queue": self.queue, "id": message_id}
                ).first()
                if row is not None:
                    found[message_id] = Receipt(*row)
        return found

    def purge_before(self, cutoff: float) -> int:
        """Forget messages received before `cutoff` (SQS has dropped them by retention)."""
        return self._write(
            "DELETE FROM sqs_ledger_messages WHERE queue = :queue AND received_at < :cutoff",
            cutoff=cutoff,
        )

    # -- consumers ----------------------------------------------------------------------------

    @staticmethod
    def _insert_consumer(
        conn: Connection, queue: str, consumer_id: str, now: float, lease_seconds: float
    ) -> None:
        conn.execute(
            text(
                "INSERT INTO sqs_ledger_consumers"
                " (queue, id, pid, host, node, started_at, lease_expires_at)"
                " VALUES (:queue, :id, :pid, :host, :node, :now, :expires)"
            ),
            {
                "queue": queue,
                "id": consumer_id,
                "pid": os.getpid(),
                "host": this_host(),
                "node": this_node(),
                "now": now,
                "expires": now + lease_seconds,
            },
        )

    def register(self, consumer_id: str, lease_seconds: float) -> None:
        with write_transaction(self.engine) as conn:
            self._insert_consumer(conn, self.queue, consumer_id, time.time(), lease_seconds)

    def renew(self, consumer_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False (and registered again) if it was gone."""
        with write_transaction(self.engine) as conn:
            now = time.time()
            renewed = conn.execute(
                text(
                    "UPDATE sqs_ledger_consumers SET lease_expires_at = :expires"
                    " WHERE queue = :queue AND id = :id"
                ),
                {"queue": self.queue, "id": consumer_id, "expires": now + lease_seconds},
            ).rowcount
            if renewed:
                return True
            self._insert_consumer(conn, self.queue, consumer_id, now, lease_seconds)
            return False

    def release(self, *, consumer: str | None = None, gone: list[str] | None = None) -> list[str]:
        """Remove `consumer` (unregister), or the consumers whose lease ran out and those in
        `gone` (reclaim); mark the messages in flight they held (or, when reclaiming, held by
        consumers not registered) as visible and without holder. Return their receipts."""
        with write_transaction(self.engine) as conn:
            now = time.time()
            params: dict[str, Any] = {"queue": self.queue, "now": now}
            if consumer is not None:
                conn.execute(
                    text("DELETE FROM sqs_ledger_consumers WHERE queue = :queue AND id = :id"),
                    {**params, "id": consumer},
                )
                select, update = _HELD_BY
                params["consumer"] = consumer
            else:
                conn.execute(
                    text(
                        "DELETE FROM sqs_ledger_consumers"
                        " WHERE queue = :queue AND lease_expires_at <= :now"
                    ),
                    params,
                )
                for consumer_id in gone or []:
                    conn.execute(
                        text("DELETE FROM sqs_ledger_consumers WHERE queue = :queue AND id = :id"),
                        {**params, "id": consumer_id},
                    )
                select, update = _HELD_BY_NOBODY
            receipts = [row[0] for row in conn.execute(text(select), params)]
            conn.execute(text(update), params)
            return receipts

    def consumers(self) -> list[Consumer]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, pid, host, node, started_at, lease_expires_at"
                    " FROM sqs_ledger_consumers WHERE queue = :queue ORDER BY started_at, id"
                ),
                {"queue": self.queue},
            ).all()
        return [Consumer(*row) for row in rows]

    def in_flight(self, limit: int) -> list[InFlight]:
        """Messages whose visibility deadline has not passed, oldest sent first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT m.id, m.body, m.receive_count, m.sent_at, m.received_at,"
                    " m.visible_at, m.consumer, m.last_error,"
                    " c.id, c.pid, c.host, c.node, c.started_at, c.lease_expires_at"
                    " FROM sqs_ledger_messages m LEFT JOIN sqs_ledger_consumers c"
                    " ON c.id = m.consumer AND c.queue = m.queue"
                    " WHERE m.queue = :queue AND m.visible_at > :now"
                    " ORDER BY m.sent_at, m.id LIMIT :limit"
                ),
                {"queue": self.queue, "now": time.time(), "limit": limit},
            ).all()
        return [in_flight_from_row(r) for r in rows]

"""The PostgreSQL queue backend: `postgresql://` queue URLs (also `postgres://` and SQLAlchemy's
`postgresql+psycopg://`), through psycopg 3.

Tables, in the connection's current schema (the first of its `search_path`; choose another with
`?options=-csearch_path%3DSCHEMA` in the URL): `queue_messages` (the messages of every queue,
told apart by a `queue` column), `queue_dead_letters` (with the reason) and `queue_consumers`
(leases), plus `queue_schema` (the version of these tables). They are created when a queue is
opened, if missing, under an advisory lock so that processes opening at once do not race. Not
Alembic: the queue is not part of the platform's models, its URL may name another database than
`database.url`, and like the SQLite queue file it must be usable by a worker that never ran
`bastion db migrate`. (An Alembic autogenerate against a database that holds the queue tables
proposes dropping them: leave them out of such a revision.)

A receive claims its messages with `SELECT ... FOR UPDATE SKIP LOCKED` (oldest visible first)
and updates them in the same transaction, so concurrent consumers never wait for each other and
never get the same message in one visibility window. Each receive gives a message a new random
receipt handle, and delete/change_visibility/dead_letter match on it. A message received
`max_receive_count` times whose visibility expires moves to the dead letters with its last error
(`REASON_MAX_RECEIVES` when none was recorded); messages and dead letters past retention are
purged. Consumers and leases are as in the SQLite backend.

Every timestamp comes from the database's clock (`now()`, the start of the transaction), never
from the caller's: consumers on several hosts agree on visibility and leases even if their own
clocks drift. The API shows them as epoch seconds.

Long polls: a waiting receive `LISTEN`s on its queue's channel and sleeps until a `NOTIFY` (sent
by every send, and whenever messages are made visible again) or until the next message of the
queue becomes visible, whichever comes first, within `wait_seconds`; no polling loop.

Connections: each operation borrows a connection of this process (autocommit, one short
transaction per call) and gives it back; up to `max_idle_connections` stay open between calls.
Threads may share the queue (the worker calls it through `asyncio.to_thread`); a forked child
opens its own. psycopg errors are raised as `ConnectionError` (the server cannot be reached) or
`PostgresQueueError` (an `OSError`: the database refused the operation), without the password.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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
    in_flight_from_row,
)
from bastion.storage.queue.checks import (
    MAX_REASON,
    check_lease,
    check_receive,
    check_settings,
    check_timeout,
    encode_body,
)
from bastion.storage.queue.identity import this_host, this_node

T = TypeVar("T")

URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
SCHEMA_VERSION = 1
_MAX_IDLE = 8
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says (connect_timeout=)
_MIN_WAIT = 0.001

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS queue_schema (version integer PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS queue_messages (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        queue text NOT NULL,
        body json NOT NULL,
        sent_at timestamptz NOT NULL,
        enqueued_at timestamptz NOT NULL,
        visible_at timestamptz NOT NULL,
        receive_count integer NOT NULL DEFAULT 0,
        receipt text UNIQUE,
        last_error text,
        consumer text,
        received_at timestamptz
    )""",
    "CREATE INDEX IF NOT EXISTS ix_queue_messages_ready ON queue_messages (queue, visible_at, seq)",
    "CREATE INDEX IF NOT EXISTS ix_queue_messages_enqueued ON queue_messages (queue, enqueued_at)",
    "CREATE INDEX IF NOT EXISTS ix_queue_messages_consumer"
    " ON queue_messages (queue, consumer) WHERE consumer IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS queue_dead_letters (
        id text PRIMARY KEY,
        seq bigint NOT NULL,
        queue text NOT NULL,
        body json NOT NULL,
        receive_count integer NOT NULL,
        sent_at timestamptz NOT NULL,
        dead_at timestamptz NOT NULL,
        reason text NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ix_queue_dead_letters_dead"
    " ON queue_dead_letters (queue, dead_at, seq)",
    """CREATE TABLE IF NOT EXISTS queue_consumers (
        queue text NOT NULL,
        id text NOT NULL,
        pid integer NOT NULL,
        host text NOT NULL,
        node text NOT NULL,
        started_at timestamptz NOT NULL,
        lease_expires_at timestamptz NOT NULL,
        PRIMARY KEY (queue, id)
    )""",
)


# Dead-letter exhausted messages whose visibility expired (rows others hold are left for them).
_DEAD_LETTER_EXHAUSTED = """
WITH dead AS (
    DELETE FROM queue_messages WHERE seq IN (
        SELECT seq FROM queue_messages
        WHERE queue = %(queue)s AND visible_at <= now() AND receive_count >= %(max)s
        FOR UPDATE SKIP LOCKED)
    RETURNING id, seq, queue, body, receive_count, sent_at, last_error
)
INSERT INTO queue_dead_letters (id, seq, queue, body, receive_count, sent_at, dead_at, reason)
SELECT id, seq, queue, body, receive_count, sent_at, now(), COALESCE(last_error, %(reason)s)
FROM dead
"""

_PURGE = """
WITH purged AS (
    DELETE FROM queue_messages
    WHERE queue = %(queue)s AND enqueued_at <= now() - make_interval(secs => %(retention)s)
    RETURNING 1
), purged_dead AS (
    DELETE FROM queue_dead_letters
    WHERE queue = %(queue)s AND dead_at <= now() - make_interval(secs => %(retention)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM purged) + (SELECT count(*) FROM purged_dead)
"""

_CLAIM = """
WITH picked AS (
    SELECT seq FROM queue_messages
    WHERE queue = %(queue)s AND visible_at <= now() AND receive_count < %(max)s
    ORDER BY visible_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE queue_messages m SET receipt = %(token)s || m.id,
    visible_at = now() + make_interval(secs => %(visibility)s),
    receive_count = m.receive_count + 1,
    consumer = %(consumer)s, received_at = now()
FROM picked WHERE m.seq = picked.seq
RETURNING m.seq, m.id, m.receipt, m.body::text, m.receive_count,
    extract(epoch from m.sent_at)::float8
"""

_NEXT_VISIBLE = """
SELECT extract(epoch from min(visible_at) - now())::float8 FROM queue_messages
WHERE queue = %s AND visible_at > now()
"""

_DEAD_LETTER_ONE = """
WITH dead AS (
    DELETE FROM queue_messages WHERE receipt = %(receipt)s AND queue = %(queue)s
    RETURNING id, seq, queue, body, receive_count, sent_at
)
INSERT INTO queue_dead_letters (id, seq, queue, body, receive_count, sent_at, dead_at, reason)
SELECT id, seq, queue, body, receive_count, sent_at, now(), %(reason)s FROM dead
"""

_REDRIVE = """
WITH moved AS (
    DELETE FROM queue_dead_letters WHERE queue = %(queue)s AND (%(all)s OR id = ANY(%(ids)s))
    RETURNING id, queue, body, sent_at, seq
)
INSERT INTO queue_messages (id, queue, body, sent_at, enqueued_at, visible_at)
SELECT id, queue, body, sent_at, now(), now() FROM moved ORDER BY seq
"""

_STATS = """
SELECT count(*) FILTER (WHERE visible_at <= now()),
    count(*) FILTER (WHERE visible_at > now() AND receive_count > 0),
    count(*) FILTER (WHERE visible_at > now() AND receive_count = 0),
    (SELECT count(*) FROM queue_dead_letters WHERE queue = %(queue)s)
FROM queue_messages WHERE queue = %(queue)s
"""

_OLDEST_AGE = """
SELECT COALESCE(extract(epoch from now() - min(visible_at))::float8, 0)
FROM queue_messages WHERE queue = %s AND visible_at <= now()
"""

_IN_FLIGHT = """
SELECT m.id, m.body::text, m.receive_count, extract(epoch from m.sent_at)::float8,
    extract(epoch from m.received_at)::float8, extract(epoch from m.visible_at)::float8,
    m.consumer, m.last_error, c.id, c.pid, c.host, c.node,
    extract(epoch from c.started_at)::float8, extract(epoch from c.lease_expires_at)::float8
FROM queue_messages m LEFT JOIN queue_consumers c ON c.queue = m.queue AND c.id = m.consumer
WHERE m.queue = %s AND m.visible_at > now() AND m.receive_count > 0
ORDER BY m.sent_at, m.seq LIMIT %s
"""


class PostgresQueueError(OSError):
    """The queue's database refused an operation (a permission, a newer schema, ...)."""


def libpq_url(url: str) -> str:
    """`url` with the scheme libpq reads (`postgresql+psycopg://` is SQLAlchemy's spelling)."""
    for scheme in URL_SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    raise ValueError(f"not a PostgreSQL URL: {display_url(url)}")


def display_url(url: str) -> str:
    """`url` as it may be shown: scheme, host, port and database, no user, password or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _redacted(text: str, url: str) -> str:
    """`text` (a libpq message) with the URL's password, should it quote it, blanked out."""
    password = urlsplit(url).password
    for spelling in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(spelling), "***")
    return text


class _Connections:
    """This process's connections to the queue's database, shared by its threads: one per call
    in progress, up to `max_idle` kept open in between."""

    def __init__(self, conninfo: str, max_idle: int) -> None:
        self._conninfo = conninfo
        self._max_idle = max_idle
        self._idle: list[psycopg.Connection[Any]] = []
        self._inherited: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _take(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: the parent's connections are its own (kept, never closed here:
                # closing would end the parent's sessions).
                self._inherited.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return psycopg.connect(self._conninfo, autocommit=True)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        reusable = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
        with self._lock:
            if reusable and self._pid == os.getpid() and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            mine = self._pid == os.getpid()
        if mine:
            for conn in idle:
                conn.close()


class PostgresQueue:
    """A `Queue` in the PostgreSQL database at `url` (tables created if missing)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "default",
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        max_idle_connections: int = _MAX_IDLE,
    ) -> None:
        check_settings(max_receive_count, retention_seconds)
        self.name = name
        self.max_receive_count = max_receive_count
        self.retention_seconds = float(retention_seconds)
        self.shown_url = display_url(url)
        self._url = url
        try:
            params = conninfo_to_dict(libpq_url(url))
        except psycopg.Error as exc:
            raise ValueError(
                f"invalid PostgreSQL queue URL {self.shown_url}: {_redacted(str(exc), url)}"
            ) from None
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        params.setdefault("application_name", "bastion-queue")
        self._pool = _Connections(make_conninfo("", **params), max_idle_connections)
        self.channel = self._call(self._create_schema)

    # -- connections, transactions and errors -----------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one call; psycopg's errors become ours, without the password."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise ConnectionError(
                f"cannot reach the PostgreSQL queue at {self.shown_url}: "
                f"{_redacted(str(exc), self._url)} (check pipeline.queue_url and the server)"
            ) from None
        except psycopg.Error as exc:
            raise PostgresQueueError(
                f"the PostgreSQL queue at {self.shown_url} failed: {_redacted(str(exc), self._url)}"
            ) from None

    def _call(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `fn` in one transaction."""
        with self._connection() as conn, conn.transaction():
            return fn(conn)

    def _create_schema(self, conn: psycopg.Connection[Any]) -> str:
        """Create the tables if missing; return the channel of this queue's notifications."""
        schema = conn.execute("SELECT current_schema()").fetchone()
        if schema is None or schema[0] is None:
            raise PostgresQueueError(
                f"the PostgreSQL queue at {self.shown_url} has no schema to create its tables "
                "in: create the first schema of the search_path, or name one with "
                "?options=-csearch_path%3DSCHEMA"
            )
        if self._schema_version(conn) != SCHEMA_VERSION:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('bastion.queue', 0))")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO queue_schema (version) VALUES (%s) ON CONFLICT DO NOTHING",
                (SCHEMA_VERSION,),
            )
        digest = hashlib.sha256(f"{schema[0]}\0{self.name}".encode()).hexdigest()
        return f"bastion_queue_{digest[:40]}"

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int | None:
        exists = conn.execute(
            "SELECT to_regclass(format('%I.queue_schema', current_schema())) IS NOT NULL"
        ).fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT max(version) FROM queue_schema").fetchone()
        version = row[0] if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise PostgresQueueError(
                f"the queue tables at {self.shown_url} have a newer schema ({version}) than this "
                f"version of Bastion reads ({SCHEMA_VERSION}): upgrade Bastion"
            )
        return version

    def _notify(self, conn: psycopg.Connection[Any]) -> None:
        """Wake this queue's long polls (delivered when the transaction commits)."""
        conn.execute("SELECT pg_notify(%s, '')", (self.channel,))

    def close(self) -> None:
        """Close this process's idle connections (the queue reopens them if used again)."""
        self._pool.close()

    def __enter__(self) -> PostgresQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- maintenance ------------------------------------------------------------------------

    def _sweep(self, conn: psycopg.Connection[Any]) -> int:
        """Dead-letter exhausted messages whose visibility expired; purge expired ones."""
        conn.execute(
            _DEAD_LETTER_EXHAUSTED,
            {"queue": self.name, "max": self.max_receive_count, "reason": REASON_MAX_RECEIVES},
        )
        row = conn.execute(
            _PURGE, {"queue": self.name, "retention": self.retention_seconds}
        ).fetchone()
        return int(row[0]) if row else 0

    def purge_expired(self) -> int:
        return self._call(self._sweep)

    # -- producer ---------------------------------------------------------------------------

    def send(self, body: dict[str, Any], *, delay_seconds: float = 0) -> str:
        payload = encode_body(body, delay_seconds)
        msg_id = uuid.uuid4().hex

        def insert(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                "INSERT INTO queue_messages (id, queue, body, sent_at, enqueued_at, visible_at)"
                " VALUES (%s, %s, %s::json, now(), now(), now() + make_interval(secs => %s))",
                (msg_id, self.name, payload, float(delay_seconds)),
            )
            self._notify(conn)  # a delayed message too: waiters then wait for its time

        self._call(insert)
        return msg_id

    # -- consumer ---------------------------------------------------------------------------

    def _claim(
        self,
        conn: psycopg.Connection[Any],
        max_messages: int,
        visibility_timeout: float,
        consumer: str | None,
    ) -> tuple[list[Message], float | None]:
        """Claim up to `max_messages` in one transaction: (the messages, when none: seconds until
        the next message of the queue becomes visible, None if there is none)."""
        with conn.transaction():
            self._sweep(conn)
            rows = conn.execute(
                _CLAIM,
                {
                    "queue": self.name,
                    "max": self.max_receive_count,
                    "limit": max_messages,
                    "token": secrets.token_hex(12) + ".",
                    "visibility": float(visibility_timeout),
                    "consumer": consumer,
                },
            ).fetchall()
            if rows:
                rows.sort(key=lambda r: r[0])
                messages = [
                    Message(
                        id=r[1],
                        receipt_handle=r[2],
                        body=json.loads(r[3]),
                        receive_count=r[4],
                        sent_at=r[5],
                    )
                    for r in rows
                ]
                return messages, None
            row = conn.execute(_NEXT_VISIBLE, (self.name,)).fetchone()
            return [], None if row is None or row[0] is None else float(row[0])

    def _await_notification(self, conn: psycopg.Connection[Any], timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notification on the channel `conn` listens on;
        True if one came."""
        return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        wait_seconds: float = 0,
        consumer: str | None = None,
    ) -> list[Message]:
        check_receive(max_messages, visibility_timeout, wait_seconds)
        deadline = time.monotonic() + wait_seconds
        channel = sql.Identifier(self.channel)
        with self._connection() as conn:
            if wait_seconds > 0:  # before the first look: no send can slip in between
                conn.execute(sql.SQL("LISTEN {}").format(channel))
            try:
                while True:
                    messages, next_in = self._claim(
                        conn, max_messages, visibility_timeout, consumer
                    )
                    remaining = deadline - time.monotonic()
                    if messages or remaining <= 0:
                        return messages
                    wait = remaining if next_in is None else min(remaining, next_in)
                    self._await_notification(conn, max(wait, _MIN_WAIT))
            finally:
                if wait_seconds > 0 and not conn.closed:
                    conn.execute(sql.SQL("UNLISTEN {}").format(channel))

    def delete(self, receipt_handle: str) -> bool:
        def delete(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "DELETE FROM queue_messages WHERE receipt = %s AND queue = %s",
                (receipt_handle, self.name),
            )
            return cur.rowcount > 0

        return self._call(delete)

    def change_visibility(
        self, receipt_handle: str, timeout: float, *, reason: str | None = None
    ) -> bool:
        check_timeout(timeout)
        reason = None if reason is None else reason[:MAX_REASON]

        def change(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "UPDATE queue_messages SET visible_at = now() + make_interval(secs => %s),"
                " last_error = COALESCE(%s, last_error), consumer = NULL"
                " WHERE receipt = %s AND queue = %s",
                (float(timeout), reason, receipt_handle, self.name),
            )
            if cur.rowcount and timeout == 0:
                self._notify(conn)
            return cur.rowcount > 0

        return self._call(change)

    def dead_letter(self, receipt_handle: str, reason: str) -> bool:
        def move(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                _DEAD_LETTER_ONE,
                {"receipt": receipt_handle, "queue": self.name, "reason": reason[:MAX_REASON]},
            )
            return cur.rowcount > 0

        return self._call(move)

    # -- dead-letter queue ------------------------------------------------------------------

    def dlq_list(self, limit: int = 100) -> list[DeadLetter]:
        def read(conn: psycopg.Connection[Any]) -> list[DeadLetter]:
            self._sweep(conn)
            rows = conn.execute(
                "SELECT id, body::text, receive_count, extract(epoch from sent_at)::float8,"
                " extract(epoch from dead_at)::float8, reason FROM queue_dead_letters"
                " WHERE queue = %s ORDER BY dead_at, seq LIMIT %s",
                (self.name, limit),
            ).fetchall()
            return [
                DeadLetter(
                    id=r[0],
                    body=json.loads(r[1]),
                    receive_count=r[2],
                    sent_at=r[3],
                    dead_at=r[4],
                    reason=r[5],
                )
                for r in rows
            ]

        return self._call(read)

    def redrive(self, ids: list[str] | None = None) -> int:
        def move(conn: psycopg.Connection[Any]) -> int:
            self._sweep(conn)
            cur = conn.execute(
                _REDRIVE, {"queue": self.name, "all": ids is None, "ids": list(ids or [])}
            )
            if cur.rowcount:
                self._notify(conn)
            return cur.rowcount

        return self._call(move)

    # -- introspection ----------------------------------------------------------------------

    def stats(self) -> QueueStats:
        def read(conn: psycopg.Connection[Any]) -> QueueStats:
            self._sweep(conn)
            row = conn.execute(_STATS, {"queue": self.name}).fetchone()
            assert row is not None  # an aggregate always has a row
            visible, in_flight, delayed, dead = row
            return QueueStats(visible=visible, in_flight=in_flight, delayed=delayed, dead=dead)

        return self._call(read)

    def oldest_age_seconds(self) -> float:
        def read(conn: psycopg.Connection[Any]) -> float:
            self._sweep(conn)
            row = conn.execute(_OLDEST_AGE, (self.name,)).fetchone()
            assert row is not None  # an aggregate always has a row
            return max(0.0, float(row[0]))

        return self._call(read)

    def depth(self) -> int:
        s = self.stats()
        return s.visible + s.in_flight + s.delayed

    def dlq_depth(self) -> int:
        return self.stats().dead

    # -- consumers and leases ---------------------------------------------------------------

    def register_consumer(self, lease_seconds: float) -> str:
        check_lease(lease_seconds)
        consumer_id = uuid.uuid4().hex
        self._call(lambda conn: self._insert_consumer(conn, consumer_id, lease_seconds))
        return consumer_id

    def _insert_consumer(
        self, conn: psycopg.Connection[Any], consumer_id: str, lease_seconds: float
    ) -> None:
        conn.execute(
            "INSERT INTO queue_consumers (queue, id, pid, host, node, started_at,"
            " lease_expires_at)"
            " VALUES (%s, %s, %s, %s, %s, now(), now() + make_interval(secs => %s))"
            " ON CONFLICT (queue, id) DO UPDATE SET lease_expires_at = EXCLUDED.lease_expires_at",
            (self.name, consumer_id, os.getpid(), this_host(), this_node(), float(lease_seconds)),
        )

    def renew_lease(self, consumer_id: str, lease_seconds: float) -> bool:
        check_lease(lease_seconds)

        def renew(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "UPDATE queue_consumers"
                " SET lease_expires_at = now() + make_interval(secs => %s)"
                " WHERE queue = %s AND id = %s",
                (float(lease_seconds), self.name, consumer_id),
            )
            if cur.rowcount:
                return True
            self._insert_consumer(conn, consumer_id, lease_seconds)
            return False

        return self._call(renew)

    def unregister_consumer(self, consumer_id: str) -> int:
        def remove(conn: psycopg.Connection[Any]) -> int:
            conn.execute(
                "DELETE FROM queue_consumers WHERE queue = %s AND id = %s",
                (self.name, consumer_id),
            )
            cur = conn.execute(
                "UPDATE queue_messages SET visible_at = now(), consumer = NULL"
                " WHERE queue = %s AND consumer = %s AND visible_at > now()",
                (self.name, consumer_id),
            )
            return self._released(conn, cur.rowcount)

        return self._call(remove)

    def reclaim(self, gone: Collection[str] = ()) -> int:
        def release(conn: psycopg.Connection[Any]) -> int:
            conn.execute(
                "DELETE FROM queue_consumers"
                " WHERE queue = %s AND (lease_expires_at <= now() OR id = ANY(%s))",
                (self.name, list(gone)),
            )
            cur = conn.execute(
                "UPDATE queue_messages m SET visible_at = now(), consumer = NULL"
                " WHERE m.queue = %s AND m.consumer IS NOT NULL AND m.visible_at > now()"
                " AND NOT EXISTS (SELECT 1 FROM queue_consumers c"
                "   WHERE c.queue = m.queue AND c.id = m.consumer)",
                (self.name,),
            )
            return self._released(conn, cur.rowcount)

        return self._call(release)

    def _released(self, conn: psycopg.Connection[Any], count: int) -> int:
        """Wake the long polls for messages made visible again; return `count`."""
        if count:
            self._notify(conn)
        return count

    def consumers(self) -> list[Consumer]:
        def read(conn: psycopg.Connection[Any]) -> list[Consumer]:
            rows = conn.execute(
                "SELECT id, pid, host, node, extract(epoch from started_at)::float8,"
                " extract(epoch from lease_expires_at)::float8 FROM queue_consumers"
                " WHERE queue = %s ORDER BY started_at, id",
                (self.name,),
            ).fetchall()
            return [Consumer(*row) for row in rows]

        return self._call(read)

    def in_flight(self, limit: int = 100) -> list[InFlight]:
        def read(conn: psycopg.Connection[Any]) -> list[InFlight]:
            rows = conn.execute(_IN_FLIGHT, (self.name, limit)).fetchall()
            return [in_flight_from_row(r) for r in rows]

        return self._call(read)

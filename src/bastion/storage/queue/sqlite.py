"""The SQLite queue backend: a durable queue in its own SQLite file (WAL).

Several processes may consume the same file: every state change is one `BEGIN IMMEDIATE`
transaction, taken under a cross-process write lock (`flock` on `<file>.lock`, see
`bastion.storage.database.FileWriteLock`) so that writers waiting for each other are woken at
once rather than by SQLite's sleeping busy handler. A receive claims its messages with a single
`UPDATE ... RETURNING`, so a message is handed to exactly one consumer per visibility window.
Each receive gives a message a new random receipt handle, and delete/change_visibility/
dead_letter match on it, so a consumer whose claim expired (and whose message another consumer
has since received) cannot act on it.

Consumers register in the `consumers` table (id, pid, host, node, lease); a receive records its
consumer on the messages it claims (`consumer`, `received_at`), and `reclaim` releases the
messages of consumers whose lease ran out. Schema version 2 added them: a version-1 file is
brought up to date when it is opened (new columns and table, nothing rewritten).

Several logical queues can share one file (`name`). Long polls re-check with a growing pause
(10 ms to 200 ms); a send in the same process wakes its waiters at once. `synchronous=NORMAL`:
a committed message survives a process crash; a power cut may lose the last commits.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bastion.storage.database import create_private_file, file_write_lock
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

SCHEMA_VERSION = 2
_POLL_MIN = 0.01
_POLL_MAX = 0.2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
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
    dead_at REAL,
    consumer TEXT,
    received_at REAL
);
CREATE INDEX IF NOT EXISTS ix_messages_ready
    ON messages (queue, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS ix_messages_enqueued
    ON messages (queue, enqueued_at) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS ix_messages_dead
    ON messages (queue, dead_at) WHERE dead_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS consumers (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    node TEXT NOT NULL,
    started_at REAL NOT NULL,
    lease_expires_at REAL NOT NULL
);
"""
# Columns added after version 1, with their types: added to an older file when it is opened.
_ADDED_COLUMNS = {"consumer": "TEXT", "received_at": "REAL"}
# Indexes on those columns: created once they exist.
_INDEXES_V2 = """
CREATE INDEX IF NOT EXISTS ix_messages_consumer
    ON messages (queue, consumer) WHERE consumer IS NOT NULL;
"""

# Same-process waiters on a queue, woken by a send.
_wakeups: dict[tuple[str, str], threading.Condition] = {}
_wakeups_lock = threading.Lock()


def _wakeup(key: tuple[str, str]) -> threading.Condition:
    with _wakeups_lock:
        cond = _wakeups.get(key)
        if cond is None:
            cond = _wakeups[key] = threading.Condition()
        return cond


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (executescript commits)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


class SQLiteQueue:
    """A `Queue` stored in the SQLite file at `path` (created if missing)."""

    def __init__(
        self,
        path: Path | str,
        *,
        name: str = "default",
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        check_settings(max_receive_count, retention_seconds)
        self.path = Path(path)
        self.name = name
        self.max_receive_count = max_receive_count
        self.retention_seconds = float(retention_seconds)
        self._busy_timeout = busy_timeout_seconds
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._wake = _wakeup((str(self.path.resolve()), name))
        create_private_file(self.path)
        self._write_lock = file_write_lock(self.path)
        self._write(self._create_schema)

    # -- connections and transactions -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,  # explicit BEGIN IMMEDIATE / COMMIT below
            check_same_thread=False,
        )
        deadline = time.monotonic() + self._busy_timeout
        while True:  # switching a new file to WAL needs a moment of exclusive access
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.01)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != pid:
            conn = self._connect()
            self._local.conn = conn
            self._local.pid = pid
            with self._conns_lock:
                self._conns.append((pid, conn))
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock.hold():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._transaction() as conn:
            return fn(conn)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"queue file {self.path} has a newer schema ({version})")
        _run_script(conn, _SCHEMA)
        self._add_missing_columns(conn)
        _run_script(conn, _INDEXES_V2)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _add_missing_columns(conn: sqlite3.Connection) -> None:
        """Bring a version-1 `messages` table up to date (ALTER TABLE, nothing rewritten)."""
        have = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
        for column, sql_type in _ADDED_COLUMNS.items():
            if column not in have:
                conn.execute(f"ALTER TABLE messages ADD COLUMN {column} {sql_type}")

    def close(self) -> None:
        """Close this process's connections (the queue reopens them if used again)."""
        pid = os.getpid()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for owner, conn in conns:
            if owner == pid:
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> SQLiteQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- maintenance ------------------------------------------------------------------------

    def _sweep(self, conn: sqlite3.Connection, now: float) -> int:
        """Dead-letter exhausted messages whose visibility expired; purge expired ones."""
        conn.execute(
            "UPDATE messages SET dead_at = ?, receipt = NULL, consumer = NULL,"
            " last_error = COALESCE(last_error, ?)"
            " WHERE queue = ? AND dead_at IS NULL AND visible_at <= ? AND receive_count >= ?",
            (now, REASON_MAX_RECEIVES, self.name, now, self.max_receive_count),
        )
        cutoff = now - self.retention_seconds
        cur = conn.execute(
            "DELETE FROM messages WHERE queue = ? AND dead_at IS NULL AND enqueued_at <= ?",
            (self.name, cutoff),
        )
        purged = cur.rowcount
        cur = conn.execute(
            "DELETE FROM messages WHERE queue = ? AND dead_at IS NOT NULL AND dead_at <= ?",
            (self.name, cutoff),
        )
        return purged + cur.rowcount

    def purge_expired(self) -> int:
        return self._write(lambda conn: self._sweep(conn, time.time()))

    # -- producer ---------------------------------------------------------------------------

    def send(self, body: dict[str, Any], *, delay_seconds: float = 0) -> str:
        payload = encode_body(body, delay_seconds)
        msg_id = uuid.uuid4().hex
        now = time.time()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO messages (id, queue, body, sent_at, enqueued_at, visible_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (msg_id, self.name, payload, now, now, now + delay_seconds),
            )

        self._write(insert)
        if delay_seconds == 0:
            with self._wake:
                self._wake.notify_all()
        return msg_id

    # -- consumer ---------------------------------------------------------------------------

    def _claim(
        self, max_messages: int, visibility_timeout: float, consumer: str | None
    ) -> list[Message]:
        token = secrets.token_hex(12) + "."

        def claim(conn: sqlite3.Connection) -> list[Message]:
            now = time.time()
            self._sweep(conn, now)
            rows = conn.execute(
                "UPDATE messages SET receipt = ? || id, visible_at = ?,"
                " receive_count = receive_count + 1, consumer = ?, received_at = ?"
                " WHERE seq IN (SELECT seq FROM messages"
                "   WHERE queue = ? AND dead_at IS NULL AND visible_at <= ? AND receive_count < ?"
                "   ORDER BY visible_at, seq LIMIT ?)"
                " RETURNING seq, id, receipt, body, receive_count, sent_at",
                (
                    token,
                    now + visibility_timeout,
                    consumer,
                    now,
                    self.name,
                    now,
                    self.max_receive_count,
                    max_messages,
                ),
            ).fetchall()
            rows.sort(key=lambda r: r[0])
            return [
                Message(
                    id=r[1],
                    receipt_handle=r[2],
                    body=json.loads(r[3]),
                    receive_count=r[4],
                    sent_at=r[5],
                )
                for r in rows
            ]

        return self._write(claim)

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
        pause = _POLL_MIN
        while True:
            messages = self._claim(max_messages, visibility_timeout, consumer)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with self._wake:
                self._wake.wait(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX)

    def delete(self, receipt_handle: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM messages WHERE receipt = ? AND dead_at IS NULL", (receipt_handle,)
            )
            return cur.rowcount > 0

        return self._write(delete)

    def change_visibility(
        self, receipt_handle: str, timeout: float, *, reason: str | None = None
    ) -> bool:
        check_timeout(timeout)
        reason = None if reason is None else reason[:MAX_REASON]

        def change(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE messages SET visible_at = ?, last_error = COALESCE(?, last_error),"
                " consumer = NULL WHERE receipt = ? AND dead_at IS NULL",
                (time.time() + timeout, reason, receipt_handle),
            )
            return cur.rowcount > 0

        changed = self._write(change)
        if changed and timeout == 0:
            with self._wake:
                self._wake.notify_all()
        return changed

    def dead_letter(self, receipt_handle: str, reason: str) -> bool:
        def move(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE messages SET dead_at = ?, last_error = ?, receipt = NULL, consumer = NULL"
                " WHERE receipt = ? AND dead_at IS NULL",
                (time.time(), reason[:MAX_REASON], receipt_handle),
            )
            return cur.rowcount > 0

        return self._write(move)

    # -- dead-letter queue ------------------------------------------------------------------

    def dlq_list(self, limit: int = 100) -> list[DeadLetter]:
        def read(conn: sqlite3.Connection) -> list[DeadLetter]:
            self._sweep(conn, time.time())
            rows = conn.execute(
                "SELECT id, body, receive_count, sent_at, dead_at, last_error FROM messages"
                " WHERE queue = ? AND dead_at IS NOT NULL ORDER BY dead_at, seq LIMIT ?",
                (self.name, limit),
            ).fetchall()
            return [
                DeadLetter(
                    id=r[0],
                    body=json.loads(r[1]),
                    receive_count=r[2],
                    sent_at=r[3],
                    dead_at=r[4],
                    reason=r[5] or REASON_MAX_RECEIVES,
                )
                for r in rows
            ]

        return self._write(read)

    def redrive(self, ids: list[str] | None = None) -> int:
        def move(conn: sqlite3.Connection) -> int:
            now = time.time()
            self._sweep(conn, now)
            sql = (
                "UPDATE messages SET dead_at = NULL, receive_count = 0, last_error = NULL,"
                " receipt = NULL, consumer = NULL, received_at = NULL, visible_at = ?,"
                " enqueued_at = ?"
                " WHERE queue = ? AND dead_at IS NOT NULL"
            )
            params: list[Any] = [now, now, self.name]
            if ids is None:
                return conn.execute(sql, params).rowcount
            moved = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                moved += conn.execute(f"{sql} AND id IN ({marks})", [*params, *chunk]).rowcount
            return moved

        moved = self._write(move)
        if moved:
            with self._wake:
                self._wake.notify_all()
        return moved

    # -- introspection ----------------------------------------------------------------------

    def stats(self) -> QueueStats:
        def read(conn: sqlite3.Connection) -> QueueStats:
            now = time.time()
            self._sweep(conn, now)
            visible, in_flight, delayed, dead = conn.execute(
                "SELECT"
                " COALESCE(SUM(dead_at IS NULL AND visible_at <= ?), 0),"
                " COALESCE(SUM(dead_at IS NULL AND visible_at > ? AND receive_count > 0), 0),"
                " COALESCE(SUM(dead_at IS NULL AND visible_at > ? AND receive_count = 0), 0),"
                " COALESCE(SUM(dead_at IS NOT NULL), 0)"
                " FROM messages WHERE queue = ?",
                (now, now, now, self.name),
            ).fetchone()
            return QueueStats(visible=visible, in_flight=in_flight, delayed=delayed, dead=dead)

        return self._write(read)

    def oldest_age_seconds(self) -> float:
        def read(conn: sqlite3.Connection) -> float:
            now = time.time()
            self._sweep(conn, now)
            (oldest,) = conn.execute(
                "SELECT MIN(visible_at) FROM messages"
                " WHERE queue = ? AND dead_at IS NULL AND visible_at <= ?",
                (self.name, now),
            ).fetchone()
            return 0.0 if oldest is None else max(0.0, now - oldest)

        return self._write(read)

    def depth(self) -> int:
        s = self.stats()
        return s.visible + s.in_flight + s.delayed

    def dlq_depth(self) -> int:
        return self.stats().dead

    # -- consumers and leases ---------------------------------------------------------------

    def register_consumer(self, lease_seconds: float) -> str:
        check_lease(lease_seconds)
        consumer_id = uuid.uuid4().hex

        def insert(conn: sqlite3.Connection) -> None:
            self._insert_consumer(conn, consumer_id, time.time(), lease_seconds)

        self._write(insert)
        return consumer_id

    def _insert_consumer(
        self, conn: sqlite3.Connection, consumer_id: str, now: float, lease_seconds: float
    ) -> None:
        conn.execute(
            "INSERT INTO consumers (queue, id, pid, host, node, started_at, lease_expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.name,
                consumer_id,
                os.getpid(),
                this_host(),
                this_node(),
                now,
                now + lease_seconds,
            ),
        )

    def renew_lease(self, consumer_id: str, lease_seconds: float) -> bool:
        check_lease(lease_seconds)

        def renew(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cur = conn.execute(
                "UPDATE consumers SET lease_expires_at = ? WHERE id = ? AND queue = ?",
                (now + lease_seconds, consumer_id, self.name),
            )
            if cur.rowcount:
                return True
            self._insert_consumer(conn, consumer_id, now, lease_seconds)
            return False

        return self._write(renew)

    def unregister_consumer(self, consumer_id: str) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            now = time.time()
            conn.execute(
                "DELETE FROM consumers WHERE id = ? AND queue = ?", (consumer_id, self.name)
            )
            return conn.execute(
                "UPDATE messages SET visible_at = ?, consumer = NULL"
                " WHERE queue = ? AND consumer = ? AND dead_at IS NULL AND visible_at > ?",
                (now, self.name, consumer_id, now),
            ).rowcount

        return self._released(self._write(remove))

    def reclaim(self, gone: Collection[str] = ()) -> int:
        gone = list(gone)

        def release(conn: sqlite3.Connection) -> int:
            now = time.time()
            conn.execute(
                "DELETE FROM consumers WHERE queue = ? AND lease_expires_at <= ?",
                (self.name, now),
            )
            conn.executemany(
                "DELETE FROM consumers WHERE queue = ? AND id = ?",
                [(self.name, consumer_id) for consumer_id in gone],
            )
            return conn.execute(
                "UPDATE messages SET visible_at = ?, consumer = NULL"
                " WHERE queue = ? AND consumer IS NOT NULL AND dead_at IS NULL AND visible_at > ?"
                " AND consumer NOT IN (SELECT id FROM consumers WHERE queue = ?)",
                (now, self.name, now, self.name),
            ).rowcount

        return self._released(self._write(release))

    def _released(self, count: int) -> int:
        """Wake this process's long polls for messages made visible again; return `count`."""
        if count:
            with self._wake:
                self._wake.notify_all()
        return count

    def consumers(self) -> list[Consumer]:
        rows = self._conn().execute(
            "SELECT id, pid, host, node, started_at, lease_expires_at FROM consumers"
            " WHERE queue = ? ORDER BY started_at, id",
            (self.name,),
        )
        return [Consumer(*row) for row in rows]

    def in_flight(self, limit: int = 100) -> list[InFlight]:
        rows = self._conn().execute(
            "SELECT m.id, m.body, m.receive_count, m.sent_at, m.received_at, m.visible_at,"
            " m.consumer, m.last_error,"
            " c.id, c.pid, c.host, c.node, c.started_at, c.lease_expires_at"
            " FROM messages m LEFT JOIN consumers c ON c.id = m.consumer AND c.queue = m.queue"
            " WHERE m.queue = ? AND m.dead_at IS NULL AND m.visible_at > ?"
            " AND m.receive_count > 0 ORDER BY m.sent_at, m.seq LIMIT ?",
            (self.name, time.time(), limit),
        )
        return [in_flight_from_row(r) for r in rows]

"""Database engines and schema migrations.

SQLite is the embedded default (WAL, busy timeout, foreign keys); PostgreSQL is used through
psycopg 3 when `database.url` says `postgresql://`. `migrate()` brings any database to the
newest schema with Alembic, so `bastion init` and tests build the schema the same way;
`has_schema()` tells a database that never was migrated (so holds no keys either).

SQLite files (the database and the queue) hold key hashes and document data: they are created
readable by their owner only (`create_private_file`: 0600, a missing folder 0700); SQLite gives
its `-wal` and `-shm` files the database file's mode.

`write_transaction(engine)` is the way to write: on a SQLite file it takes a cross-process
write lock (`flock` on `<database>.lock`, plus a lock per process for its threads) and then
`BEGIN IMMEDIATE`, so writers queue on the lock and are woken the moment it is free, instead of
polling SQLite's busy handler (which sleeps 1, 2, 5, 10, ... ms between retries and wastes most
of that under contention). SQLite's own locking stays in force: a writer that does not take the
lock (another tool) is still serialised by SQLite and waited for by the busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_private_file(path: Path) -> None:
    """Create `path` readable and writable by its owner only (0600), with its folder (0700) if
    missing. An existing file is left as it is (`bastion config check` reports loose modes)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///path` URL; None for another database, an in-memory
    one or a `file:` URI."""
    prefix = "sqlite:///"
    database = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    if not database or ":memory:" in database or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            create_private_file(database)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class FileWriteLock:
    """An exclusive lock shared by the threads of this process and by other processes.

    Threads queue on a `threading.Lock`; the holder then takes `flock` on `path` (blocking,
    woken by the kernel as soon as the previous holder lets go). The lock file is opened once
    per process (again after a fork).
    """

    _setup = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = -1
        self._thread_lock = threading.Lock()
        self._fd = -1

    def _locks(self) -> tuple[threading.Lock, int]:
        pid = os.getpid()
        if self._pid != pid:
            with self._setup:
                if self._pid != pid:  # first use in this process (or a forked child)
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self._thread_lock = threading.Lock()
                    self._pid = pid
        return self._thread_lock, self._fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        thread_lock, fd = self._locks()
        with thread_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


_write_locks: dict[str, FileWriteLock] = {}
_write_locks_guard = threading.Lock()


def file_write_lock(database_path: Path | str) -> FileWriteLock:
    """This process's write lock for the SQLite file at `database_path` (`<path>.lock`)."""
    key = os.path.abspath(database_path)
    with _write_locks_guard:
        lock = _write_locks.get(key)
        if lock is None:
            lock = _write_locks[key] = FileWriteLock(Path(key + ".lock"))
        return lock


def _sqlite_file(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error.

    SQLite: `BEGIN IMMEDIATE` (under the cross-process write lock for a database file), so the
    transaction holds SQLite's write lock from its first statement on and no later statement of
    it can fail on a lock. Other databases: `engine.begin()`.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    database = _sqlite_file(engine)
    with contextlib.ExitStack() as stack:
        if database is not None:
            stack.enter_context(file_write_lock(database).hold())
        conn = stack.enter_context(engine.connect())
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@lru_cache(maxsize=16)
def shared_engine(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


def migrate(url: str) -> None:
    """Upgrade the database at `url` to the newest schema."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = shared_engine(url)
    command.upgrade(cfg, "head")


def has_schema(url: str) -> bool:
    """Whether the database at `url` holds a Bastion schema (of any version): `migrate()` ran
    there once, as `bastion init` does."""
    with shared_engine(url).connect() as conn:
        return inspect(conn).has_table("alembic_version")


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

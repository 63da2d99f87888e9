"""The tamper-evident audit trail: records, HMAC hash chains, the batched writer, checkpoints.

Every audited call becomes an `AuditEntry`. Entries are linked into one chain per chain name
(the agent's name, or `audit.chain`; see `audit_chain`): record `seq` N stores

    hash = HMAC-SHA256(key, prev_hash + "\\n" + canonical(record))

where `prev_hash` is the hash of record N-1 (64 zeros for record 1) and `canonical` is the
sorted-key JSON of the chain name, `seq` and every entry field. Editing, deleting or re-hashing a
record without the key breaks the chain; `bastion.security.audit_verify` walks it.

`AuditWriter` keeps the request path cheap: `record()` only appends to a bounded in-memory
buffer; a background task seals batches (assigns seq and hash in order) and inserts each batch
with one executemany in one transaction, off the event loop. When the buffer is full, `record()`
waits for room (backpressure) instead of dropping anything. A failed write keeps its batch and is
retried with backoff, forever. Each committed record is also emitted as one structured log line
(event `audit`), which gives a second, off-database copy of the trail.

Every `checkpoint_every` records, and at close, the writer appends a checkpoint line (chain,
seq, head hash, time, and a MAC of those with the key) to `<checkpoint_dir>/<chain>.checkpoints`
and fsyncs it. Checkpoints let verification notice a truncated tail; shipping the file (or the
log) off the host also covers an attacker who deletes checkpoint lines. On start, the writer
refuses (AuditIntegrityError) to extend a chain whose database head is behind, or disagrees
with, its last checkpoint.

Loss window: records live only in memory between `record()` and the commit of their batch. A hard
kill (SIGKILL, power loss) loses what the buffer held since the last flush: at most
`buffer_size` records, normally about `flush_interval_seconds` worth. `close()` (called on
SIGTERM) flushes everything. Records written after the last checkpoint can be deleted from the
tail without detection by the checkpoint check; the log lines remain as evidence.

Replicas: each replica of an agent writes its own chain, `<chain>.<server.replica_id>`, so two
processes never extend one chain head and every chain stays linear and verifiable on its own
(`bastion audit verify` checks every chain it finds). Two writers that do share a chain (replicas
left without a replica id) still keep it linked: the (chain, seq) key refuses the second insert
of a seq and its writer re-seals its batch after the new head, logging `audit_chain_conflict`;
but their checkpoints, if they share a checkpoint folder, then interleave and fail verification.

Stored values are normalised before hashing so that what is hashed is exactly what the database
hands back: strings are cut to their column length, NUL and unencodable characters are
replaced, non-finite floats become 0.0 and an out-of-range status becomes 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import math
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import structlog
from sqlalchemy import Connection, Engine, select

from bastion.config import AuditSettings
from bastion.core.audit_entry import AuditEntry
from bastion.storage import AuditRecord, write_transaction

GENESIS_HASH = "0" * 64
CHECKPOINT_SUFFIX = ".checkpoints"
# The checkpoint folder, when the writer creates it: its owner's only.
CHECKPOINT_DIR_MODE = 0o700
MIN_KEY_BYTES = 16
DETAIL_MAX_CHARS = 4096
# Largest batch written on the event loop (SQLite): about 1-2 ms of blocking.
INLINE_BATCH_MAX = 256

_T = TypeVar("_T")

# Chain names become file names, so they are restricted to a safe alphabet.
CHAIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# The entry fields, in declaration order, and the column lengths they are cut to.
ENTRY_FIELDS: tuple[str, ...] = (
    "ts",
    "principal",
    "auth_method",
    "agent",
    "method",
    "correlation_id",
    "outcome",
    "status",
    "latency_ms",
    "client",
    "detail",
)
_TEXT_LIMITS: dict[str, int] = {
    "principal": 256,
    "auth_method": 16,
    "agent": 64,
    "method": 256,
    "correlation_id": 128,
    "outcome": 64,
    "client": 128,
}
# The columns of a sealed row, in the order of the INSERT.
_ROW_COLUMNS = (
    "chain", "seq", "ts", "principal", "auth_method", "agent", "method", "correlation_id",
    "outcome", "status", "latency_ms", "client", "detail", "prev_hash", "hash",
)  # fmt: skip
_CHECKPOINT_DOMAIN = b"bastion-audit-checkpoint\n"
_TAIL_READ_BYTES = 64 * 1024


class AuditIntegrityError(Exception):
    """The stored trail contradicts its checkpoints; the writer refuses to extend it."""


class AuditWriterClosed(RuntimeError):
    """`record()` was called on a writer that is not running."""


class AuditLogger(Protocol):
    """The part of a structlog logger the writer uses."""

    def info(self, event: str, **kw: Any) -> Any: ...

    def error(self, event: str, **kw: Any) -> Any: ...


def audit_chain(agent: str, settings: AuditSettings, replica_id: str | None = None) -> str:
    """The chain a process writes: `audit.chain` or the agent's name, then `.<replica_id>`.

    `replica_id` is `server.replica_id`: None for a single replica, `auto` for this host's
    name and process id. ValueError, naming the settings, when the result is not a valid name.
    """
    chain = settings.chain or agent
    if replica_id == "auto":
        host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()).strip(".-")[:40]
        replica_id = f"{host or 'host'}-{os.getpid()}"
    if replica_id:
        chain = f"{chain}.{replica_id}"
    if not CHAIN_NAME_RE.fullmatch(chain):
        raise ValueError(
            f"audit chain {chain!r} (audit.chain or the agent's name, then server.replica_id) "
            "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}: shorten or rename them"
        )
    return chain


# --- canonical form and hashing -------------------------------------------------------------


def canonical(chain: str, seq: int, entry: AuditEntry) -> bytes:
    """The deterministic serialisation that a record's hash covers."""
    return orjson.dumps(
        {
            "agent": entry.agent,
            "auth_method": entry.auth_method,
            "chain": chain,
            "client": entry.client,
            "correlation_id": entry.correlation_id,
            "detail": entry.detail,
            "latency_ms": entry.latency_ms,
            "method": entry.method,
            "outcome": entry.outcome,
            "principal": entry.principal,
            "seq": seq,
            "status": entry.status,
            "ts": entry.ts,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def chain_message(prev_hash: str, canonical_bytes: bytes) -> bytes:
    """What the HMAC of a record is computed over."""
    return prev_hash.encode("utf-8") + b"\n" + canonical_bytes


def chain_hash(key: bytes, prev_hash: str, canonical_bytes: bytes) -> str:
    """`HMAC-SHA256(key, prev_hash + "\\n" + canonical)` as hex."""
    return hmac.digest(key, chain_message(prev_hash, canonical_bytes), "sha256").hex()


def _text(value: object, limit: int | None) -> str:
    s = value if type(value) is str else str(value)
    if limit is not None and len(s) > limit:
        s = s[:limit]
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = s.encode("utf-8", "replace").decode("utf-8")
    return s


def _real(value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    # `+ 0.0` turns -0.0 into 0.0, which every backend hands back unchanged.
    return x + 0.0 if math.isfinite(x) else 0.0


def _status(value: object) -> int:
    try:
        n = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    return n if 0 <= n <= 999 else 0


def _already_clean(e: AuditEntry) -> bool:
    """True when storing `e` needs no change: the common case, checked in one pass."""
    limits = _TEXT_LIMITS
    text = (
        e.principal + e.auth_method + e.agent + e.method + e.correlation_id + e.outcome + e.client
    )
    return (
        text.isascii()
        and "\x00" not in text
        and len(e.principal) <= limits["principal"]
        and len(e.auth_method) <= limits["auth_method"]
        and len(e.agent) <= limits["agent"]
        and len(e.method) <= limits["method"]
        and len(e.correlation_id) <= limits["correlation_id"]
        and len(e.outcome) <= limits["outcome"]
        and len(e.client) <= limits["client"]
        and e.detail is None
        and type(e.ts) is float
        and type(e.latency_ms) is float
        and type(e.status) is int
        and 0 <= e.status <= 999
        and math.isfinite(e.ts)
        and math.isfinite(e.latency_ms)
        and e.ts != 0.0
        and e.latency_ms != 0.0
    )


def normalize(entry: AuditEntry) -> AuditEntry:
    """The entry as it will be stored: column lengths, valid text, finite numbers."""
    try:
        if _already_clean(entry):
            return entry
    except TypeError:  # a field of the wrong type: the full pass below fixes it
        pass
    return AuditEntry(
        ts=_real(entry.ts),
        principal=_text(entry.principal, _TEXT_LIMITS["principal"]),
        auth_method=_text(entry.auth_method, _TEXT_LIMITS["auth_method"]),
        agent=_text(entry.agent, _TEXT_LIMITS["agent"]),
        method=_text(entry.method, _TEXT_LIMITS["method"]),
        correlation_id=_text(entry.correlation_id, _TEXT_LIMITS["correlation_id"]),
        outcome=_text(entry.outcome, _TEXT_LIMITS["outcome"]),
        status=_status(entry.status),
        latency_ms=_real(entry.latency_ms),
        client=_text(entry.client, _TEXT_LIMITS["client"]),
        detail=None if entry.detail is None else _text(entry.detail, DETAIL_MAX_CHARS),
    )


def seal_batch(
    entries: Sequence[AuditEntry], *, chain: str, key: bytes, seq: int, prev_hash: str
) -> list[dict[str, Any]]:
    """Rows for `entries`, continuing the chain after record `seq` whose hash is `prev_hash`."""
    rows: list[dict[str, Any]] = []
    for raw in entries:
        seq += 1
        e = normalize(raw)
        h = chain_hash(key, prev_hash, canonical(chain, seq, e))
        rows.append(
            {
                "chain": chain,
                "seq": seq,
                "ts": e.ts,
                "principal": e.principal,
                "auth_method": e.auth_method,
                "agent": e.agent,
                "method": e.method,
                "correlation_id": e.correlation_id,
                "outcome": e.outcome,
                "status": e.status,
                "latency_ms": e.latency_ms,
                "client": e.client,
                "detail": e.detail,
                "prev_hash": prev_hash,
                "hash": h,
            }
        )
        prev_hash = h
    return rows


def entry_from_row(row: Any) -> AuditEntry:
    """An `AuditEntry` from a database row (mapping or attribute access)."""
    get = row.__getitem__ if isinstance(row, dict) else row._mapping.__getitem__
    return AuditEntry(**{name: get(name) for name in ENTRY_FIELDS})


# --- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that record `seq` of `chain` had hash `hash` at time `ts`."""

    chain: str
    seq: int
    hash: str
    ts: float
    mac: str

    def to_line(self) -> bytes:
        return (
            orjson.dumps(
                {
                    "chain": self.chain,
                    "seq": self.seq,
                    "hash": self.hash,
                    "ts": self.ts,
                    "mac": self.mac,
                }
            )
            + b"\n"
        )


def checkpoint_mac(key: bytes, chain: str, seq: int, head_hash: str, ts: float) -> str:
    body = orjson.dumps(
        {"chain": chain, "hash": head_hash, "seq": seq, "ts": ts}, option=orjson.OPT_SORT_KEYS
    )
    return hmac.new(key, _CHECKPOINT_DOMAIN + body, hashlib.sha256).hexdigest()


def make_checkpoint(
    key: bytes, chain: str, seq: int, head_hash: str, ts: float | None = None
) -> Checkpoint:
    stamp = time.time() if ts is None else ts
    return Checkpoint(
        chain, seq, head_hash, stamp, checkpoint_mac(key, chain, seq, head_hash, stamp)
    )


def checkpoint_ok(key: bytes, cp: Checkpoint) -> bool:
    """True when the checkpoint's MAC was made with `key` over its fields (constant time)."""
    expected = checkpoint_mac(key, cp.chain, cp.seq, cp.hash, cp.ts)
    return hmac.compare_digest(expected, cp.mac)


def checkpoint_path(checkpoint_dir: Path, chain: str) -> Path:
    if not CHAIN_NAME_RE.fullmatch(chain):
        raise ValueError("audit chain names must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
    return checkpoint_dir / f"{chain}{CHECKPOINT_SUFFIX}"


def parse_checkpoint(line: bytes) -> Checkpoint:
    """Parse one checkpoint line; ValueError when it is not a well-formed checkpoint."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError("not valid JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    chain, seq, head, ts, mac = (data.get(k) for k in ("chain", "seq", "hash", "ts", "mac"))
    if not isinstance(chain, str) or not isinstance(head, str) or not isinstance(mac, str):
        raise ValueError("chain, hash and mac must be strings")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq must be a positive integer")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise ValueError("ts must be a number")
    return Checkpoint(chain, seq, head, ts, mac)


def append_checkpoint(path: Path, cp: Checkpoint) -> None:
    """Append one checkpoint line and fsync it (and the folder, when the file is new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=CHECKPOINT_DIR_MODE)
    is_new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, cp.to_line())
        os.fsync(fd)
    finally:
        os.close(fd)
    if is_new:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def iter_checkpoint_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number, line, complete) for each line; `complete` is False for a torn end."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            complete = line.endswith(b"\n")
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield number, stripped, complete


def read_last_checkpoint(path: Path) -> Checkpoint | None:
    """The last complete checkpoint line of a file (None when there is none).

    Raises ValueError when that line is malformed. Reads only the end of the file.
    """
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL_READ_BYTES))
            chunk = fh.read()
    except FileNotFoundError:
        return None
    lines = chunk.split(b"\n")
    # The piece after the last newline is empty, or a torn write that is ignored.
    complete = [ln for ln in lines[:-1] if ln.strip()]
    if size > _TAIL_READ_BYTES and complete:
        complete = complete[1:] or complete  # the first piece may be a partial line
    if not complete:
        return None
    return parse_checkpoint(complete[-1])


# --- the writer -----------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """A short error description for logs: the driver's message, not SQL or parameters."""
    inner = getattr(exc, "orig", None) or exc
    first = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def load_head(conn: Connection, chain: str) -> tuple[int, str]:
    """The last (seq, hash) of `chain`, or (0, genesis) for an empty chain."""
    row = conn.execute(
        select(AuditRecord.seq, AuditRecord.hash)
        .where(AuditRecord.chain == chain)
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    ).first()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


def hash_at(conn: Connection, chain: str, seq: int) -> str | None:
    return conn.execute(
        select(AuditRecord.hash).where(AuditRecord.chain == chain, AuditRecord.seq == seq)
    ).scalar_one_or_none()


class AuditWriter:
    """Buffered, batched writer for one chain. See the module docstring for the guarantees.

    Counters: `written` (records committed), `backpressure_waits` (record() calls that had to
    wait for room), `write_errors` (failed batch writes, each retried), `checkpoint_errors`,
    and the `pending` property (accepted but not yet committed).
    """

    retry_base_seconds: float = 0.1
    retry_max_seconds: float = 5.0

    def __init__(
        self,
        engine: Engine,
        *,
        chain: str,
        key: bytes,
        settings: AuditSettings,
        checkpoint_dir: Path,
        logger: AuditLogger | None = None,
    ) -> None:
        if not CHAIN_NAME_RE.fullmatch(chain):
            raise ValueError("audit chain names must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the audit HMAC key must be at least {MIN_KEY_BYTES} bytes")
        if settings.batch_size < 1 or settings.buffer_size < 1 or settings.checkpoint_every < 1:
            raise ValueError("audit batch_size, buffer_size and checkpoint_every must be >= 1")
        if not settings.flush_interval_seconds > 0:
            raise ValueError("audit flush_interval_seconds must be positive")
        self._engine = engine
        self._chain = chain
        self._key = key
        self._capacity = settings.buffer_size
        self._inline = engine.dialect.name == "sqlite"
        # One prepared INSERT with the driver's named placeholders: rows go to executemany()
        # as they are, without a per-row pass through the SQL expression layer.
        # Table and column names are constants; every value is a bound parameter.
        mark = ":{}" if self._inline else "%({})s"
        columns = ", ".join(_ROW_COLUMNS)
        values = ", ".join(mark.format(c) for c in _ROW_COLUMNS)
        self._insert_sql = f"INSERT INTO {AuditRecord.__tablename__} ({columns}) VALUES ({values})"  # noqa: S608
        # Inline writes block the loop while they run: keep each one short.
        self._batch_size = (
            min(settings.batch_size, INLINE_BATCH_MAX) if self._inline else settings.batch_size
        )
        self._interval = settings.flush_interval_seconds
        self._checkpoint_every = settings.checkpoint_every
        self._checkpoint_path = checkpoint_path(checkpoint_dir, chain)
        self._log: AuditLogger = (
            logger if logger is not None else structlog.get_logger("bastion.audit")
        )
        self._buffer: deque[AuditEntry] = deque()
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._wakeup = asyncio.Event()
        self._pending = 0
        self._seq = 0
        self._head = GENESIS_HASH
        self._last_checkpoint_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self._closing = False
        self._closed = False
        self.written = 0
        self.backpressure_waits = 0
        self.write_errors = 0
        self.checkpoint_errors = 0

    def __repr__(self) -> str:
        return f"AuditWriter(chain={self._chain!r}, seq={self._seq}, pending={self._pending})"

    @property
    def chain(self) -> str:
        return self._chain

    @property
    def pending(self) -> int:
        """Records accepted by record() and not yet committed to the database."""
        return self._pending

    @property
    def head(self) -> tuple[int, str]:
        """The (seq, hash) of the last committed record."""
        return self._seq, self._head

    # -- lifecycle --

    async def start(self) -> None:
        """Load the chain head, check it against the last checkpoint, start the flush task.

        Raises AuditIntegrityError when the database is behind or disagrees with the last
        checkpoint (a truncated or rewritten trail): the writer does not extend such a chain.
        """
        if self._task is not None or self._closed:
            raise RuntimeError("the audit writer was already started")
        await asyncio.to_thread(self._load_start_state)
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"audit-writer:{self._chain}", context=contextvars.Context()
        )

    def _load_start_state(self) -> None:
        self._checkpoint_path.parent.mkdir(parents=True, exist_ok=True, mode=CHECKPOINT_DIR_MODE)
        try:
            cp = read_last_checkpoint(self._checkpoint_path)
        except ValueError as exc:
            raise AuditIntegrityError(
                f"audit chain {self._chain!r}: the last checkpoint line is malformed ({exc}); "
                "run `bastion audit verify`"
            ) from None
        with self._engine.connect() as conn:
            seq, head = load_head(conn, self._chain)
            at_cp = hash_at(conn, self._chain, cp.seq) if cp is not None else None
        if cp is not None:
            if cp.chain != self._chain or not checkpoint_ok(self._key, cp):
                raise AuditIntegrityError(
                    f"audit chain {self._chain!r}: the last checkpoint does not verify with the "
                    "audit key; run `bastion audit verify`"
                )
            if seq < cp.seq:
                raise AuditIntegrityError(
                    f"audit chain {self._chain!r}: the database ends at seq {seq} but a checkpoint "
                    f"vouches for seq {cp.seq} (truncated trail); run `bastion audit verify`"
                )
            if at_cp is None or not hmac.compare_digest(at_cp, cp.hash):
                raise AuditIntegrityError(
                    f"audit chain {self._chain!r}: record seq {cp.seq} does not match its "
                    "checkpoint; run `bastion audit verify`"
                )
            self._last_checkpoint_seq = cp.seq
        self._seq, self._head = seq, head

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting, flush everything pending, write a final checkpoint, stop the task.

        With a timeout, records still unwritten when it expires are logged (as a count) at
        error level and TimeoutError is raised; without one, close() waits for the database.
        """
        if self._closed:
            return
        self._accepting = False
        self._closing = True
        task = self._task
        if task is None:
            self._closed = True
            return
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._closed = True
            self._log.error("audit_close_timeout", chain=self._chain, unwritten=self._pending)
            raise
        await asyncio.to_thread(self._checkpoint_if_behind, 1)
        self._closed = True

    # -- hot path --

    async def record(self, entry: AuditEntry) -> None:
        """Queue one entry; waits for room when the buffer is full. Never drops the entry.

        If the waiting call is cancelled, the entry is still queued (the buffer may then hold
        one more than its bound) and the cancellation propagates.
        """
        if not self._accepting:
            raise AuditWriterClosed("the audit writer is not running")
        if self._pending < self._capacity and not self._room_waiters:
            self._pending += 1
        else:
            try:
                await self._reserve()
            finally:
                self._enqueue(entry)
            return
        self._buffer.append(entry)
        if len(self._buffer) >= self._batch_size:
            self._wakeup.set()

    def record_nowait(self, entry: AuditEntry) -> bool:
        """Queue one entry if there is room; False (nothing queued) when the buffer is full."""
        if not self._accepting:
            raise AuditWriterClosed("the audit writer is not running")
        if self._pending >= self._capacity or self._room_waiters:
            return False
        self._pending += 1
        self._enqueue(entry)
        return True

    def _enqueue(self, entry: AuditEntry) -> None:
        self._buffer.append(entry)
        if len(self._buffer) >= self._batch_size or self._closing:
            self._wakeup.set()

    async def _reserve(self) -> None:
        """Wait, first come first served, until a slot is handed over by `_release`."""
        self.backpressure_waits += 1
        self._wakeup.set()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room_waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                with contextlib.suppress(ValueError):
                    self._room_waiters.remove(fut)
                self._pending += 1  # queued anyway: an audit record is never lost
            raise

    def _release(self, count: int) -> None:
        self._pending -= count
        waiters = self._room_waiters
        while waiters and self._pending < self._capacity:
            fut = waiters.popleft()
            if fut.done():
                continue
            self._pending += 1
            fut.set_result(None)

    # -- background flushing --

    async def _offload(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run blocking database work: inline for SQLite, in a thread otherwise.

        SQLite writes are CPU-bound: in a thread they contend with the event loop for the
        GIL and cost more request throughput than they save, so they run on the loop in
        small batches. PostgreSQL writes mostly wait on the network, so they go to a thread.
        """
        if self._inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _run(self) -> None:
        buf = self._buffer
        while True:
            if not buf and self._closing and self._pending == 0 and not self._room_waiters:
                return
            if len(buf) < self._batch_size and not (self._closing and buf):
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._interval)
                if not buf:
                    continue
            count = min(len(buf), self._batch_size)
            batch = [buf.popleft() for _ in range(count)]
            await self._commit(batch)

    async def _commit(self, batch: list[AuditEntry]) -> None:
        """Seal and insert one batch, retrying until it is committed."""
        rows: list[dict[str, Any]] | None = None
        delay = self.retry_base_seconds
        while True:
            try:
                if rows is None:
                    rows = await self._offload(
                        seal_batch,
                        batch,
                        chain=self._chain,
                        key=self._key,
                        seq=self._seq,
                        prev_hash=self._head,
                    )
                await self._offload(self._insert, rows)
                break
            except Exception as exc:
                self.write_errors += 1
                self._log.error(
                    "audit_write_failed",
                    chain=self._chain,
                    records=len(batch),
                    error=_describe(exc),
                    retry_in=delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_seconds)
            if rows is None:
                continue
            try:
                state = await self._offload(self._reconcile, rows)
            except Exception:  # noqa: S112 - database still unreachable: retry the insert
                continue
            if state is True:
                break
            if isinstance(state, tuple):
                # Another writer extended this chain: continue after its head.
                self._log.error(
                    "audit_chain_conflict",
                    chain=self._chain,
                    head_seq=state[0],
                    hint="another process writes this chain: give each replica its own "
                    "server.replica_id",
                )
                self._seq, self._head = state
                rows = None
        self._seq = int(rows[-1]["seq"])
        self._head = str(rows[-1]["hash"])
        self.written += len(rows)
        self._release(len(rows))
        try:
            await self._offload(self._after_commit, rows)
        except Exception as exc:  # the records are committed; keep the writer going
            self._log.error("audit_post_commit_failed", chain=self._chain, error=_describe(exc))

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        # SQLite: under the database's cross-process write lock (see `write_transaction`).
        with write_transaction(self._engine) as conn:
            conn.exec_driver_sql(self._insert_sql, rows)

    def _reconcile(self, rows: list[dict[str, Any]]) -> bool | tuple[int, str] | None:
        """After a failed insert: True if the batch was committed after all, the new head if
        the chain moved under us, None if a plain retry is right."""
        first = rows[0]
        with self._engine.connect() as conn:
            stored = hash_at(conn, self._chain, int(first["seq"]))
            if stored is not None and hmac.compare_digest(stored, str(first["hash"])):
                return True
            head = load_head(conn, self._chain)
        if head != (int(first["seq"]) - 1, str(first["prev_hash"])):
            return head
        return None

    def _after_commit(self, rows: list[dict[str, Any]]) -> None:
        log = self._log
        for row in rows:
            try:
                log.info(
                    "audit",
                    chain=row["chain"],
                    seq=row["seq"],
                    ts=row["ts"],
                    principal=row["principal"],
                    auth_method=row["auth_method"],
                    agent=row["agent"],
                    method=row["method"],
                    correlation_id=row["correlation_id"],
                    outcome=row["outcome"],
                    status=row["status"],
                    latency_ms=row["latency_ms"],
                    client=row["client"],
                    detail=row["detail"],
                    hash=row["hash"],
                )
            except Exception:  # noqa: S112 - a broken log sink must not stop the writer
                continue
        flush = getattr(log, "flush", None)
        if flush is not None:
            with contextlib.suppress(Exception):
                flush()
        self._checkpoint_if_behind(self._checkpoint_every)

    def _checkpoint_if_behind(self, every: int) -> None:
        seq, head = self._seq, self._head
        if seq - self._last_checkpoint_seq < every or seq == 0:
            return
        try:
            append_checkpoint(
                self._checkpoint_path, make_checkpoint(self._key, self._chain, seq, head)
            )
        except OSError as exc:
            self.checkpoint_errors += 1
            self._log.error(
                "audit_checkpoint_failed", chain=self._chain, seq=seq, error=_describe(exc)
            )
            return
        self._last_checkpoint_seq = seq

"""The audit writer in its own process, so that sealing and storing records never takes CPU
from the agent's event loop.

`AuditProcessWriter` has the interface of `AuditWriter` (start, record, record_nowait, close,
the counters). It buffers entries, ships them in batches over a pipe to a child process, and
the child runs an ordinary `AuditWriter` (hash chain, batched inserts, checkpoints, one JSON log
line per record on the child's stderr). The child acknowledges what it has committed.

Nothing is dropped: an entry counts as pending until the child acknowledges it, a full buffer
makes `record()` wait, and if the child dies, a new one is started and every unacknowledged
entry is sent again (a record the dead child had committed but not yet acknowledged can then
appear twice in the trail; none is lost). The loss window on a hard kill of the agent is what
its buffer and the child's held since their last flush, as for the in-process writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson
import structlog

from bastion.config import AuditSettings
from bastion.core.audit_entry import AuditEntry
from bastion.security.audit import AuditIntegrityError, AuditWriterClosed

log = structlog.get_logger("bastion.audit")

_ACK_INTERVAL = 0.05
_START_TIMEOUT = 60.0
_MAX_RESTARTS = 5


async def _child(config: dict[str, Any]) -> None:  # pragma: no cover - runs in the child
    """The writer process: read batches from stdin, feed them into an AuditWriter, and write
    `{"written": n}` acknowledgements to stdout."""
    from bastion.config import LoggingSettings
    from bastion.observability.logging import audit_logger, configure_logging
    from bastion.security.audit import AuditWriter
    from bastion.storage import make_engine

    configure_logging(LoggingSettings(level=config["log_level"]))
    writer = AuditWriter(
        make_engine(config["db_url"]),
        chain=config["chain"],
        key=bytes.fromhex(config["key"]),
        settings=AuditSettings.model_validate(config["settings"]),
        checkpoint_dir=Path(config["checkpoint_dir"]),
        logger=audit_logger(),
    )
    out = sys.stdout.buffer

    def say(message: dict[str, Any]) -> None:
        out.write(orjson.dumps(message) + b"\n")
        out.flush()

    try:
        await writer.start()
    except AuditIntegrityError as exc:
        say({"error": str(exc)})
        return
    say({"ready": True})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def acknowledge() -> None:
        sent = -1
        while True:
            await asyncio.sleep(_ACK_INTERVAL)
            if writer.written != sent:
                sent = writer.written
                say({"written": sent})

    acks = asyncio.create_task(acknowledge())
    while True:
        line = await reader.readline()
        if not line or line == b"close\n":  # closed by the agent, or the agent is gone
            break
        for fields in orjson.loads(line):
            await writer.record(AuditEntry(*fields))
    await writer.close()
    acks.cancel()
    say({"written": writer.written, "closed": True})


def main() -> None:  # pragma: no cover - runs in the child
    config = orjson.loads(sys.stdin.buffer.readline())
    asyncio.run(_child(config))


class AuditProcessWriter:
    """Buffered audit writer whose chain is written by a child process."""

    def __init__(
        self,
        db_url: str,
        *,
        chain: str,
        key: bytes,
        settings: AuditSettings,
        checkpoint_dir: Path,
        log_level: str = "INFO",
    ) -> None:
        # The key goes to the child on its stdin, never on a command line.
        self._config = orjson.dumps(
            {
                "db_url": db_url,
                "chain": chain,
                "key": key.hex(),
                "settings": settings.model_dump(),
                "checkpoint_dir": str(checkpoint_dir),
                "log_level": log_level,
            }
        )
        self._chain = chain
        self._capacity = settings.buffer_size
        self._batch_size = settings.batch_size
        self._interval = settings.flush_interval_seconds
        self._buffer: list[tuple[Any, ...]] = []
        # Batches sent and not yet acknowledged, oldest first: (count, payload).
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._unacked_count = 0
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._wakeup = asyncio.Event()
        self._acked_by_child = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._child_gone = True
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self._closed = False
        self._restarts = 0
        self.written = 0
        self.backpressure_waits = 0
        self.restarts = 0

    def __repr__(self) -> str:
        return f"AuditProcessWriter(chain={self._chain!r}, pending={self.pending})"

    @property
    def chain(self) -> str:
        return self._chain

    @property
    def pending(self) -> int:
        """Entries accepted by record() and not yet acknowledged as committed."""
        return len(self._buffer) + self._unacked_count

    # -- child process ---------------------------------------------------------------------

    async def _spawn(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bastion.security.audit_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(self._config + b"\n")
        await proc.stdin.drain()
        ready = await asyncio.wait_for(proc.stdout.readline(), _START_TIMEOUT)
        answer = orjson.loads(ready) if ready else {"error": "the audit writer process failed"}
        if "error" in answer:
            await proc.wait()
            raise AuditIntegrityError(answer["error"])
        self._proc = proc
        self._child_gone = False
        self._acked_by_child = 0
        self._reader_task = asyncio.get_running_loop().create_task(self._read_acks(proc))

    async def _read_acks(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            written = int(orjson.loads(line)["written"])
            self._acknowledge(written - self._acked_by_child)
            self._acked_by_child = written
        self._child_gone = True
        self._wakeup.set()  # the child is gone: the shipping task restarts it if needed

    def _acknowledge(self, count: int) -> None:
        self.written += count
        while count > 0 and self._unacked:
            n, payload = self._unacked[0]
            if n <= count:
                self._unacked.popleft()
                self._unacked_count -= n
                count -= n
            else:  # part of a batch: keep the rest for a resend
                rest = orjson.loads(payload)[count:]
                self._unacked[0] = (len(rest), orjson.dumps(rest))
                self._unacked_count -= count
                count = 0
        self._release()

    async def _restart(self) -> None:
        """Replace a dead child and resend everything it did not acknowledge."""
        self._restarts += 1
        self.restarts += 1
        log.error(
            "audit_writer_process_died",
            chain=self._chain,
            exitcode=self._proc.returncode if self._proc else None,
            resending=self._unacked_count,
        )
        if self._restarts > _MAX_RESTARTS:
            raise RuntimeError("the audit writer process keeps dying; see the log")
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        if self._reader_task is not None:
            await self._reader_task
        await self._spawn()
        for _, payload in list(self._unacked):
            await self._send(payload)

    def _alive(self) -> bool:
        return self._proc is not None and not self._child_gone and self._proc.returncode is None

    async def _send(self, payload: bytes) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(payload + b"\n")
            await proc.stdin.drain()  # waits, off the loop's CPU, when the child is behind
        except (BrokenPipeError, ConnectionResetError):
            # The child died; the payload is still unacknowledged and is resent on restart.
            self._child_gone = True

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None or self._closed:
            raise RuntimeError("the audit writer was already started")
        await self._spawn()
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"audit-shipper:{self._chain}"
        )

    async def close(self, timeout: float | None = None) -> None:
        """Ship everything, let the child flush and checkpoint, wait for it to exit."""
        if self._closed:
            return
        self._accepting = False
        self._closed = True
        task = self._task
        if task is None:
            return
        self._wakeup.set()
        await asyncio.wait_for(asyncio.shield(task), timeout)

    # -- hot path --------------------------------------------------------------------------

    async def record(self, entry: AuditEntry) -> None:
        """Queue one entry; waits for room when the buffer is full. Never drops the entry."""
        if not self._accepting:
            raise AuditWriterClosed("the audit writer is not running")
        if self.pending >= self._capacity or self._room_waiters:
            self.backpressure_waits += 1
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room_waiters.append(fut)
            self._wakeup.set()
            try:
                await fut
            finally:
                self._append(entry)  # queued even when the wait is cancelled
            return
        self._append(entry)

    def record_nowait(self, entry: AuditEntry) -> bool:
        if not self._accepting:
            raise AuditWriterClosed("the audit writer is not running")
        if self.pending >= self._capacity or self._room_waiters:
            return False
        self._append(entry)
        return True

    def _append(self, entry: AuditEntry) -> None:
        e = entry
        self._buffer.append(
            (
                e.ts, e.principal, e.auth_method, e.agent, e.method, e.correlation_id,
                e.outcome, e.status, e.latency_ms, e.client, e.detail,
            )
        )  # fmt: skip
        if len(self._buffer) >= self._batch_size:
            self._wakeup.set()

    def _release(self) -> None:
        waiters = self._room_waiters
        while waiters and self.pending < self._capacity:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    # -- shipping --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._closed and len(self._buffer) < self._batch_size:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._interval)
            if self._buffer:
                batch, self._buffer = self._buffer, []
                payload = orjson.dumps(batch)
                self._unacked.append((len(batch), payload))
                self._unacked_count += len(batch)
                if self._alive():
                    await self._send(payload)
            while not self._alive():
                await self._restart()
            if self._closed and not self._buffer and not self._room_waiters:
                await self._finish()
                return

    async def _finish(self) -> None:
        """Tell the child to flush and exit; if it dies with entries unacknowledged, start a
        new one, resend them, and try again."""
        while True:
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            if self._alive():
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(b"close\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
            await proc.wait()
            if self._reader_task is not None:
                await self._reader_task
            if not self._unacked_count:
                return
            await self._restart()


if __name__ == "__main__":  # pragma: no cover
    main()

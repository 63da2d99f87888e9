"""The extraction sandbox: preflight and extraction in warm, memory-limited worker processes.

`ExtractionSandbox` keeps `workers` child processes running
`python -m bastion.pipeline.extract.sandbox`. Each child imports the extractor once, limits its
own address space with `RLIMIT_AS`, and then serves documents one at a time over its stdin and
stdout. Hostile documents cannot hurt the caller:

- a document still running after `timeout_seconds` gets its worker killed and replaced, and
  raises `ExtractionError("timeout")`;
- a document that exhausts the worker's memory raises `ExtractionError("memory_limit")` (a
  `MemoryError` in the worker, a worker that died with an out-of-memory message, or a SIGKILL
  the sandbox did not send); the worker is replaced. Peak memory is no evidence: the limit is
  on address space, and a forked worker's reported peak starts at its parent's;
- any other worker death raises `ExtractionError("extract_failed")`; the worker is replaced;
- refusals from preflight and from the extractor keep their reason codes.

Wire protocol, both directions: an 8-byte header `!II` (JSON header length, body length), the
JSON header, then the body. A request's body is the document and its header is
`{"text_only": bool}`. The worker's first frame is `{"ready": true}`; every answer is
`{"ok": true}` with the `ExtractionResult` JSON as body, or
`{"ok": false, "reason": ..., "detail": ..., "restart": bool}` with an empty body. The worker's
own stdout is redirected to stderr, so stray prints cannot corrupt the protocol; the sandbox keeps
the last lines of each worker's stderr for diagnostics.

`target` names the extract function as "module:function" (default: the real
`bastion.pipeline.extract:extract_document`); tests point it at stand-ins. A target that takes
an `ocr` keyword gets the sandbox's `OcrOptions`, with a time budget of at most
`_OCR_SHARE` of the per-document timeout, so that a long scan ends with its unread pages
reported rather than with the worker killed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import functools
import importlib
import inspect
import json
import math
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from bastion.pipeline.extract.ocr import DEFAULT_OCR, OcrOptions
from bastion.pipeline.model import REASON_CODES, ExtractionError, ExtractionResult, Finding

DEFAULT_TARGET = "bastion.pipeline.extract:extract_document"
_FRAME = struct.Struct("!II")
_MAX_ANSWER = 64 * 1024 * 1024
_IO_CHUNK = 256 * 1024
_READ_AHEAD = 16 * 1024
_START_TIMEOUT = 60.0
_STDERR_LINES = 40
_OCR_SHARE = 0.75  # of the per-document timeout, the most OCR may take
# The answer header of every extracted document, encoded once (both sides know it).
_OK: dict[str, Any] = {"ok": True}
_OK_HEADER = json.dumps(_OK).encode()
_OOM_MARKERS = (b"MemoryError", b"bad_alloc", b"out of memory", b"Out of memory",
                b"Cannot allocate memory", b"OOM")  # fmt: skip


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (a worker fails to start): not the document's fault."""


class ExtractFunction(Protocol):
    def __call__(self, data: bytes, *, text_only: bool = ..., max_pages: int = ...) -> Any: ...


class _WorkerLost(Exception):
    """The worker died or broke the protocol while handling a document."""

    def __init__(self, message: str, *, alive: bool = False) -> None:
        super().__init__(message)
        self.alive = alive  # it broke the protocol but still runs: kill it at once


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    stderr_tail: collections.deque[bytes]
    reader: threading.Thread
    ready: bool = False
    killed: bool = False  # the sandbox sent the SIGKILL
    # Its stdout registered for reading, made once: every answer is waited for with it.
    stdout_poll: select.poll | None = None


@dataclass
class _Slot:
    worker: _Worker | None = None


class ExtractionSandbox:
    """Runs preflight + extract_document for untrusted documents in warm worker processes."""

    def __init__(
        self,
        workers: int = 1,
        *,
        timeout_seconds: float = 20.0,
        memory_mb: int = 512,
        max_pages: int = 200,
        target: str = DEFAULT_TARGET,
        start_timeout: float = _START_TIMEOUT,
        ocr: OcrOptions = DEFAULT_OCR,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.max_pages = max_pages
        self.target = target
        self.start_timeout = start_timeout
        budget = _OCR_SHARE * timeout_seconds
        if ocr.time_budget_seconds is not None:
            budget = min(budget, ocr.time_budget_seconds)
        self.ocr = dataclasses.replace(ocr, time_budget_seconds=budget)
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []
        self._idle: collections.deque[_Slot] = collections.deque()
        self._available = threading.Semaphore(0)
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each has imported the extractor."""
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        self._ensure_started()
        deadline = time.monotonic() + self.start_timeout
        for slot in self._take_all():
            try:
                self._ensure_ready(slot, deadline)
            finally:
                self._release(slot)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Stop the workers (after any document in flight). Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            executor, self._executor = self._executor, None
        held: list[_Slot] = []
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
            held = self._take_all()  # documents in flight in callers' threads (extract_sync)
        for slot in self._slots:
            if slot.worker is not None:
                _stop(slot.worker)
                slot.worker = None
        for slot in held:
            self._release(slot)  # callers still waiting for a worker find the sandbox closed

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __enter__(self) -> Self:
        self.start_sync()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (a replaced worker gets a new one)."""
        return [slot.worker.process.pid for slot in self._slots if slot.worker is not None]

    # --- extraction --------------------------------------------------------------------------

    async def extract(self, data: bytes, *, text_only: bool = False) -> ExtractionResult:
        """Preflight and extract `data` in a worker; ExtractionError(reason) if refused."""
        executor = self._ensure_started()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._run, data, text_only)

    def extract_sync(self, data: bytes, *, text_only: bool = False) -> ExtractionResult:
        """Blocking `extract`, for the CLI and other synchronous callers. It runs in the calling
        thread (no hand-over to the executor), under the same limit of one document per worker.
        """
        self._ensure_started()
        return self._run(data, text_only)

    def _ensure_started(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise SandboxError("the extraction sandbox is closed")
            if self._executor is None:
                self._slots = [_Slot(self._spawn()) for _ in range(self.workers)]
                self._idle.extend(self._slots)
                for _ in self._slots:
                    self._available.release()
                self._executor = ThreadPoolExecutor(self.workers, "bastion-extract")
            return self._executor

    def _take(self) -> _Slot:
        self._available.acquire()
        with self._lock:
            return self._idle.popleft()

    def _take_all(self) -> list[_Slot]:
        return [self._take() for _ in range(self.workers)]

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            self._idle.append(slot)
        self._available.release()

    def _run(self, data: bytes, text_only: bool) -> ExtractionResult:
        slot = self._take()
        try:
            if self._closed:
                raise SandboxError("the extraction sandbox is closed")
            self._ensure_ready(slot, time.monotonic() + self.start_timeout)
            assert slot.worker is not None
            header = b'{"text_only": true}' if text_only else b'{"text_only": false}'
            try:
                answer, body = _exchange(
                    slot.worker, header, data, time.monotonic() + self.timeout_seconds
                )
            except TimeoutError:
                self._replace(slot, kill=True)
                raise ExtractionError(
                    "timeout", f"no result after {self.timeout_seconds:g} s"
                ) from None
            except _WorkerLost as lost:
                raise self._worker_died(slot, kill=lost.alive) from None
            except BaseException:
                # Interrupted mid-exchange (KeyboardInterrupt in the caller's thread): the answer
                # would reach the next request. The worker is killed; the next one replaces it.
                slot.worker.killed = True
                with contextlib.suppress(ProcessLookupError):
                    slot.worker.process.kill()
                raise
            if answer.get("ok"):
                try:
                    return ExtractionResult.model_validate_json(body)
                except ValueError as error:
                    raise ExtractionError("extract_failed", f"bad result: {error}") from None
            if answer.get("restart"):
                self._replace(slot, kill=True)
            reason = str(answer.get("reason", "extract_failed"))
            if reason not in REASON_CODES:
                reason = "extract_failed"
            raise ExtractionError(reason, str(answer.get("detail", "")))
        finally:
            self._release(slot)

    # --- workers -----------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        command = [
            sys.executable, "-m", "bastion.pipeline.extract.sandbox",
            "--target", self.target,
            "--memory-mb", str(self.memory_mb),
            "--max-pages", str(self.max_pages),
            "--ocr", self.ocr.to_json(),
        ]  # fmt: skip
        env = dict(os.environ)
        paths = [os.path.abspath(p or os.curdir) for p in sys.path if isinstance(p, str)]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        process = subprocess.Popen(  # noqa: S603 - a fixed command line, no user input
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,  # terminal signals go to the parent, which shuts workers down
        )
        assert process.stdin is not None and process.stdout is not None
        os.set_blocking(process.stdin.fileno(), False)
        os.set_blocking(process.stdout.fileno(), False)
        tail: collections.deque[bytes] = collections.deque(maxlen=_STDERR_LINES)
        reader = threading.Thread(
            target=_drain, args=(process, tail), name="bastion-extract-stderr", daemon=True
        )
        reader.start()
        return _Worker(process, tail, reader)

    def _ensure_ready(self, slot: _Slot, deadline: float) -> None:
        worker = slot.worker
        if worker is None or worker.process.poll() is not None:
            if worker is not None:
                _stop(worker)
            worker = slot.worker = self._spawn()
        if worker.ready:
            return
        try:
            answer, _ = _receive(worker, deadline)
        except (TimeoutError, _WorkerLost) as error:
            _stop(worker)
            slot.worker = self._spawn()
            detail = _last_line(worker) or str(error) or "no answer"
            raise SandboxError(f"an extraction worker failed to start: {detail}") from None
        if not answer.get("ready"):
            _stop(worker)
            slot.worker = self._spawn()
            raise SandboxError(f"an extraction worker failed to start: {answer}")
        worker.ready = True

    def _replace(self, slot: _Slot, *, kill: bool) -> None:
        old = slot.worker
        if old is not None:
            if kill:
                old.killed = True
                with contextlib.suppress(ProcessLookupError):
                    old.process.kill()
            _stop(old)
        slot.worker = self._spawn()

    def _worker_died(self, slot: _Slot, *, kill: bool) -> ExtractionError:
        worker = slot.worker
        assert worker is not None
        if kill:
            worker.killed = True
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        _reap(worker)
        worker.reader.join(timeout=1.0)
        slot.worker = self._spawn()
        code = worker.process.returncode
        tail = b"\n".join(worker.stderr_tail)
        died = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if any(marker in tail for marker in _OOM_MARKERS) or (
            code == -signal.SIGKILL and not worker.killed
        ):
            return ExtractionError("memory_limit", f"the worker ran out of memory ({died})")
        last = _last_line(worker)
        return ExtractionError(
            "extract_failed", f"the worker died ({died}){': ' + last if last else ''}"
        )


def _drain(process: subprocess.Popen[bytes], tail: collections.deque[bytes]) -> None:
    stream = process.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while line := stream.readline(2000):
            tail.append(line.rstrip())


def _last_line(worker: _Worker) -> str:
    for line in reversed(worker.stderr_tail):
        if line.strip():
            return line.decode("utf-8", "replace")[:300]
    return ""


def _reap(worker: _Worker) -> None:
    """Wait for a dying worker (killing it if it lingers) and record its exit status."""
    process = worker.process
    deadline = time.monotonic() + 2.0
    while True:
        try:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:
            process.poll()
            return
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            _close_pipes(process)
            return
        if time.monotonic() > deadline:
            worker.killed = True
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            deadline = time.monotonic() + 5.0
        time.sleep(0.005)


def _stop(worker: _Worker) -> None:
    """Ask a worker to exit (EOF on its stdin), kill it if it does not, and reap it."""
    process = worker.process
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _close_pipes(process)


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# --- the wire protocol -----------------------------------------------------------------------


def _exchange(
    worker: _Worker, header: bytes, body: bytes, deadline: float
) -> tuple[dict[str, Any], bytes]:
    process = worker.process
    assert process.stdin is not None
    if process.poll() is not None:
        raise _WorkerLost("the worker had exited")
    fd = process.stdin.fileno()
    frame = _FRAME.pack(len(header), len(body)) + header
    # A small request goes out in one write; a large one in chunks, whenever the pipe has room.
    parts = (frame + body,) if len(body) <= _IO_CHUNK else (frame, body)
    poller: select.poll | None = None  # made when the pipe is first full (rarely)
    for part in parts:
        view = memoryview(part)
        while view:
            try:
                written = os.write(fd, view[:_IO_CHUNK])
            except BlockingIOError:
                if poller is None:
                    poller = select.poll()
                    poller.register(fd, select.POLLOUT)
                _wait(poller, deadline)
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise _WorkerLost("the worker closed its input") from None
            view = view[written:]
    return _receive(worker, deadline)


def _wait(poller: select.poll, deadline: float) -> None:
    """Wait until the polled descriptor is ready (or has hung up); TimeoutError at `deadline`."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        with contextlib.suppress(InterruptedError):
            if poller.poll(max(1, math.ceil(remaining * 1000))):
                return


def _receive(worker: _Worker, deadline: float) -> tuple[dict[str, Any], bytes]:
    stdout = worker.process.stdout
    assert stdout is not None
    fd = stdout.fileno()
    buffer = bytearray()
    needed = _FRAME.size
    sizes: tuple[int, int] | None = None
    poller = worker.stdout_poll
    if poller is None:
        poller = worker.stdout_poll = select.poll()
        poller.register(fd, select.POLLIN)
    while len(buffer) < needed:
        _wait(poller, deadline)
        try:
            # Enough for a typical answer in one read, never more than is missing once the size
            # is known: a read asks the allocator for its whole size, and a large one is an
            # mmap and munmap per call.
            want = needed - len(buffer) if sizes is not None else _READ_AHEAD
            chunk = os.read(fd, min(want, _IO_CHUNK))
        except BlockingIOError:
            continue
        if not chunk:
            raise _WorkerLost("the worker closed its output")
        buffer += chunk
        if sizes is None and len(buffer) >= _FRAME.size:
            sizes = _FRAME.unpack_from(buffer)
            needed = _FRAME.size + sizes[0] + sizes[1]
            if needed > _MAX_ANSWER:
                raise _WorkerLost(f"the worker sent a {needed}-byte answer", alive=True)
    assert sizes is not None
    head_end = _FRAME.size + sizes[0]
    raw_header = bytes(buffer[_FRAME.size : head_end])
    if raw_header == _OK_HEADER:
        return {"ok": True}, bytes(buffer[head_end:needed])
    try:
        answer = json.loads(raw_header)
    except ValueError:
        raise _WorkerLost("the worker sent a malformed answer", alive=True) from None
    if not isinstance(answer, dict):
        raise _WorkerLost("the worker sent a malformed answer", alive=True)
    return answer, bytes(buffer[head_end:needed])


# --- the worker process ----------------------------------------------------------------------

# A one-page PDF the worker extracts once at start, so the first real document finds every
# lazily imported module and cache already warm.
_WARM_UP_PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
    b" /Resources << /Font << /F1 5 0 R >> >> >>\nendobj\n"
    b"4 0 obj\n<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 720 Td (Invoice INV-1) Tj ET\n"
    b"endstream\nendobj\n"
    b"5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n"
    b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n0\n%%EOF\n"
)


def _read_exact(fd: int, size: int) -> bytes | None:
    parts = bytearray()
    while len(parts) < size:
        chunk = os.read(fd, min(size - len(parts), 1 << 20))
        if not chunk:
            return None
        parts += chunk
    return bytes(parts)


def _send(fd: int, answer: dict[str, Any], body: bytes = b"") -> None:
    header = _OK_HEADER if answer is _OK else json.dumps(answer).encode()
    view = memoryview(_FRAME.pack(len(header), len(body)) + header + body)
    while view:
        view = view[os.write(fd, view) :]


def _limit_self(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent


def _load(target: str, ocr: OcrOptions) -> ExtractFunction:
    """The target function; one that takes an `ocr` keyword is given `ocr`."""
    module_name, _, name = target.partition(":")
    function: Any = getattr(importlib.import_module(module_name), name)
    if "ocr" in inspect.signature(function).parameters:
        function = functools.partial(function, ocr=ocr)
    loaded: ExtractFunction = function
    return loaded


def _handle(
    extract: ExtractFunction, data: bytes, text_only: bool, max_pages: int, open_pdf: bool
) -> tuple[dict[str, Any], bytes]:
    from bastion.pipeline.extract.preflight import preflight

    out_of_memory = False
    try:
        report = preflight(data, max_pages=max_pages, open_pdf=open_pdf)
        result = extract(data, text_only=text_only, max_pages=max_pages)
        if not isinstance(result, ExtractionResult):
            raise TypeError(f"the extractor returned {type(result).__name__}")
        for warning in report.warnings:
            result.findings.append(
                Finding(rule_id=f"preflight.{warning}", severity="info",
                        message=f"preflight noted: {warning}")
            )  # fmt: skip
        return _OK, result.model_dump_json().encode()
    except ExtractionError as error:
        return {"ok": False, "reason": error.reason, "detail": error.detail}, b""
    except MemoryError:
        out_of_memory = True  # answer outside the handler, once the traceback's frames are freed
    except RecursionError:
        return {"ok": False, "reason": "extract_failed", "detail": "recursion too deep"}, b""
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"[:500]
        return {"ok": False, "reason": "extract_failed", "detail": detail}, b""
    assert out_of_memory
    return {"ok": False, "reason": "memory_limit", "detail": "MemoryError", "restart": True}, b""


def worker_main(argv: list[str] | None = None) -> int:
    """Serve documents on stdin/stdout until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m bastion.pipeline.extract.sandbox")
    parser.add_argument("--target", default=DEFAULT_TARGET)
    parser.add_argument("--memory-mb", type=int, default=512)
    parser.add_argument("--max-pages", type=int, default=200)
    parser.add_argument("--ocr", type=OcrOptions.from_json, default=DEFAULT_OCR)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # stray prints land on stderr, never in the protocol
    extract = _load(args.target, args.ocr)
    # The real extractor opens the file through preflight's own `open_document` (same refusals):
    # preflight need not open it first. Any other target gets the full preflight.
    open_pdf = args.target != DEFAULT_TARGET
    _limit_self(args.memory_mb)
    with contextlib.suppress(Exception):
        _handle(extract, _WARM_UP_PDF, False, args.max_pages, open_pdf)
    _send(protocol_out, {"ready": True, "pid": os.getpid()})
    while True:
        frame = _read_exact(0, _FRAME.size)
        if frame is None:
            return 0
        header_size, body_size = _FRAME.unpack(frame)
        message = _read_exact(0, header_size + body_size)
        if message is None:
            return 0
        request = json.loads(message[:header_size])
        body = message[header_size:]
        del message
        text_only = bool(request.get("text_only"))
        answer, payload = _handle(extract, body, text_only, args.max_pages, open_pdf)
        del body
        _send(protocol_out, answer, payload)
        if answer.get("restart"):
            return 0


if __name__ == "__main__":
    sys.exit(worker_main())

"""The watched folder: PDFs dropped into `pipeline.watch_dir` enter the pipeline by themselves.

* Which files: regular files directly in the folder (not in sub-folders; symbolic links are
  skipped, so a link cannot smuggle in a file from elsewhere) whose name matches one of
  `pipeline.watch_patterns` (shell patterns, compared case-insensitively: `*.pdf` matches
  `SCAN.PDF`).
* When: on start, every matching file already there; then every file that `watchfiles` reports
  as added or modified. A file is read only once its size and mtime have stayed the same for
  `settle_seconds` (a copy in progress is not picked up half-written); it is read again after
  the read to make sure it did not change meanwhile.
* As whom: the `Ingest` service with principal `gateway:watch` and a new correlation ID per
  file; each outcome is also audited (method `watch_ingest`) when an audit sink is given. The
  documents belong to `gateway:watch`, or to the principal named by `pipeline.watch_owner`
  (who then sees them like its own uploads).
* Once: after a file is submitted, `(path, size, mtime)` is recorded in the watcher's ledger
  (`WatchLedger`, in the gateway's database), so it is not submitted again, not even after a
  restart. A file that is changed later (new size or mtime) is looked at again; identical bytes
  are still one document of the owner's.
* Rejected files (not a PDF, empty, over `pipeline.max_upload_bytes`) are logged and recorded as
  ingested too, with their content hash, so they are not retried forever; fix or replace the
  file (which changes its mtime) to have it looked at again. The files stay where they are.
* Failures of the pipeline itself (the archivist, the database or the queue unavailable) are
  not recorded: the file is retried with a growing pause (up to a minute) until it goes through
  or the watcher stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchfiles import Change, awatch

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry
from bastion.core.context import new_correlation_id
from bastion.pipeline.ingest import Ingest, UploadRejected, check_size
from bastion.pipeline.watch_ledger import WatchLedger

log = structlog.get_logger("bastion.watch")

WATCH_PRINCIPAL = "gateway:watch"
AUDIT_METHOD = "watch_ingest"
MAX_RETRY_SECONDS = 60.0

AuditRecorder = Callable[[AuditEntry], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FileVersion:
    """A file as it was seen: where, how big, when last modified."""

    path: Path
    size: int
    mtime: float

    @property
    def key(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class WatchOutcome:
    """What became of one file: `queued`, `duplicate`, `rejected` (see `reason`), `seen`
    (submitted before) or `changed` (modified while being read; it will be looked at again).
    `status` is the HTTP status an upload of it would have had."""

    outcome: str
    status: int = 200
    document_id: str | None = None
    correlation_id: str | None = None
    reason: str | None = None


def regular_file(path: Path) -> FileVersion | None:
    """The file's current version, or None if it is gone or not a regular file (or a link)."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileVersion(path, st.st_size, st.st_mtime)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class FolderWatcher:
    """Feeds the files of one folder to `Ingest`; `run(stop)` until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        ingest: Ingest,
        ledger: WatchLedger,
        *,
        audit: AuditRecorder | None = None,
        settle_seconds: float = 1.0,
        poll_seconds: float = 0.2,
        concurrency: int = 2,
        force_polling: bool | None = None,
    ) -> None:
        if not settings.pipeline.watch_dir:
            raise ValueError("pipeline.watch_dir is not set")
        self.folder = settings.path(settings.pipeline.watch_dir).resolve()
        self.patterns = [p.lower() for p in settings.pipeline.watch_patterns]
        self.ingest = ingest
        self.ledger = ledger
        self.owner = settings.pipeline.watch_owner or WATCH_PRINCIPAL
        self.audit = audit
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self.force_polling = force_polling
        self._slots = asyncio.Semaphore(concurrency)
        self._pending: dict[Path, asyncio.Task[None]] = {}
        self._dirty: set[Path] = set()

    # -- selection ---------------------------------------------------------------------------

    def matches(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self.patterns)

    def _wanted(self, change: Change, path: str) -> bool:
        return change != Change.deleted and self.matches(os.path.basename(path))

    # -- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the folder (creating it if needed) until `stop` is set."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        log.info("watching folder", folder=str(self.folder), patterns=self.patterns)
        watching = asyncio.create_task(self._watch(stop))
        await asyncio.sleep(0)  # the watch starts before the scan: no file falls in between
        try:
            self.scan()
            await watching
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await self._cancel_pending()

    async def _watch(self, stop: asyncio.Event) -> None:
        async for batch in awatch(
            self.folder,
            watch_filter=self._wanted,
            stop_event=stop,
            recursive=False,
            force_polling=self.force_polling,
        ):
            for _change, raw in batch:
                self.schedule(Path(raw))

    def scan(self) -> None:
        """Schedule every matching file already in the folder."""
        for entry in sorted(self.folder.iterdir()):
            if self.matches(entry.name):
                self.schedule(entry)

    def schedule(self, path: Path) -> None:
        """Look at `path` once it has settled (one look per path at a time; news about a path
        that is being looked at makes that look run once more)."""
        if path in self._pending:
            self._dirty.add(path)
            return
        task = asyncio.create_task(self._handle(path))
        self._pending[path] = task
        task.add_done_callback(lambda _t: self._pending.pop(path, None))

    async def _cancel_pending(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _handle(self, path: Path) -> None:
        while True:
            self._dirty.discard(path)
            await self._submit_when_settled(path)
            if path not in self._dirty:
                return

    async def _submit_when_settled(self, path: Path) -> None:
        delay = self.poll_seconds
        while True:
            version = await self._settled(path)
            if version is None:
                return
            try:
                async with self._slots:
                    result = await self.process(version)
            except Exception as exc:
                log.exception("watched file not submitted; retrying", path=str(path))
                await self._audit(version, "error:unavailable", 503, new_correlation_id(), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            if result.outcome != "changed":
                await self._report(version, result)
                return

    async def _settled(self, path: Path) -> FileVersion | None:
        """The file once its size and mtime stay unchanged for `settle_seconds`."""
        loop = asyncio.get_running_loop()
        seen = regular_file(path)
        since = loop.time()
        while seen is not None:
            await asyncio.sleep(self.poll_seconds)
            now = regular_file(path)
            if now != seen:
                seen, since = now, loop.time()
            elif loop.time() - since >= self.settle_seconds:
                return seen
        return None

    # -- one file ----------------------------------------------------------------------------

    async def process(self, version: FileVersion) -> WatchOutcome:
        """Submit one settled file unless this version was submitted before."""
        ledger = self.ledger
        seen = await asyncio.to_thread(
            ledger.was_ingested, version.key, version.size, version.mtime
        )
        if seen is not None:
            return WatchOutcome("seen")
        cid = new_correlation_id()
        try:
            check_size(version.size, self.ingest.max_bytes)
            data = await asyncio.to_thread(version.path.read_bytes)
            if regular_file(version.path) != version or len(data) != version.size:
                return WatchOutcome("changed")  # looked at again once it settles
            result = await self.ingest.ingest(
                data, version.path.name, WATCH_PRINCIPAL, cid, owner=self.owner
            )
        except UploadRejected as exc:
            sha = await asyncio.to_thread(file_sha256, version.path)
            await self._mark(version, sha)
            return WatchOutcome("rejected", exc.http_status, correlation_id=cid, reason=exc.reason)
        await self._mark(version, result.sha256)
        if result.created:
            return WatchOutcome("queued", 202, result.id, cid)
        return WatchOutcome("duplicate", 200, result.id, cid)

    async def _mark(self, version: FileVersion, sha256: str) -> None:
        await asyncio.to_thread(
            self.ledger.mark_ingested, version.key, version.size, version.mtime, sha256
        )

    async def _report(self, version: FileVersion, result: WatchOutcome) -> None:
        if result.correlation_id is None:  # submitted before
            return
        fields = {"path": version.key, "document_id": result.document_id}
        if result.reason is not None:
            log.warning("watched file rejected", reason=result.reason, **fields)
            outcome = f"error:{result.reason}"
        else:
            log.info("watched file submitted", outcome=result.outcome, **fields)
            outcome = "ok"
        await self._audit(version, outcome, result.status, result.correlation_id)

    async def _audit(
        self,
        version: FileVersion,
        outcome: str,
        status: int,
        correlation_id: str,
        error: Exception | None = None,
    ) -> None:
        if self.audit is None:
            return
        detail = f"{version.path.name} ({version.size} bytes)"
        if error is not None:
            detail += f": {type(error).__name__}"
        await self.audit(
            AuditEntry(
                ts=time.time(),
                principal=WATCH_PRINCIPAL,
                auth_method="none",
                agent="gateway",
                method=AUDIT_METHOD,
                correlation_id=correlation_id,
                outcome=outcome,
                status=status,
                latency_ms=0.0,
                client="watch",
                detail=detail,
            )
        )
